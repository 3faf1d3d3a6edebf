"""Convolutional networks: the three-layer net students write, and a configurable net that
follows the lecture's pattern [(CONV-RELU)*N - POOL?]*M - (FC-RELU)*K - SOFTMAX.

Both use the fast conv and pool layers when the Cython extension is built, the naive ones
otherwise (see cs231n.layer_utils.FAST_LAYERS). Models follow the interface of fc_net.py.
"""
import numpy as np

from ..layer_utils import (affine_relu_backward, affine_relu_forward, conv_bn_relu_backward,
                           conv_bn_relu_forward, conv_relu_backward, conv_relu_forward,
                           conv_relu_pool_backward, conv_relu_pool_forward, max_pool_backward,
                           max_pool_forward)
from ..layers import affine_backward, affine_forward, softmax_loss
from ..shapes import same_padding
from .fc_net import _l2


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax.

    The convolution keeps the spatial size (stride 1, the padding from your arch.same_pad, so
    use an odd filter size) and the pool halves it.

    Inputs of the constructor:
    - input_dim: (C, H, W) of one example; H and W even.
    - num_filters: F, filters of the conv layer.
    - filter_size: odd width and height of the filters.
    - hidden_dim: units of the hidden affine layer.
    - num_classes: C.
    - weight_scale: standard deviation of the normal initial weights; biases start at zero.
    - reg: L2 regularisation strength.
    - dtype: float32 to train fast, float64 for gradient checks.
    - seed: seed of the initialisation.
    Parameters: W1 (F, C, filter_size, filter_size), b1 (F,), W2 (F * H/2 * W/2, hidden_dim),
    b2 (hidden_dim,), W3 (hidden_dim, num_classes), b3 (num_classes,).
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=np.float32, seed=None):
        C, H, W = input_dim
        if filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd: no whole padding keeps the size with an even "
                             f"filter (see your arch.same_pad), got {filter_size}")
        if H % 2 or W % 2:
            raise ValueError(f"the 2x2 pool needs an even height and width, got {H}x{W}")
        self.reg = reg
        self.dtype = dtype
        self.filter_size = filter_size
        self.params = {}
        rng = np.random.default_rng(seed)
        # TODO: W1, b1, W2, b2, W3, b3 with the shapes in the class docstring.
        ### BEGIN SOLUTION
        F = num_filters
        self.params["W1"] = weight_scale * rng.standard_normal((F, C, filter_size, filter_size))
        self.params["b1"] = np.zeros(F)
        self.params["W2"] = weight_scale * rng.standard_normal((F * (H // 2) * (W // 2), hidden_dim))
        self.params["b2"] = np.zeros(hidden_dim)
        self.params["W3"] = weight_scale * rng.standard_normal((hidden_dim, num_classes))
        self.params["b3"] = np.zeros(num_classes)
        ### END SOLUTION
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        """Scores, or the loss and its gradients, for a minibatch of images X (N, C, H, W).

        Returns scores (N, num_classes) when y is None, otherwise (loss, grads).
        """
        X = X.astype(self.dtype, copy=False)
        conv_param = {"stride": 1, "pad": same_padding(self.filter_size)}  # yours, from arch.py
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        p = self.params
        scores = None
        # TODO: the forward pass with conv_relu_pool_forward, affine_relu_forward and
        # affine_forward (from cs231n.layer_utils and cs231n.layers).
        ### BEGIN SOLUTION
        h1, cache1 = conv_relu_pool_forward(X, p["W1"], p["b1"], conv_param, pool_param)
        h2, cache2 = affine_relu_forward(h1, p["W2"], p["b2"])
        scores, cache3 = affine_forward(h2, p["W3"], p["b3"])
        ### END SOLUTION
        if y is None:
            return scores

        loss, grads = 0.0, {}
        # TODO: softmax loss plus L2 on W1, W2, W3, and the backward pass.
        ### BEGIN SOLUTION
        loss, dscores = softmax_loss(scores, y)
        loss += _l2(self.reg, [p["W1"], p["W2"], p["W3"]])
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
        dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, cache2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, cache1, need_dx=False)
        for k in ("W1", "W2", "W3"):
            grads[k] += self.reg * p[k]
        ### END SOLUTION
        return loss, grads


class ConvNet:
    """The lecture's pattern [(CONV-RELU)*N - POOL?]*M - (FC-RELU)*K - SOFTMAX, configurable.

    Every conv is filter_size x filter_size, stride 1, padded to keep the size; every pool is
    2x2 with stride 2. Weights start with He initialisation (std sqrt(2 / fan_in)), the
    lecture's choice for ReLU nets, unless weight_scale is given.

    Inputs of the constructor:
    - input_dim: (C, H, W).
    - conv_blocks: list of M blocks, each a list of the filter counts of its N convs, e.g.
      [[32, 32], [64, 64]] is (CONV-RELU)*2 - POOL twice.
    - pool: True to end every block with a pool, or a list of M booleans.
    - hidden_dims: the K fully connected hidden layers, e.g. [256].
    - num_classes, reg, dtype, seed: as ThreeLayerConvNet.
    - filter_size: odd, default 3 (the VGG choice).
    - normalization: None, or 'batchnorm' for spatial batchnorm after every conv.
    - weight_scale: None for He initialisation, or a fixed standard deviation.
    Parameters: conv{m}_{n}_W, conv{m}_{n}_b (and _gamma, _beta), fc{k}_W, fc{k}_b, out_W, out_b.
    """

    def __init__(self, input_dim=(3, 32, 32), conv_blocks=((32,), (64,)), pool=True,
                 hidden_dims=(256,), num_classes=10, filter_size=3, normalization=None,
                 weight_scale=None, reg=0.0, dtype=np.float32, seed=None):
        C, H, W = input_dim
        if filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd to keep the size, got {filter_size}")
        if normalization not in (None, "batchnorm"):
            raise ValueError(f"normalization must be None or 'batchnorm', got {normalization!r}")
        pools = [pool] * len(conv_blocks) if isinstance(pool, bool) else list(pool)
        if len(pools) != len(conv_blocks):
            raise ValueError(f"pool must be a bool or one bool per block: {len(conv_blocks)} "
                             f"blocks, {len(pools)} pool flags")
        self.reg, self.dtype, self.normalization = reg, dtype, normalization
        self.filter_size = filter_size
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        self.params, self.bn_params = {}, {}
        self.layers = []  # (kind, name) in forward order
        rng = np.random.default_rng(seed)

        def init(name, shape, fan_in):
            std = np.sqrt(2.0 / fan_in) if weight_scale is None else weight_scale
            self.params[name + "_W"] = std * rng.standard_normal(shape)
            self.params[name + "_b"] = np.zeros(shape[0] if len(shape) == 4 else shape[1])

        channels, height, width = C, H, W
        for m, (block, pooled) in enumerate(zip(conv_blocks, pools), start=1):
            for n, filters in enumerate(block, start=1):
                name = f"conv{m}_{n}"
                init(name, (filters, channels, filter_size, filter_size),
                     channels * filter_size ** 2)
                if normalization:
                    self.params[name + "_gamma"] = np.ones(filters)
                    self.params[name + "_beta"] = np.zeros(filters)
                    self.bn_params[name] = {"mode": "train"}
                self.layers.append(("conv", name))
                channels = filters
            if pooled:
                if height % 2 or width % 2:
                    raise ValueError(f"block {m}: a 2x2 pool needs an even size, got "
                                     f"{height}x{width}; drop this pool or change the input")
                height, width = height // 2, width // 2
                self.layers.append(("pool", f"pool{m}"))
        fan_in = channels * height * width
        for k, units in enumerate(hidden_dims, start=1):
            init(f"fc{k}", (fan_in, units), fan_in)
            self.layers.append(("fc", f"fc{k}"))
            fan_in = units
        init("out", (fan_in, num_classes), fan_in)
        self.layers.append(("out", "out"))
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def __repr__(self):
        parts = []
        for kind, name in self.layers:
            if kind == "conv":
                F, _, HH, _ = self.params[name + "_W"].shape
                parts.append(f"CONV{HH}-{F}" + ("-BN" if self.normalization else "") + "-RELU")
            elif kind == "pool":
                parts.append("POOL")
            else:
                parts.append(f"FC-{self.params[name + '_W'].shape[1]}" + ("-RELU" if kind == "fc" else ""))
        return "ConvNet(" + " ".join(parts) + " SOFTMAX)"

    def _forward(self, X, mode):
        caches, h, p = [], X, self.params
        for kind, name in self.layers:
            if kind == "conv" and self.normalization:
                bn = self.bn_params[name]
                bn["mode"] = mode
                h, cache = conv_bn_relu_forward(h, p[name + "_W"], p[name + "_b"], p[name + "_gamma"],
                                                p[name + "_beta"], self.conv_param, bn)
            elif kind == "conv":
                h, cache = conv_relu_forward(h, p[name + "_W"], p[name + "_b"], self.conv_param)
            elif kind == "pool":
                h, cache = max_pool_forward(h, self.pool_param)
            elif kind == "fc":
                h, cache = affine_relu_forward(h, p[name + "_W"], p[name + "_b"])
            else:
                h, cache = affine_forward(h, p[name + "_W"], p[name + "_b"])
            caches.append(cache)
        return h, caches

    @property
    def conv_param(self):
        """Stride 1 and the padding from your arch.same_pad, which keeps the size."""
        return {"stride": 1, "pad": same_padding(self.filter_size)}

    def loss(self, X, y=None):
        """Scores (N, num_classes) when y is None, otherwise (loss, grads)."""
        X = X.astype(self.dtype, copy=False)
        scores, caches = self._forward(X, "test" if y is None else "train")
        if y is None:
            return scores
        p, grads = self.params, {}
        weights = [k for k in p if k.endswith("_W")]
        loss, dh = softmax_loss(scores, y)
        loss += _l2(self.reg, [p[k] for k in weights])
        for (kind, name), cache in zip(reversed(self.layers), reversed(caches)):
            if kind == "conv" and self.normalization:
                (dh, grads[name + "_W"], grads[name + "_b"], grads[name + "_gamma"],
                 grads[name + "_beta"]) = conv_bn_relu_backward(dh, cache)
            elif kind == "conv":
                dh, grads[name + "_W"], grads[name + "_b"] = conv_relu_backward(dh, cache)
            elif kind == "pool":
                dh = max_pool_backward(dh, cache)
            elif kind == "fc":
                dh, grads[name + "_W"], grads[name + "_b"] = affine_relu_backward(dh, cache)
            else:
                dh, grads[name + "_W"], grads[name + "_b"] = affine_backward(dh, cache)
        for k in weights:
            grads[k] += self.reg * p[k]
        return loss, grads
