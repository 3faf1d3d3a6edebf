"""The layers of a ConvNet, one forward and one backward each, in plain numpy.

Every layer follows one convention:
    out, cache = layer_forward(x, ...)          # cache: what the backward pass needs
    dx, dw, ... = layer_backward(dout, cache)    # dout: upstream gradient, shaped like out
Gradients have the shape and dtype of what they are the gradient of.

The parts you write are marked TODO; `python -m pytest -m NAME` runs the checks of function NAME.
"""
import numpy as np

from .shapes import (check_conv_dout, check_conv_inputs, check_ndim, check_pool_dout,
                     check_pool_inputs)


# --------------------------------------------------------------------------------------------
# Affine and ReLU
# --------------------------------------------------------------------------------------------
def _flat_features(x, w, what):
    """Check that x (N, d_1, ..., d_k) has D = d_1*...*d_k features for w (D, M); return D."""
    if x.ndim < 1:
        raise ValueError(f"{what}: x must have a leading batch dimension, got shape {x.shape}")
    check_ndim("w", w, 2, "(D, M)")
    D = int(np.prod(x.shape[1:], dtype=np.int64))
    if D != w.shape[0]:
        dims = "*".join(str(d) for d in x.shape[1:]) or "1"
        raise ValueError(f"{what}: each example of x has {dims} = {D} features but w has "
                         f"{w.shape[0]} rows; w must be shaped ({D}, M)")
    return D


def affine_forward(x, w, b):
    """Forward pass of a fully connected (affine) layer: out = x.reshape(N, D) @ w + b.

    Inputs:
    - x: array (N, d_1, ..., d_k); each example is flattened to D = d_1 * ... * d_k features.
    - w: weights (D, M).
    - b: biases (M,).
    Returns a tuple of:
    - out: (N, M)
    - cache: (x, w, b)
    """
    _flat_features(x, w, "affine_forward")
    if getattr(b, "shape", None) != (w.shape[1],):
        raise ValueError(f"affine_forward: b must have shape ({w.shape[1]},), one bias per output "
                         f"column of w, got {getattr(b, 'shape', type(b).__name__)}")
    out = None
    # TODO: flatten each example of x into a row, multiply by w and add b.
    ### BEGIN SOLUTION
    out = x.reshape(x.shape[0], -1) @ w + b
    ### END SOLUTION
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Backward pass of the affine layer.

    Inputs:
    - dout: upstream gradient (N, M).
    - cache: (x, w, b) from affine_forward, x (N, d_1, ..., d_k), w (D, M), b (M,).
    Returns a tuple of:
    - dx: (N, d_1, ..., d_k), shaped like x.
    - dw: (D, M).
    - db: (M,).
    """
    x, w, b = cache
    dx, dw, db = None, None, None
    # TODO: the three gradients; remember to give dx the shape of x.
    ### BEGIN SOLUTION
    x_rows = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x_rows.T @ dout
    db = dout.sum(axis=0)
    ### END SOLUTION
    return dx, dw, db


def relu_forward(x):
    """Forward pass of a rectified linear unit, out = max(0, x) elementwise.

    Inputs: x, array of any shape.
    Returns a tuple of: out, shaped like x; cache: x.
    """
    out = None
    # TODO: the elementwise maximum with zero.
    ### BEGIN SOLUTION
    out = np.maximum(x, 0)
    ### END SOLUTION
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """Backward pass of a ReLU: the gradient flows only where the input was positive.

    Inputs: dout, upstream gradient of any shape; cache: x, shaped like dout.
    Returns: dx, shaped like x.
    """
    x = cache
    dx = None
    # TODO: pass dout through where x > 0, zero elsewhere.
    ### BEGIN SOLUTION
    dx = dout * (x > 0)
    ### END SOLUTION
    return dx


# --------------------------------------------------------------------------------------------
# Loss layers
# --------------------------------------------------------------------------------------------
def _check_scores_and_labels(x, y, what):
    """Validate scores x (N, C) and integer labels y (N,) in [0, C)."""
    check_ndim("x (the scores)", x, 2, "(N, C)")
    y = np.asarray(y)
    if y.shape != (x.shape[0],):
        raise ValueError(f"{what}: y must have shape ({x.shape[0]},), one label per row of x, "
                         f"got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what}: labels must be integers, got dtype {y.dtype}; "
                         "use y.astype(int)")
    if y.size and (y.min() < 0 or y.max() >= x.shape[1]):
        raise ValueError(f"{what}: labels must lie in [0, {x.shape[1]}) for {x.shape[1]} classes, "
                         f"got labels from {y.min()} to {y.max()}")
    return y


def svm_loss(x, y):
    """Multiclass SVM (hinge) loss with margin 1, averaged over the batch.

    Inputs:
    - x: scores (N, C); x[i, j] is the score of class j for example i.
    - y: integer labels (N,), 0 <= y[i] < C.
    Returns a tuple of:
    - loss: float, mean over i of sum over j != y[i] of max(0, x[i, j] - x[i, y[i]] + 1).
    - dx: gradient of the loss with respect to x, (N, C).
    """
    y = _check_scores_and_labels(x, y, "svm_loss")
    loss, dx = None, None
    # TODO: the margins, the loss, and its gradient (vectorised, no loop over examples).
    ### BEGIN SOLUTION
    N = x.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, x - x[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = float(margins.sum() / N)
    positive = (margins > 0).astype(x.dtype)
    positive[rows, y] = -positive.sum(axis=1)
    dx = positive / N
    ### END SOLUTION
    return loss, dx


def softmax_loss(x, y):
    """Softmax (cross-entropy) loss, averaged over the batch.

    Inputs:
    - x: scores (N, C).
    - y: integer labels (N,), 0 <= y[i] < C.
    Returns a tuple of:
    - loss: float, mean over i of -log(softmax(x[i])[y[i]]).
    - dx: gradient of the loss with respect to x, (N, C).
    Subtract each row's maximum before exponentiating, or large scores overflow.
    """
    y = _check_scores_and_labels(x, y, "softmax_loss")
    loss, dx = None, None
    # TODO: stable log-softmax, the loss, and dx = (softmax - one_hot(y)) / N.
    ### BEGIN SOLUTION
    N = x.shape[0]
    rows = np.arange(N)
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[rows, y].sum() / N)
    dx = np.exp(log_probs)
    dx[rows, y] -= 1
    dx /= N
    ### END SOLUTION
    return loss, dx


# --------------------------------------------------------------------------------------------
# Normalisation layers
# --------------------------------------------------------------------------------------------
def _check_norm_inputs(x, gamma, beta, what):
    check_ndim("x", x, 2, "(N, D)")
    D = x.shape[1]
    for name, v in (("gamma", gamma), ("beta", beta)):
        if getattr(v, "shape", None) != (D,):
            raise ValueError(f"{what}: {name} must have shape ({D},), one per feature of x "
                             f"{x.shape}, got {getattr(v, 'shape', type(v).__name__)}")


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation: normalise each feature over the batch, then scale and shift.

    In 'train' mode the batch's own mean and variance are used, and running averages are kept
        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
    (likewise running_var); in 'test' mode the running averages are used instead.

    Inputs:
    - x: data (N, D).
    - gamma: scale (D,).
    - beta: shift (D,).
    - bn_param: dict with 'mode' ('train' or 'test'), and optionally 'eps' (default 1e-5),
      'momentum' (default 0.9), 'running_mean' and 'running_var' (D,), which are created as
      zeros if missing and updated in place of the dict in train mode.
    Returns a tuple of:
    - out: (N, D)
    - cache: what batchnorm_backward needs (None in test mode).
    """
    _check_norm_inputs(x, gamma, beta, "batchnorm_forward")
    mode = bn_param.get("mode")
    if mode not in ("train", "test"):
        raise ValueError(f"batchnorm_forward: bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    out, cache = None, None
    if mode == "train":
        # TODO: batch mean and variance, normalise, scale and shift, update the running
        # averages, and store in `cache` whatever your backward pass needs.
        ### BEGIN SOLUTION
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        inv_std = 1.0 / np.sqrt(var + eps)
        x_hat = (x - mu) * inv_std
        out = gamma * x_hat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        cache = (x, x_hat, mu, var, inv_std, gamma, eps)
        ### END SOLUTION
    else:
        # TODO: normalise with the running averages, then scale and shift.
        ### BEGIN SOLUTION
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        ### END SOLUTION

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass of batch normalisation, step by step through its computational graph.

    Inputs:
    - dout: upstream gradient (N, D).
    - cache: from batchnorm_forward in train mode.
    Returns a tuple of: dx (N, D), dgamma (D,), dbeta (D,).
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: backpropagate through x_hat = (x - mu) / sqrt(var + eps), one node at a time.
    ### BEGIN SOLUTION
    x, x_hat, mu, var, inv_std, gamma, eps = cache
    N = x.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    x_mu = x - mu
    dvar = np.sum(dx_hat * x_mu, axis=0) * -0.5 * inv_std ** 3
    dmu = -np.sum(dx_hat * inv_std, axis=0) - 2.0 * dvar * x_mu.mean(axis=0)
    dx = dx_hat * inv_std + dvar * 2.0 * x_mu / N + dmu / N
    ### END SOLUTION
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """Backward pass of batch normalisation from the simplified closed form.

    Same inputs and outputs as batchnorm_backward; work the derivative out on paper first, then
    write dx in a single expression of dout, x_hat and the inverse standard deviation.
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: derive dx on paper first; it is one expression in dx_hat = dout * gamma, x_hat,
    # the inverse standard deviation and two sums over the batch (axis 0).
    ### BEGIN SOLUTION
    _, x_hat, _, _, inv_std, gamma, _ = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = inv_std / N * (N * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    ### END SOLUTION
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalisation: normalise each example over its features, then scale and shift.

    Unlike batchnorm, train and test behave the same and no running averages are kept.

    Inputs:
    - x: data (N, D).
    - gamma: scale (D,).
    - beta: shift (D,).
    - ln_param: dict, optionally with 'eps' (default 1e-5).
    Returns a tuple of: out (N, D); cache for layernorm_backward.
    """
    _check_norm_inputs(x, gamma, beta, "layernorm_forward")
    eps = ln_param.get("eps", 1e-5)
    out, cache = None, None
    # TODO: the statistics are per row now (axis=1) rather than per column.
    ### BEGIN SOLUTION
    mu = x.mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(x.var(axis=1, keepdims=True) + eps)
    x_hat = (x - mu) * inv_std
    out = gamma * x_hat + beta
    cache = (x_hat, inv_std, gamma)
    ### END SOLUTION
    return out, cache


def layernorm_backward(dout, cache):
    """Backward pass of layer normalisation.

    Inputs: dout (N, D); cache from layernorm_forward.
    Returns a tuple of: dx (N, D), dgamma (D,), dbeta (D,).
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: the batchnorm formula with rows and columns swapped; gamma still acts per column.
    ### BEGIN SOLUTION
    x_hat, inv_std, gamma = cache
    D = dout.shape[1]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = inv_std / D * (D * dx_hat - dx_hat.sum(axis=1, keepdims=True)
                        - x_hat * (dx_hat * x_hat).sum(axis=1, keepdims=True))
    ### END SOLUTION
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------
def dropout_forward(x, dropout_param):
    """Inverted dropout. NOTE: p is the probability of KEEPING a unit, not of dropping it.

    In 'train' mode each unit is kept with probability p and dropped (set to 0) otherwise, and
    the kept units are rescaled so that the expected output equals x: nothing needs rescaling at
    test time. In 'test' mode the layer is the identity.

    Inputs:
    - x: data, any shape.
    - dropout_param: dict with 'p' (keep probability, 0 < p <= 1), 'mode' ('train' or 'test'),
      and optionally 'seed' (int) to make the mask reproducible.
    Returns a tuple of:
    - out: shaped like x, same dtype.
    - cache: (dropout_param, mask); mask, shaped like x, holds the factor each unit was
      multiplied by (0 where dropped), so that out = x * mask; None in test mode.
    """
    p, mode = dropout_param.get("p"), dropout_param.get("mode")
    if p is None or not 0 < p <= 1:
        raise ValueError(f"dropout_forward: dropout_param['p'] is the probability of KEEPING a "
                         f"unit and must be in (0, 1], got {p!r}")
    if mode not in ("train", "test"):
        raise ValueError(f"dropout_forward: dropout_param['mode'] must be 'train' or 'test', got {mode!r}")
    seed = dropout_param.get("seed")
    rng = np.random.default_rng(seed) if seed is not None else np.random

    mask, out = None, None
    if mode == "train":
        # TODO: a random mask that keeps each unit with probability p, and the output. Think
        # about what the kept units must become so that the expected output equals x. Draw all
        # randomness from `rng`, so that a seed makes the mask reproducible.
        ### BEGIN SOLUTION
        mask = (rng.random(x.shape) < p).astype(x.dtype) / np.asarray(p, dtype=x.dtype)
        out = x * mask
        ### END SOLUTION
    else:
        out = x
    cache = (dropout_param, mask)
    return out.astype(x.dtype, copy=False), cache


def dropout_backward(dout, cache):
    """Backward pass of inverted dropout.

    Inputs: dout, upstream gradient of any shape; cache: (dropout_param, mask).
    Returns: dx, shaped like dout.
    """
    dropout_param, mask = cache
    dx = None
    if dropout_param["mode"] == "train":
        # TODO: the gradient flows through the kept units only; what did the forward pass do to them?
        ### BEGIN SOLUTION
        dx = dout * mask
        ### END SOLUTION
    else:
        dx = dout
    return dx


# --------------------------------------------------------------------------------------------
# Convolution and pooling (naive: loops, for understanding; fast_layers.pyx for speed)
# --------------------------------------------------------------------------------------------
def conv_forward_naive(x, w, b, conv_param):
    """Forward pass of a convolutional layer, written with loops.

    Each of the F filters spans the input's full depth C; it slides over the zero-padded input
    with the given stride, and each output value is a dot product of the filter with one window
    of the input, plus the filter's bias.

    Inputs:
    - x: input (N, C, H, W).
    - w: filters (F, C, HH, WW).
    - b: biases (F,).
    - conv_param: dict with 'stride' (int >= 1) and 'pad' (int >= 0 zeros on every side).
    Returns a tuple of:
    - out: (N, F, H_out, W_out), where H_out and W_out count the positions the filter takes
      along each axis (working them out is part of the task); dtype np.result_type(x, w).
    - cache: (x, w, b, conv_param)
    Raises ValueError, with the arithmetic, when the windows do not tile the padded input (the
    given first line checks this, so your sizes can assume the windows fit).
    """
    N, C, H, W, F, HH, WW, stride, pad = check_conv_inputs(x, w, b, conv_param,
                                                           "conv_forward_naive")
    out = None
    # TODO: work out H_out and W_out from H, W, HH, WW, stride and pad (how many positions does
    # a filter take on the padded input?). Then pad x (only the two spatial axes), loop over
    # examples, filters and output positions; each output is one window times a filter, plus a
    # bias.
    ### BEGIN SOLUTION
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty((N, F, H_out, W_out), dtype=np.result_type(x, w))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    ### END SOLUTION
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """Backward pass of a convolutional layer, written with loops.

    Inputs:
    - dout: upstream gradient (N, F, H', W').
    - cache: (x, w, b, conv_param) from conv_forward_naive.
    Returns a tuple of: dx (N, C, H, W), dw (F, C, HH, WW), db (F,).
    """
    x, w, b, conv_param = cache
    N, C, H, W, F, HH, WW, stride, pad = check_conv_inputs(x, w, b, conv_param,
                                                           "conv_backward_naive")
    check_conv_dout(dout, x, w, conv_param, "conv_backward_naive")
    H_out, W_out = dout.shape[2:]
    dx, dw, db = None, None, None
    # TODO: for each output value, what does its upstream gradient send to the window it read,
    # to the filter and to the bias? Mind windows that overlap and the zero padding around x.
    ### BEGIN SOLUTION
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW)
                    dw[f] += dout[n, f, i, j] * xp[n, :, rows, cols]
                    dxp[n, :, rows, cols] += dout[n, f, i, j] * w[f]
    dx = dxp[:, :, pad:pad + H, pad:pad + W]
    db = dout.sum(axis=(0, 2, 3))
    ### END SOLUTION
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """Forward pass of max pooling, written with loops; each channel is pooled on its own.

    Inputs:
    - x: input (N, C, H, W).
    - pool_param: dict with 'pool_height', 'pool_width' and 'stride' (ints); no padding.
    Returns a tuple of:
    - out: (N, C, H_out, W_out), H_out and W_out the number of window positions along each axis
      (working them out is part of the task); dtype of x.
    - cache: (x, pool_param)
    """
    N, C, H, W, PH, PW, stride = check_pool_inputs(x, pool_param, "max_pool_forward_naive")
    out = None
    # TODO: work out H_out and W_out (a pool is a window sweep without padding), then loop over
    # examples, channels and output positions; take each window's maximum.
    ### BEGIN SOLUTION
    H_out = 1 + (H - PH) // stride
    W_out = 1 + (W - PW) // stride
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    out[n, c, i, j] = x[n, c, i * stride:i * stride + PH, j * stride:j * stride + PW].max()
    ### END SOLUTION
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """Backward pass of max pooling: each window's gradient goes to the position of its maximum.

    When a window holds several equal maxima, the whole gradient goes to the first of them in
    row-major order (as np.argmax picks it).

    Inputs:
    - dout: upstream gradient (N, C, H', W').
    - cache: (x, pool_param) from max_pool_forward_naive.
    Returns: dx, (N, C, H, W).
    """
    x, pool_param = cache
    N, C, H, W, PH, PW, stride = check_pool_inputs(x, pool_param, "max_pool_backward_naive")
    check_pool_dout(dout, x, pool_param, "max_pool_backward_naive")
    H_out, W_out = dout.shape[2:]
    dx = None
    # TODO: for each window, find its argmax (np.argmax, then np.unravel_index to get the row
    # and column) and add that window's dout there.
    ### BEGIN SOLUTION
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride:i * stride + PH, j * stride:j * stride + PW]
                    di, dj = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + di, j * stride + dj] += dout[n, c, i, j]
    ### END SOLUTION
    return dx


# --------------------------------------------------------------------------------------------
# Spatial normalisation: per channel over (N, H, W), and per group of channels
# --------------------------------------------------------------------------------------------
def _check_spatial_norm(x, gamma, beta, what):
    check_ndim("x", x, 4, "(N, C, H, W)")
    C = x.shape[1]
    for name, v in (("gamma", gamma), ("beta", beta)):
        if getattr(v, "shape", None) != (C,):
            raise ValueError(f"{what}: {name} must have shape ({C},), one per channel of x "
                             f"{x.shape}, got {getattr(v, 'shape', type(v).__name__)}")


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Spatial batch normalisation: each channel is normalised over the batch AND all pixels.

    Inputs:
    - x: data (N, C, H, W).
    - gamma: scale (C,).
    - beta: shift (C,).
    - bn_param: as for batchnorm_forward ('mode', optional 'eps', 'momentum', running stats (C,)).
    Returns a tuple of: out (N, C, H, W); cache for spatial_batchnorm_backward.
    """
    _check_spatial_norm(x, gamma, beta, "spatial_batchnorm_forward")
    out, cache = None, None
    # TODO: arrange x as a matrix whose columns are the channels and whose rows are every
    # (example, position) pair, call your batchnorm_forward on it, and bring the result back to
    # (N, C, H, W). Mind which axes a plain reshape would mix up. A few lines.
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    rows, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, bn_param)
    out = rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    ### END SOLUTION
    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial batch normalisation.

    Inputs: dout (N, C, H, W); cache from spatial_batchnorm_forward.
    Returns a tuple of: dx (N, C, H, W), dgamma (C,), dbeta (C,).
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: the same rearrangement around batchnorm_backward_alt.
    ### BEGIN SOLUTION
    N, C, H, W = dout.shape
    drows, dgamma, dbeta = batchnorm_backward_alt(dout.transpose(0, 2, 3, 1).reshape(-1, C), cache)
    dx = drows.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    ### END SOLUTION
    return dx, dgamma, dbeta


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group normalisation: the C channels of each example are split into G groups of C // G,
    and each group is normalised over its channels and pixels; then per-channel scale and shift.

    Inputs:
    - x: data (N, C, H, W).
    - gamma: scale (C,).
    - beta: shift (C,).
    - G: number of groups, an integer that divides C.
    - gn_param: dict, optionally with 'eps' (default 1e-5).
    Returns a tuple of: out (N, C, H, W); cache for spatial_groupnorm_backward.
    """
    _check_spatial_norm(x, gamma, beta, "spatial_groupnorm_forward")
    C = x.shape[1]
    if not isinstance(G, (int, np.integer)) or G < 1 or C % G:
        arithmetic = f" ({C} / {G} = {C / G:.2f})" if isinstance(G, (int, np.integer)) and G > 0 else ""
        raise ValueError(f"spatial_groupnorm_forward: G must be a positive integer that divides "
                         f"the {C} channels of x, got G={G!r}{arithmetic}")
    eps = gn_param.get("eps", 1e-5)
    out, cache = None, None
    # TODO: find a view of x in which the numbers of one group of one example sit together,
    # normalise them as layernorm normalises a row, go back to (N, C, H, W), then scale and shift
    # per channel.
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    groups = x.reshape(N, G, -1)
    mu = groups.mean(axis=2, keepdims=True)
    inv_std = 1.0 / np.sqrt(groups.var(axis=2, keepdims=True) + eps)
    x_hat = ((groups - mu) * inv_std).reshape(x.shape)
    out = gamma[None, :, None, None] * x_hat + beta[None, :, None, None]
    cache = (x_hat, inv_std, gamma, G)
    ### END SOLUTION
    return out, cache


def spatial_groupnorm_backward(dout, cache):
    """Backward pass of group normalisation.

    Inputs: dout (N, C, H, W); cache from spatial_groupnorm_forward.
    Returns a tuple of: dx (N, C, H, W), dgamma (C,), dbeta (C,).
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: dgamma and dbeta sum over (N, H, W); dx follows the layernorm formula per group.
    ### BEGIN SOLUTION
    x_hat, inv_std, gamma, G = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    dx_hat = (dout * gamma[None, :, None, None]).reshape(N, G, -1)
    xh = x_hat.reshape(N, G, -1)
    M = xh.shape[2]
    dx = inv_std / M * (M * dx_hat - dx_hat.sum(axis=2, keepdims=True)
                        - xh * (dx_hat * xh).sum(axis=2, keepdims=True))
    dx = dx.reshape(dout.shape)
    ### END SOLUTION
    return dx, dgamma, dbeta
