"""The compiled fast layers (cs231n/fast_layers.pyx) against the naive layers of cs231n.layers.

Random shapes come from hypothesis: stride 1-3, pad 0-3, non-square inputs and kernels, batch
1 (the one-thread path) and more (the threaded path), one channel, pools that tile the input
and pools that do not, overlapping pools. Property tests draw values on a grid of eighths, so
every product and sum is exact in float32 and float64 whatever the order of summation: any
difference from the naive layer is then a wrong index, not rounding. Gaussian data checks the
tolerances (float64 below 1e-10, float32 below 1e-4) on the notebook's shapes.
"""
import numpy as np
import pytest
from helpers import assert_close
from hypothesis import assume, given
from hypothesis import strategies as st

from cs231n import layers as L

# The fast layers take their output sizes from the student's conv_output_shape and pool_output_shape.
pytestmark = [pytest.mark.fast_layers, pytest.mark.conv_output_shape, pytest.mark.pool_output_shape]
TOL = {np.float64: 1e-10, np.float32: 1e-4}


@pytest.fixture(scope="module")
def fl():
    """The compiled module; a failure (not a skip) with its build message when it is missing."""
    try:
        import cs231n.fast_layers as module
    except ImportError as error:
        pytest.fail(str(error))
    return module


def _grid(rng, shape, dtype):
    """Values k/8 with |k| <= 16: products and sums of a few thousand are exact in float32."""
    return (rng.integers(-16, 17, size=shape) / 8).astype(dtype)


@st.composite
def conv_cases(draw):
    """(x, w, b, conv_param, dout) of one dtype for a convolution whose windows fit."""
    stride, pad = draw(st.sampled_from([1, 1, 2, 3])), draw(st.integers(0, 3))
    HH, WW = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    H_out, W_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    H, W = (H_out - 1) * stride + HH - 2 * pad, (W_out - 1) * stride + WW - 2 * pad
    assume(H >= 1 and W >= 1)
    N, C, F = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return (_grid(rng, (N, C, H, W), dtype), _grid(rng, (F, C, HH, WW), dtype),
            _grid(rng, (F,), dtype), {"stride": stride, "pad": pad},
            _grid(rng, (N, F, H_out, W_out), dtype))


def _check_conv(fl, x, w, b, conv_param, dout, tol):
    """Forward and backward of the fast layer against the naive one, and the dtypes.

    Passes where the elementwise relative error is below tol, or where every difference is
    below tol times the largest value (an output that cancels to near 0 has a large relative
    error in float32 that says nothing about the layer)."""
    name = f"conv x{x.shape} w{w.shape} {conv_param} {x.dtype}"
    out, cache = fl.conv_forward_fast(x, w, b, conv_param)
    naive_out, naive_cache = L.conv_forward_naive(x, w, b, conv_param)
    assert out.dtype == x.dtype, f"{name}: output dtype {out.dtype}"
    assert_close(f"{name} forward", out, naive_out, tol, tol * np.abs(naive_out).max())
    grads = fl.conv_backward_fast(dout, cache)
    for label, fast, naive, like in zip(("dx", "dw", "db"), grads,
                                        L.conv_backward_naive(dout, naive_cache), (x, w, b)):
        assert fast.dtype == like.dtype, f"{name}: {label} dtype {fast.dtype}"
        assert_close(f"{name} {label}", fast, naive, tol, tol * np.abs(naive).max())


@pytest.mark.conv_forward_naive
@pytest.mark.conv_backward_naive  # compared with the naive layers
@pytest.mark.parametrize("path", ["auto", "im2col", "shift"])
@given(case=conv_cases())
def test_conv_equals_naive_on_random_shapes(fl, path, case):
    """Both algorithms on the same shapes: im2col, and shifted windows (stride 1 only)."""
    x, w, b, conv_param, dout = case
    fl.CONV_PATH = path
    try:
        _check_conv(fl, x, w, b, conv_param, dout, TOL[x.dtype.type])
    finally:
        fl.CONV_PATH = "auto"


@pytest.mark.conv_forward_naive
@pytest.mark.conv_backward_naive  # compared with the naive layers
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", [
    ((4, 3, 31, 31), (25, 3, 3, 3), 2, 1),   # the notebook's comparison (S1), fewer images
    ((5, 3, 32, 32), (8, 3, 7, 7), 1, 3),    # ThreeLayerConvNet's first layer (S2), smaller
    ((3, 2, 9, 12), (4, 2, 4, 2), 1, 0),     # non-square input and kernel
    ((3, 16, 8, 8), (16, 16, 3, 3), 1, 1),   # channels enough for the shifted windows
    ((2, 2, 1, 2), (3, 2, 7, 7), 1, 3),      # windows mostly padding: one output pixel wide
])
def test_conv_equals_naive_on_gaussian_data(fl, dtype, x_shape, w_shape, stride, pad):
    rng = np.random.default_rng(231)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out, _ = L.conv_forward_naive(x, w, b, {"stride": stride, "pad": pad})
    dout = rng.standard_normal(out.shape).astype(dtype)
    _check_conv(fl, x, w, b, {"stride": stride, "pad": pad}, dout, TOL[dtype])


@pytest.mark.parametrize("path", ["im2col", "shift"])
def test_conv_backward_without_dx_gives_the_same_dw_and_db(fl, path):
    """need_dx=False (a network's first layer) returns None for dx and the same dw, db."""
    rng = np.random.default_rng(3)
    x, w, b = (_grid(rng, shape, np.float64) for shape in ((3, 2, 7, 7), (4, 2, 3, 3), (4,)))
    fl.CONV_PATH = path
    try:
        out, cache = fl.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
        dout = _grid(rng, out.shape, np.float64)
        dx, dw, db = fl.conv_backward_fast(dout, cache, need_dx=False)
        _, dw_all, db_all = fl.conv_backward_fast(dout, cache)
    finally:
        fl.CONV_PATH = "auto"
    assert dx is None
    assert np.array_equal(dw, dw_all) and np.array_equal(db, db_all)


@pytest.mark.conv_forward_naive
@pytest.mark.conv_backward_naive  # compared with the naive layers
def test_conv_keeps_the_input_dtype_and_accepts_views(fl):
    """float32 x with float64 w gives float32 out and dx, float64 dw; strided views are fine."""
    rng = np.random.default_rng(0)
    x = _grid(rng, (3, 2, 6, 10), np.float32)[:, :, :, ::2]
    w, b = _grid(rng, (3, 2, 3, 3), np.float64), _grid(rng, (3,), np.float64)
    out, cache = fl.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    dx, dw, db = fl.conv_backward_fast(np.ones_like(out), cache)
    dtypes = (out.dtype, dx.dtype, dw.dtype, db.dtype)
    assert dtypes == (np.float32, np.float32, np.float64, np.float64), dtypes
    naive_out, naive_cache = L.conv_forward_naive(x.astype(np.float64), w, b,
                                                  {"stride": 1, "pad": 1})
    assert_close("conv on a view", out, naive_out, 1e-6, 0)
    assert_close("conv dw on a view", dw, L.conv_backward_naive(np.ones(out.shape), naive_cache)[1],
                 1e-6, 0)


@st.composite
def pool_cases(draw):
    """(x, pool_param, dout): tiling or not, overlapping or not, with many ties (values 0-2)."""
    PH, PW, stride = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    if draw(st.booleans()):  # a pool that tiles the input: the reshape path, 2x2 most often
        PH = PW = stride = draw(st.sampled_from([2, 2, 1, 3]))
    H_out, W_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = (H_out - 1) * stride + PH, (W_out - 1) * stride + PW
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.integers(0, 3, size=(N, C, H, W)).astype(dtype)
    return x, {"pool_height": PH, "pool_width": PW, "stride": stride}, _grid(
        rng, (N, C, H_out, W_out), dtype)


def _check_pool(fl, x, pool_param, dout):
    """Fast max pooling equals the naive one exactly (NaN where it has NaN), dtypes kept."""
    name = f"max pool x{x.shape} {pool_param} {x.dtype}"
    out, cache = fl.max_pool_forward_fast(x, pool_param)
    naive_out, naive_cache = L.max_pool_forward_naive(x, pool_param)
    assert out.dtype == x.dtype, f"{name}: output dtype {out.dtype}"
    assert np.array_equal(out, naive_out, equal_nan=True), f"{name}: forward differs"
    dx = fl.max_pool_backward_fast(dout, cache)
    assert dx.dtype == x.dtype, f"{name}: dx dtype {dx.dtype}"
    naive_dx = L.max_pool_backward_naive(dout, naive_cache)
    assert np.array_equal(dx, naive_dx), (
        f"{name}: backward differs at {np.argwhere(dx != naive_dx)[:3].tolist()}")


@pytest.mark.max_pool_forward_naive
@pytest.mark.max_pool_backward_naive  # compared with the naive layers
@pytest.mark.parametrize("threaded", [False, True])
@given(case=pool_cases())
def test_max_pool_equals_naive_on_random_shapes_with_ties(fl, threaded, case):
    """Small pools run on one thread; threaded=True forces the threaded loops on them too."""
    default = fl.POOL_PARALLEL_MIN
    fl.POOL_PARALLEL_MIN = 0 if threaded else default
    try:
        _check_pool(fl, *case)
    finally:
        fl.POOL_PARALLEL_MIN = default


@pytest.mark.max_pool_forward_naive
@pytest.mark.max_pool_backward_naive  # compared with the naive layers
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, pool", [
    ((2, 3, 32, 32), (2, 2, 2)),   # the network's pool: the reshape path's 2x2 kernel
    ((2, 3, 13, 13), (3, 3, 2)),   # overlapping, as in AlexNet: the im2col path
    ((1, 2, 9, 13), (3, 4, 3)),    # non-square windows that do not tile
    ((2, 1, 12, 8), (4, 4, 4)),    # tiling windows larger than 2x2
])
def test_max_pool_equals_naive_on_gaussian_data_and_nan(fl, dtype, x_shape, pool):
    rng = np.random.default_rng(7)
    pool_param = dict(zip(("pool_height", "pool_width", "stride"), pool))
    x = rng.standard_normal(x_shape).astype(dtype)
    out, _ = L.max_pool_forward_naive(x, pool_param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    _check_pool(fl, x, pool_param, dout)
    x[rng.random(x_shape) < 0.05] = np.nan  # np.max gives NaN, np.argmax the first NaN
    _check_pool(fl, x, pool_param, dout)


def test_max_pool_ties_go_to_the_first_maximum(fl):
    x = np.array([[0, 5, 1, 1], [5, 2, 1, 1]], dtype=np.float32)[None, None]
    out, cache = fl.max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = fl.max_pool_backward_fast(np.array([[[[3.0, 4.0]]]], dtype=np.float32), cache)
    assert np.array_equal(out[0, 0], [[5, 1]])
    assert np.array_equal(dx[0, 0], [[0, 3, 4, 0], [0, 0, 0, 0]])


def test_im2col_and_col2im_are_adjoint(fl):
    """<im2col(x), c> == <x, col2im(c)> for any x, c: col2im is im2col's transpose."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 10))
    cols = fl.im2col(x, 3, 2, 2, 1)
    assert cols.shape == (3 * 3 * 2, 2 * 4 * 6)
    c = rng.standard_normal(cols.shape)
    dx = fl.col2im(c, x.shape, 3, 2, 2, 1)
    assert abs(np.vdot(cols, c) - np.vdot(x, dx)) < 1e-10 * np.abs(cols * c).sum()
    # column (n=1, h_out=0, w_out=1) holds the window at rows -1..1, columns 1..2 (pad 1)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert np.array_equal(cols[:, 1 * 24 + 1], xp[1, :, 0:3, 2:4].ravel())


@pytest.mark.parametrize("layer, args, fragment", [
    ("conv_forward_fast", ((1, 1, 7, 7), (1, 1, 3, 3), (1,), {"stride": 3, "pad": 0}),
     "(7 + 2*0 = 7) less one window (3) leaves 4, which the stride 3 does not divide"),
    ("conv_forward_fast", ((1, 3, 8, 8), (2, 4, 3, 3), (2,), {"stride": 1, "pad": 1}),
     "x has 3 channels but each filter in w has 4"),
    ("max_pool_forward_fast", ((1, 1, 4, 4), {"pool_height": 5, "pool_width": 2, "stride": 1}),
     "window (5) is larger than the padded input"),
])
def test_errors_are_the_naive_layers_errors(fl, layer, args, fragment):
    """The same ValueError, arithmetic included, as the naive layer; only the name differs."""
    args = tuple(np.zeros(a) if isinstance(a, tuple) else a for a in args)
    with pytest.raises(ValueError) as fast_error:
        getattr(fl, layer)(*args)
    with pytest.raises(ValueError) as naive_error:
        getattr(L, layer.replace("fast", "naive"))(*args)
    assert fragment in str(fast_error.value)
    assert str(fast_error.value).replace("fast", "naive") == str(naive_error.value)


def test_bad_inputs_are_errors_that_say_how_to_fix_them(fl):
    with pytest.raises(TypeError, match=r"float32 or float64.*astype"):
        fl.conv_forward_fast(np.zeros((1, 1, 3, 3), dtype=np.int64), np.zeros((1, 1, 3, 3)),
                             np.zeros(1), {"stride": 1, "pad": 1})
    _, cache = fl.max_pool_forward_fast(np.zeros((1, 1, 4, 4)),
                                        {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match=r"dout must be shaped like the forward output"):
        fl.max_pool_backward_fast(np.zeros((1, 1, 4, 4)), cache)
    with pytest.raises(ValueError, match=r"cache must be the \(x, pool_param, argmax\)"):
        fl.max_pool_backward_fast(np.zeros((1, 1, 2, 2)), cache[:2])
