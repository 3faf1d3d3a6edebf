"""Sandwich layers: common sequences of layers packed into one forward and one backward.

Each pair follows the layer convention of cs231n.layers. The convolutional sandwiches use the
compiled fast layers when they are built (`make install`) and the naive layers otherwise;
`FAST_LAYERS` says which.
"""
from .layers import (affine_backward, affine_forward, batchnorm_backward_alt, batchnorm_forward,
                     layernorm_backward, layernorm_forward,
                     relu_backward, relu_forward, spatial_batchnorm_backward,
                     spatial_batchnorm_forward)
from .shapes import check_ndim

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



# --------------------------------------------------------------------------------------------
# The residual block (He et al. 2015): the two convolutions learn a change to their input
# --------------------------------------------------------------------------------------------
MAIN_PATH_KEYS = ("W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2")
PROJECTION_KEYS = ("Wp", "bp", "gammap", "betap")


def _check_residual_block(x, params, bn_params, stride):
    """Validate the inputs of residual_block_forward; return True when the shortcut is the
    1x1 projection, False when it is the identity."""
    check_ndim("x", x, 4, "(N, C, H, W)")
    missing = [k for k in MAIN_PATH_KEYS if k not in params]
    if missing:
        raise ValueError(f"residual_block_forward: params is missing {missing}; it needs "
                         f"{list(MAIN_PATH_KEYS)}, plus {list(PROJECTION_KEYS)} for a projection")
    if stride not in (1, 2):
        raise ValueError(f"residual_block_forward: stride must be 1 or 2, got {stride!r}")
    C, F = x.shape[1], params["W1"].shape[0]
    projection = "Wp" in params
    changes_shape = stride != 1 or C != F
    if changes_shape and not projection:
        raise ValueError(f"residual_block_forward: the block maps {C} channels to {F} with stride "
                         f"{stride}, so x cannot be added to the output as it is; pass the 1x1 "
                         f"projection {list(PROJECTION_KEYS)} (Wp shaped ({F}, {C}, 1, 1))")
    if projection and any(k not in params for k in PROJECTION_KEYS):
        raise ValueError(f"residual_block_forward: a projection needs all of {list(PROJECTION_KEYS)}, "
                         f"got {sorted(k for k in PROJECTION_KEYS if k in params)}")
    if len(bn_params) != 2 + projection:
        raise ValueError(f"residual_block_forward: bn_params must hold {2 + projection} bn_param "
                         f"dicts (one per batchnorm{', the third for the projection' if projection else ''}), "
                         f"got {len(bn_params)}")
    return projection


def residual_block_forward(x, params, bn_params, stride=1):
    """Forward pass of a basic residual block.

    main path: conv 3x3 (stride, pad 1) - spatial batchnorm - relu - conv 3x3 (stride 1, pad 1)
    - spatial batchnorm; shortcut: x itself (identity), or, when the shape changes (stride 2 or
    C != F), a 1x1 projection: conv 1x1 (stride, pad 0) - spatial batchnorm. Then
    out = relu(main path + shortcut).

    Inputs:
    - x: input (N, C, H, W).
    - params: dict with W1 (F, C, 3, 3), b1 (F,), gamma1, beta1 (F,), W2 (F, F, 3, 3), b2,
      gamma2, beta2 (F,), and for a projection shortcut Wp (F, C, 1, 1), bp, gammap, betap (F,).
      The shortcut is the projection exactly when params holds 'Wp'.
    - bn_params: list of bn_param dicts (see batchnorm_forward): [main 1, main 2] or
      [main 1, main 2, projection]; their running averages are updated in train mode.
    - stride: 1 or 2, the stride of the first conv (and of the projection).
    Returns a tuple of:
    - out: (N, F, H', W'), H' and W' the size after the strided conv.
    - cache: whatever residual_block_backward needs.
    Use the layers imported in this module (conv_forward is the fast conv when it is built).
    """
    projection = _check_residual_block(x, params, bn_params, stride)
    out, cache = None, None
    # TODO: the main path, the shortcut, their sum and the final relu; keep every cache.
    ### BEGIN SOLUTION
    p = params
    h, cache1 = conv_bn_relu_forward(x, p["W1"], p["b1"], p["gamma1"], p["beta1"],
                                     {"stride": stride, "pad": 1}, bn_params[0])
    a, cache2 = conv_forward(h, p["W2"], p["b2"], {"stride": 1, "pad": 1})
    a, cache3 = spatial_batchnorm_forward(a, p["gamma2"], p["beta2"], bn_params[1])
    shortcut, cache_p = x, None
    if projection:
        s, conv_cache = conv_forward(x, p["Wp"], p["bp"], {"stride": stride, "pad": 0})
        shortcut, bn_cache = spatial_batchnorm_forward(s, p["gammap"], p["betap"], bn_params[2])
        cache_p = (conv_cache, bn_cache)
    out, relu_cache = relu_forward(a + shortcut)
    cache = (cache1, cache2, cache3, cache_p, relu_cache)
    ### END SOLUTION
    return out, cache


def residual_block_backward(dout, cache):
    """Backward pass of residual_block_forward.

    Inputs: dout (N, F, H', W'); cache from residual_block_forward.
    Returns a tuple of:
    - dx: (N, C, H, W).
    - grads: dict with the same keys as the block's params, each gradient shaped like its
      parameter.
    """
    dx, grads = None, {}
    # TODO: back through the final relu, then both branches; x reached the output along two
    # paths, so what happens to its gradients?
    ### BEGIN SOLUTION
    cache1, cache2, cache3, cache_p, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    dh, grads["gamma2"], grads["beta2"] = spatial_batchnorm_backward(da, cache3)
    dh, grads["W2"], grads["b2"] = conv_backward(dh, cache2)
    dx, grads["W1"], grads["b1"], grads["gamma1"], grads["beta1"] = conv_bn_relu_backward(dh, cache1)
    if cache_p is None:
        dx = dx + da
    else:
        conv_cache, bn_cache = cache_p
        ds, grads["gammap"], grads["betap"] = spatial_batchnorm_backward(da, bn_cache)
        dxs, grads["Wp"], grads["bp"] = conv_backward(ds, conv_cache)
        dx = dx + dxs
    ### END SOLUTION
    return dx, grads
