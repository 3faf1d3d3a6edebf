"""Fully connected networks built from the layers in cs231n.layers.

A model keeps its learnable parameters in `self.params` (name -> array) and exposes
`loss(X, y=None)`: without labels it returns class scores (N, C); with labels it returns
(loss, grads), grads keyed like params. That is all the Solver needs.
"""
import numpy as np

from ..layer_utils import (NORMALIZATIONS, affine_norm_relu_backward, affine_norm_relu_forward,
                           affine_relu_backward, affine_relu_forward)
from ..layers import affine_backward, affine_forward, dropout_backward, dropout_forward, softmax_loss


def _l2(reg, weights):
    """0.5 * reg * sum of squared weights: the regulariser every model here uses."""
    return 0.5 * reg * sum(float(np.sum(w * w)) for w in weights)


class TwoLayerNet:
    """affine - relu - affine - softmax.

    Inputs of the constructor:
    - input_dim: D, features per example (3 * 32 * 32 for CIFAR-10 images).
    - hidden_dim: H, units in the hidden layer.
    - num_classes: C.
    - weight_scale: standard deviation of the normal initial weights; biases start at zero.
    - reg: L2 regularisation strength (loss term 0.5 * reg * sum of squared weights).
    - dtype: dtype of the parameters (float64 for gradient checks).
    - seed: seed of the initialisation, for reproducible runs.
    Parameters: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=np.float64, seed=None):
        self.reg = reg
        self.dtype = dtype
        self.params = {}
        rng = np.random.default_rng(seed)
        # TODO: W1, b1, W2, b2 as described above, drawn with rng.normal and cast to dtype.
        ### BEGIN SOLUTION
        self.params["W1"] = (weight_scale * rng.standard_normal((input_dim, hidden_dim))).astype(dtype)
        self.params["b1"] = np.zeros(hidden_dim, dtype=dtype)
        self.params["W2"] = (weight_scale * rng.standard_normal((hidden_dim, num_classes))).astype(dtype)
        self.params["b2"] = np.zeros(num_classes, dtype=dtype)
        ### END SOLUTION

    def loss(self, X, y=None):
        """Scores, or the loss and its gradients, for a minibatch.

        Inputs:
        - X: data (N, d_1, ..., d_k).
        - y: integer labels (N,), or None.
        Returns: scores (N, C) when y is None; otherwise (loss, grads) where loss is a float
        (data loss + regularisation) and grads maps each parameter name to its gradient.
        """
        scores = None
        # TODO: the forward pass, with affine_relu_forward and affine_forward.
        ### BEGIN SOLUTION
        h, cache1 = affine_relu_forward(X, self.params["W1"], self.params["b1"])
        scores, cache2 = affine_forward(h, self.params["W2"], self.params["b2"])
        ### END SOLUTION
        if y is None:
            return scores

        loss, grads = 0.0, {}
        # TODO: softmax loss plus 0.5 * reg * (sum W1**2 + sum W2**2), then the backward pass;
        # every weight gradient gets reg * W added.
        ### BEGIN SOLUTION
        loss, dscores = softmax_loss(scores, y)
        loss += _l2(self.reg, [self.params["W1"], self.params["W2"]])
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, cache2)
        _, grads["W1"], grads["b1"] = affine_relu_backward(dh, cache1)
        grads["W1"] += self.reg * self.params["W1"]
        grads["W2"] += self.reg * self.params["W2"]
        ### END SOLUTION
        return loss, grads


class FullyConnectedNet:
    """{affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax.

    Inputs of the constructor:
    - hidden_dims: list of hidden layer sizes, e.g. [100, 100]; L = len(hidden_dims) + 1.
    - input_dim, num_classes: as TwoLayerNet.
    - dropout_keep_ratio: probability of KEEPING a unit in dropout; 1 means no dropout.
    - normalization: None, 'batchnorm' or 'layernorm'.
    - reg, weight_scale, dtype: as TwoLayerNet.
    - seed: fixes the initialisation AND makes every dropout mask the same, so that the model
      is deterministic for gradient checks; leave it None to train with dropout.
    Parameters: W1..WL and b1..bL; with normalization, gamma1..gamma(L-1) (ones) and
    beta1..beta(L-1) (zeros) for the hidden layers.
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10,
                 dropout_keep_ratio=1, normalization=None, reg=0.0, weight_scale=1e-2,
                 dtype=np.float32, seed=None):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if not 0 < dropout_keep_ratio <= 1:
            raise ValueError("dropout_keep_ratio is the probability of KEEPING a unit and must "
                             f"be in (0, 1], got {dropout_keep_ratio!r}")
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params = {}
        rng = np.random.default_rng(seed)
        # TODO: W{i}, b{i} for i = 1..L (layer sizes input_dim, *hidden_dims, num_classes), and
        # gamma{i} = 1, beta{i} = 0 for each hidden layer i when normalization is used.
        ### BEGIN SOLUTION
        dims = [input_dim, *hidden_dims, num_classes]
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            self.params[f"W{i}"] = weight_scale * rng.standard_normal((fan_in, fan_out))
            self.params[f"b{i}"] = np.zeros(fan_out)
            if normalization and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(fan_out)
                self.params[f"beta{i}"] = np.zeros(fan_out)
        ### END SOLUTION

        # Dropout and normalisation layers carry state of their own, kept here (given code).
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.norm_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        """Scores, or the loss and its gradients, for a minibatch; as TwoLayerNet.loss.

        Without labels the net runs in test mode (dropout off, batchnorm on running averages).
        """
        X = X.astype(self.dtype, copy=False)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for norm_param in self.norm_params:
            norm_param["mode"] = mode

        scores = None
        # TODO: the forward pass through the L layers, keeping each layer's cache for the
        # backward pass: affine_norm_relu_forward (gamma, beta = None without normalization)
        # and dropout_forward(h, self.dropout_param) for the hidden layers, affine_forward last.
        ### BEGIN SOLUTION
        caches = []
        h = X
        for i in range(1, self.num_layers):
            h, cache = affine_norm_relu_forward(
                h, self.params[f"W{i}"], self.params[f"b{i}"], self.params.get(f"gamma{i}"),
                self.params.get(f"beta{i}"), self.norm_params[i - 1], self.normalization)
            drop_cache = None
            if self.use_dropout:
                h, drop_cache = dropout_forward(h, self.dropout_param)
            caches.append((cache, drop_cache))
        L = self.num_layers
        scores, last_cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        ### END SOLUTION
        if mode == "test":
            return scores

        loss, grads = 0.0, {}
        # TODO: softmax loss plus L2 on every W, then backpropagate through the layers in
        # reverse order; gamma and beta are not regularised.
        ### BEGIN SOLUTION
        loss, dscores = softmax_loss(scores, y)
        loss += _l2(self.reg, [self.params[f"W{i}"] for i in range(1, L + 1)])
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, last_cache)
        for i in range(L - 1, 0, -1):
            cache, drop_cache = caches[i - 1]
            if self.use_dropout:
                dh = dropout_backward(dh, drop_cache)
            dh, grads[f"W{i}"], grads[f"b{i}"], dgamma, dbeta = affine_norm_relu_backward(dh, cache)
            if self.normalization:
                grads[f"gamma{i}"], grads[f"beta{i}"] = dgamma, dbeta
        for i in range(1, L + 1):
            grads[f"W{i}"] += self.reg * self.params[f"W{i}"]
        ### END SOLUTION
        return loss, grads
