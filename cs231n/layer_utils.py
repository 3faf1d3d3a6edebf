"""Sandwich layers: common sequences of layers packed into one forward and one backward.

Each pair follows the layer convention of cs231n.layers. The convolutional sandwiches use the
compiled fast layers when they are built (`make install`) and the naive layers otherwise;
`FAST_LAYERS` says which.
"""
from .layers import (affine_backward, affine_forward, batchnorm_backward_alt, batchnorm_forward,
                     layernorm_backward, layernorm_forward,
                     relu_backward, relu_forward, spatial_batchnorm_backward,
                     spatial_batchnorm_forward)

try:
    from .fast_layers import (conv_backward_fast as conv_backward,
                              conv_forward_fast as conv_forward,
                              max_pool_backward_fast as max_pool_backward,
                              max_pool_forward_fast as max_pool_forward)
    FAST_LAYERS = True
except ImportError:
    from .layers import (conv_backward_naive as conv_backward,
                         conv_forward_naive as conv_forward,
                         max_pool_backward_naive as max_pool_backward,
                         max_pool_forward_naive as max_pool_forward)
    FAST_LAYERS = False

NORMALIZATIONS = (None, "batchnorm", "layernorm")


def affine_relu_forward(x, w, b):
    """affine -> relu. Inputs as affine_forward. Returns out (N, M) and a cache."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward of affine_relu_forward. Returns dx, dw, db."""
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)


def affine_norm_relu_forward(x, w, b, gamma, beta, norm_param, normalization):
    """affine -> batchnorm or layernorm (or nothing) -> relu.

    Inputs: x, w, b as affine_forward; gamma, beta (M,); norm_param: bn_param or ln_param;
    normalization: None, 'batchnorm' or 'layernorm'.
    Returns out (N, M) and a cache.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    a, fc_cache = affine_forward(x, w, b)
    norm_cache = None
    if normalization == "batchnorm":
        a, norm_cache = batchnorm_forward(a, gamma, beta, norm_param)
    elif normalization == "layernorm":
        a, norm_cache = layernorm_forward(a, gamma, beta, norm_param)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, norm_cache, relu_cache, normalization)


def affine_norm_relu_backward(dout, cache):
    """Backward of affine_norm_relu_forward. Returns dx, dw, db, dgamma, dbeta (None without norm)."""
    fc_cache, norm_cache, relu_cache, normalization = cache
    da = relu_backward(dout, relu_cache)
    dgamma = dbeta = None
    if normalization == "batchnorm":
        da, dgamma, dbeta = batchnorm_backward_alt(da, norm_cache)
    elif normalization == "layernorm":
        da, dgamma, dbeta = layernorm_backward(da, norm_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_forward(x, w, b, conv_param):
    """conv -> relu. Inputs as conv_forward_naive. Returns out (N, F, H', W') and a cache."""
    a, conv_cache = conv_forward(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    """Backward of conv_relu_forward. Returns dx, dw, db."""
    conv_cache, relu_cache = cache
    return conv_backward(relu_backward(dout, relu_cache), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """conv -> relu -> max pool. Returns out (N, F, H'', W'') and a cache."""
    a, conv_cache = conv_forward(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache, need_dx=True):
    """Backward of conv_relu_pool_forward. Returns dx, dw, db.

    need_dx=False lets the fast layers skip the input gradient, which a network's first layer
    throws away (dx is then None); the naive layers compute it anyway.
    """
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    if FAST_LAYERS:
        return conv_backward(da, conv_cache, need_dx=need_dx)
    return conv_backward(da, conv_cache)


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """conv -> spatial batchnorm -> relu. gamma, beta (F,). Returns out and a cache."""
    a, conv_cache = conv_forward(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout, cache):
    """Backward of conv_bn_relu_forward. Returns dx, dw, db, dgamma, dbeta."""
    conv_cache, bn_cache, relu_cache = cache
    dan, dgamma, dbeta = spatial_batchnorm_backward(relu_backward(dout, relu_cache), bn_cache)
    dx, dw, db = conv_backward(dan, conv_cache)
    return dx, dw, db, dgamma, dbeta

