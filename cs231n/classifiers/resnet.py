"""A residual network (He et al. 2015) for small images, and its plain twin without shortcuts.

Students write global average pooling (forward and backward) and ResNet's forward and backward
pass (`_forward` after the stem, and `loss`); the constructor and the stem are given.

stem: conv (stride 1) - spatial batchnorm - relu
stages: blocks_per_stage residual blocks each; the first block of every stage after the first
        halves the size with a stride-2 conv (and a 1x1 projection shortcut)
head: global average pooling - one fully connected layer - softmax

There is no pooling layer and a single FC layer: the lecture's trend away from POOL and FC. With
`residual=False` the same layers run without the shortcuts (each block is two conv-bn-relu), a
plain net of the same depth to compare with. Uses the fast conv layers when they are built (see
cs231n.layer_utils.FAST_LAYERS). Models follow the interface of fc_net.py.
"""
import numpy as np

from ..layer_utils import (conv_bn_relu_backward, conv_bn_relu_forward, residual_block_backward,
                           residual_block_forward)
from ..layers import affine_backward, affine_forward, softmax_loss
from ..arch import conv_output_shape
from .fc_net import _l2


def global_average_pool_forward(x):
    """Global average pooling: each channel's activation map becomes its mean.

    Inputs: x (N, C, H, W). Returns a tuple of:
    - out: (N, C), out[n, c] the mean of x[n, c] over its H x W positions;
    - cache: what the backward pass needs.
    """
    out, cache = None, None
    # TODO: one line for out. What does the backward pass need to know about x?
    ### BEGIN SOLUTION
    out, cache = x.mean(axis=(2, 3)), x.shape
    ### END SOLUTION
    return out, cache


def global_average_pool_backward(dout, cache):
    """Backward pass of global_average_pool_forward.

    Inputs: dout (N, C), the upstream gradient; cache from the forward pass.
    Returns: dx (N, C, H, W). Each of the H x W positions of a map had the same share in its mean.
    """
    dx = None
    # TODO: how much does one input value change its map's mean? Spread dout accordingly.
    ### BEGIN SOLUTION
    N, C, H, W = cache
    dx = np.broadcast_to(dout[:, :, None, None] / (H * W), cache).copy()
    ### END SOLUTION
    return dx


class ResNet:
    """A residual network: stem, stages of residual blocks, global average pooling, one FC layer.

    Inputs of the constructor:
    - input_dim: (C, H, W) of one example.
    - stage_filters: the filter count of each stage, e.g. (16, 32, 64); the stem uses the first.
    - blocks_per_stage: residual blocks per stage (n); the net has 6n + 2 weight layers for three
      stages, as in the paper's CIFAR-10 nets.
    - num_classes, reg, dtype, seed: as ThreeLayerConvNet.
    - residual: False for the plain twin: the same convolutions, no shortcuts.
    The stem's filter is 3x3 (pad 1, keeps the size) for an odd input and 2x2 (pad 1, one pixel
    larger) for an even one: a 3x3 conv with stride 2 and pad 1 tiles an input exactly only when
    its size is odd (33 -> 17 -> 9 -> 5). The sizes come from your arch.conv_output_shape.
    Weights start with He initialisation (std sqrt(2 / fan_in)), batchnorm with gamma 1, beta 0.
    Parameters: stem_W, stem_b, stem_gamma, stem_beta; s{i}b{j}_{W1,b1,gamma1,beta1,W2,...} for
    block j of stage i (and _Wp, _bp, _gammap, _betap where a projection is needed); fc_W, fc_b.
    """

    def __init__(self, input_dim=(3, 32, 32), stage_filters=(16, 32, 64), blocks_per_stage=1,
                 num_classes=10, residual=True, reg=0.0, dtype=np.float32, seed=None):
        C, H, W = input_dim
        self.reg, self.dtype, self.residual = reg, dtype, residual
        self.params, self.bn_params, self.blocks = {}, {}, []  # blocks: (prefix, stride)
        rng = np.random.default_rng(seed)
        self.stem_size = 3 if H % 2 else 2
        F = stage_filters[0]
        self._conv("stem_W", "stem_b", F, C, self.stem_size, rng)
        self._norm("stem", F)
        self.bn_params["stem"] = [{"mode": "train"}]
        H, W, _ = conv_output_shape((H, W, F), F, self.stem_size, 1, 1)  # yours, from arch.py
        channels = F
        for i, filters in enumerate(stage_filters, start=1):
            for j in range(1, blocks_per_stage + 1):
                stride = 2 if i > 1 and j == 1 else 1
                prefix = f"s{i}b{j}"
                self._conv(prefix + "_W1", prefix + "_b1", filters, channels, 3, rng)
                self._conv(prefix + "_W2", prefix + "_b2", filters, filters, 3, rng)
                for k in ("1", "2"):
                    self._norm(prefix, filters, k)
                projection = residual and (stride != 1 or channels != filters)
                if projection:
                    self._conv(prefix + "_Wp", prefix + "_bp", filters, channels, 1, rng)
                    self._norm(prefix, filters, "p")
                self.bn_params[prefix] = [{"mode": "train"} for _ in range(2 + projection)]
                try:
                    H, W, _ = conv_output_shape((H, W, filters), filters, 3, stride, 1)
                except ValueError as err:
                    raise ValueError(f"ResNet block {prefix}: {err}") from None
                self.blocks.append((prefix, stride))
                channels = filters
        self.params["fc_W"] = np.sqrt(2.0 / channels) * rng.standard_normal((channels, num_classes))
        self.params["fc_b"] = np.zeros(num_classes)
        self.output_size = (channels, H, W)
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def _conv(self, w_name, b_name, F, C, size, rng):
        """He-initialised filters (F, C, size, size) and zero biases (F,)."""
        self.params[w_name] = np.sqrt(2.0 / (C * size * size)) * rng.standard_normal((F, C, size, size))
        self.params[b_name] = np.zeros(F)

    def _norm(self, prefix, F, suffix=""):
        self.params[f"{prefix}_gamma{suffix}"] = np.ones(F)
        self.params[f"{prefix}_beta{suffix}"] = np.zeros(F)

    def __repr__(self):
        kind = "ResNet" if self.residual else "PlainNet"
        stages = {}
        for prefix, _ in self.blocks:
            stage = prefix.split("b")[0]
            stages[stage] = stages.get(stage, 0) + 1
        layers = 2 + 2 * len(self.blocks)
        return (f"{kind}({layers} weight layers: stem {self.stem_size}x{self.stem_size}, "
                + ", ".join(f"{n} block(s) of {self.params[f'{s}b1_W1'].shape[0]} filters"
                            for s, n in stages.items())
                + f", global average pool over {self.output_size[1]}x{self.output_size[2]}, FC)")

    def _block_params(self, prefix):
        start = prefix + "_"
        return {k[len(start):]: v for k, v in self.params.items() if k.startswith(start)}

    def _forward(self, X, mode):
        """(scores, caches) of a minibatch X, batchnorm in `mode`: the stem is given, the rest is yours."""
        p = self.params
        for bn_list in self.bn_params.values():
            for bn in bn_list:
                bn["mode"] = mode
        h, stem_cache = conv_bn_relu_forward(X, p["stem_W"], p["stem_b"], p["stem_gamma"],
                                             p["stem_beta"], {"stride": 1, "pad": 1},
                                             self.bn_params["stem"][0])
        scores, caches = None, None
        # TODO: the stages of blocks after the stem: for each (prefix, stride) in self.blocks, the
        # block's parameters (self._block_params(prefix)) and its bn_params (self.bn_params[prefix]);
        # a residual block when self.residual, else two conv-bn-relu (the first one strided).
        # Then global average pooling and the FC layer (fc_W, fc_b). caches: whatever your
        # backward pass in loss() needs, the stem's cache included.
        ### BEGIN SOLUTION
        block_caches = []
        for prefix, stride in self.blocks:
            bp, bn = self._block_params(prefix), self.bn_params[prefix]
            if self.residual:
                h, cache = residual_block_forward(h, bp, bn, stride)
            else:
                h, c1 = conv_bn_relu_forward(h, bp["W1"], bp["b1"], bp["gamma1"], bp["beta1"],
                                             {"stride": stride, "pad": 1}, bn[0])
                h, c2 = conv_bn_relu_forward(h, bp["W2"], bp["b2"], bp["gamma2"], bp["beta2"],
                                             {"stride": 1, "pad": 1}, bn[1])
                cache = (c1, c2)
            block_caches.append(cache)
        pooled, pool_cache = global_average_pool_forward(h)
        scores, fc_cache = affine_forward(pooled, p["fc_W"], p["fc_b"])
        caches = (stem_cache, block_caches, pool_cache, fc_cache)
        ### END SOLUTION
        return scores, caches

    def loss(self, X, y=None):
        """Scores (N, num_classes) when y is None, otherwise (loss, grads).

        X: images (N, C, H, W); y: integer labels (N,). Batchnorm runs in test mode (running
        averages) for scores and in train mode (batch statistics) for the loss.
        """
        X = X.astype(self.dtype, copy=False)
        scores, caches = self._forward(X, "test" if y is None else "train")
        if y is None:
            return scores
        p, grads = self.params, {}
        loss = None
        # TODO: the softmax loss plus 0.5 * reg * the sum of the squares of every weight (every
        # parameter with "_W" in its name: the convolutions' and the FC layer's), then the
        # backward pass in reverse: FC, global average pooling, the blocks from last to first
        # (residual_block_backward, or two conv_bn_relu_backward for the plain twin), the stem.
        # grads: one entry per parameter, keyed like self.params.
        ### BEGIN SOLUTION
        stem_cache, block_caches, pool_cache, fc_cache = caches
        weights = [k for k in p if "_W" in k]
        loss, dscores = softmax_loss(scores, y)
        loss += _l2(self.reg, [p[k] for k in weights])
        dpooled, grads["fc_W"], grads["fc_b"] = affine_backward(dscores, fc_cache)
        dh = global_average_pool_backward(dpooled, pool_cache)
        for (prefix, _), cache in zip(reversed(self.blocks), reversed(block_caches)):
            if self.residual:
                dh, block_grads = residual_block_backward(dh, cache)
            else:
                c1, c2 = cache
                dh, dW2, db2, dg2, dbe2 = conv_bn_relu_backward(dh, c2)
                dh, dW1, db1, dg1, dbe1 = conv_bn_relu_backward(dh, c1)
                block_grads = {"W1": dW1, "b1": db1, "gamma1": dg1, "beta1": dbe1,
                               "W2": dW2, "b2": db2, "gamma2": dg2, "beta2": dbe2}
            grads.update({f"{prefix}_{k}": v for k, v in block_grads.items()})
        (_, grads["stem_W"], grads["stem_b"], grads["stem_gamma"],
         grads["stem_beta"]) = conv_bn_relu_backward(dh, stem_cache)
        for k in weights:
            grads[k] = grads[k] + self.reg * p[k]
        ### END SOLUTION
        return loss, grads
