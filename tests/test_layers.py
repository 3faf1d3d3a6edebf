"""The layers of cs231n.layers against independent implementations, numerical gradients and, for
the convolution and pooling, values stored from the instructor's solution (cs231n.stored).

Each test carries the mark of the student task it checks: `pytest -m conv_forward_naive`.
"""
import math

import numpy as np
import pytest
import scipy.special
from hypothesis import assume, given
from hypothesis import strategies as st

from cs231n import layers as L
from cs231n.stored import stored_case
from helpers import assert_close, check_backward

m = pytest.mark


def _normal(rng, *shape):
    return rng.standard_normal(shape)


# --------------------------------------------------------------------------------------------
# Affine and ReLU
# --------------------------------------------------------------------------------------------
@m.affine_forward
def test_affine_forward_matches_einsum(rng):
    x, w, b = _normal(rng, 4, 2, 3, 5), _normal(rng, 30, 7), _normal(rng, 7)
    out, _ = L.affine_forward(x, w, b)
    assert_close("affine_forward", out, np.einsum("nijk,ijkm->nm", x, w.reshape(2, 3, 5, 7)) + b, 1e-12)


@m.affine_backward
@given(n=st.integers(1, 4), dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       outputs=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_affine_backward_numerically(n, dims, outputs, seed):
    rng = np.random.default_rng(seed)
    x, w, b = _normal(rng, n, *dims), _normal(rng, math.prod(dims), outputs), _normal(rng, outputs)
    out, cache = L.affine_forward(x, w, b)
    dout = _normal(rng, *out.shape)
    dx, dw, db = L.affine_backward(dout, cache)
    assert dx.shape == x.shape
    check_backward("affine_backward", lambda *a: L.affine_forward(*a)[0], [x, w, b], [dx, dw, db], dout)


@m.relu_forward
def test_relu_forward(rng):
    x = _normal(rng, 3, 4)
    out, _ = L.relu_forward(x)
    assert_close("relu_forward", out, np.where(x > 0, x, 0.0), 1e-15)


@m.relu_backward
def test_relu_backward_numerically(rng):
    x = _normal(rng, 5, 6)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink, where the numerical gradient is wrong
    out, cache = L.relu_forward(x)
    dout = _normal(rng, *out.shape)
    check_backward("relu_backward", lambda z: L.relu_forward(z)[0], [x],
                   [L.relu_backward(dout, cache)], dout)


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------
@m.softmax_loss
def test_softmax_loss_matches_scipy_and_gradient(rng):
    x, y = _normal(rng, 8, 10), rng.integers(0, 10, 8)
    loss, dx = L.softmax_loss(x, y)
    expected = -scipy.special.log_softmax(x, axis=1)[np.arange(8), y].mean()
    assert abs(loss - expected) < 1e-12
    check_backward("softmax_loss", lambda z: np.array(L.softmax_loss(z, y)[0]), [x], [dx], np.array(1.0))


@m.softmax_loss
def test_softmax_loss_of_small_scores_is_log_of_classes(rng):
    loss, _ = L.softmax_loss(1e-3 * _normal(rng, 50, 10), rng.integers(0, 10, 50))
    assert abs(loss - np.log(10)) < 0.01, f"initial loss {loss:.4f}, expected about log(10) = 2.3026"


@m.softmax_loss
def test_softmax_loss_is_stable_for_huge_scores():
    loss, dx = L.softmax_loss(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dx)) and abs(loss - 500.0) < 1e-9


@m.svm_loss
def test_svm_loss_matches_loops_and_gradient(rng):
    x, y = _normal(rng, 7, 5), rng.integers(0, 5, 7)
    loss, dx = L.svm_loss(x, y)
    expected = sum(max(0.0, x[i, j] - x[i, y[i]] + 1) for i in range(7) for j in range(5) if j != y[i]) / 7
    assert abs(loss - expected) < 1e-12
    check_backward("svm_loss", lambda z: np.array(L.svm_loss(z, y)[0]), [x], [dx], np.array(1.0))


@pytest.mark.parametrize("loss", [L.softmax_loss, L.svm_loss])
@pytest.mark.parametrize("y, fragment", [(np.array([0, 10]), "[0, 10)"), (np.array([0, -1]), "[0, 10)"),
                                         (np.array([0.0, 1.0]), "integers"), (np.array([0]), "shape")])
def test_losses_reject_bad_labels(loss, y, fragment):
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace(")", r"\)")):
        loss(np.zeros((2, 10)), y)


# --------------------------------------------------------------------------------------------
# Batch and layer normalisation
# --------------------------------------------------------------------------------------------
@m.batchnorm_forward
def test_batchnorm_forward_train_normalises_then_scales(rng):
    x = 5 + 3 * _normal(rng, 200, 4)
    gamma, beta = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, -1.0, 1.0, 2.0])
    out, _ = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    assert_close("batchnorm mean", out.mean(axis=0), beta, 1e-7, 1e-12)
    assert_close("batchnorm std", out.std(axis=0), gamma, 1e-5)


@m.batchnorm_forward
def test_batchnorm_running_averages_reach_the_data_statistics(rng):
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(3), np.zeros(3)
    for _ in range(100):
        L.batchnorm_forward(2 + 4 * _normal(rng, 100, 3), gamma, beta, bn_param)
    bn_param["mode"] = "test"
    out, _ = L.batchnorm_forward(2 + 4 * _normal(rng, 2000, 3), gamma, beta, bn_param)
    assert np.all(np.abs(out.mean(axis=0)) < 0.15) and np.all(np.abs(out.std(axis=0) - 1) < 0.1)


@m.batchnorm_forward
def test_batchnorm_momentum_formula(rng):
    x = _normal(rng, 10, 2)
    bn_param = {"mode": "train", "momentum": 0.8, "running_mean": np.ones(2), "running_var": np.ones(2)}
    L.batchnorm_forward(x, np.ones(2), np.zeros(2), bn_param)
    assert_close("running_mean", bn_param["running_mean"], 0.8 + 0.2 * x.mean(axis=0), 1e-12)
    assert_close("running_var", bn_param["running_var"], 0.8 + 0.2 * x.var(axis=0), 1e-12)


def _norm_case(seed, n, d):
    rng = np.random.default_rng(seed)
    return _normal(rng, n, d) * 2 + 1, _normal(rng, d), _normal(rng, d), _normal(rng, n, d)


@m.batchnorm_backward
@given(n=st.integers(3, 6), d=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_batchnorm_backward_numerically(n, d, seed):
    x, gamma, beta, dout = _norm_case(seed, n, d)
    _, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    check_backward("batchnorm_backward",
                   lambda *a: L.batchnorm_forward(*a, {"mode": "train"})[0],
                   [x, gamma, beta], L.batchnorm_backward(dout, cache), dout, 1e-6)


@m.batchnorm_backward_alt
@given(n=st.integers(3, 8), d=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_batchnorm_backward_alt_equals_full_backward(n, d, seed):
    x, gamma, beta, dout = _norm_case(seed, n, d)
    _, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    full = L.batchnorm_backward(dout, cache)
    for name, a, b in zip(("dx", "dgamma", "dbeta"), L.batchnorm_backward_alt(dout, cache), full):
        assert_close(f"batchnorm_backward_alt {name}", a, b, 1e-9, 1e-12)


@m.layernorm_forward
def test_layernorm_forward_normalises_each_row(rng):
    x = 3 + 2 * _normal(rng, 5, 40)
    out, _ = L.layernorm_forward(x, np.ones(40), np.zeros(40), {})
    assert_close("layernorm mean", out.mean(axis=1), np.zeros(5), 1e-7, 1e-12)
    assert_close("layernorm std", out.std(axis=1), np.ones(5), 1e-5)


@m.layernorm_backward
@given(n=st.integers(1, 5), d=st.integers(3, 6), seed=st.integers(0, 2**16))
def test_layernorm_backward_numerically(n, d, seed):
    x, gamma, beta, dout = _norm_case(seed, n, d)
    _, cache = L.layernorm_forward(x, gamma, beta, {})
    check_backward("layernorm_backward", lambda *a: L.layernorm_forward(*a, {})[0],
                   [x, gamma, beta], L.layernorm_backward(dout, cache), dout, 1e-6)


@pytest.mark.parametrize("forward", [L.batchnorm_forward, L.layernorm_forward])
def test_norms_reject_mismatched_gamma(forward):
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\)"):
        forward(np.zeros((3, 4)), np.ones(3), np.zeros(4), {"mode": "train"})


def test_batchnorm_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        L.batchnorm_forward(np.zeros((3, 4)), np.ones(4), np.zeros(4), {"mode": "eval"})


# --------------------------------------------------------------------------------------------
# Dropout (p = probability of KEEPING a unit)
# --------------------------------------------------------------------------------------------
@m.dropout_forward
@pytest.mark.parametrize("p", [0.25, 0.5, 0.9])
def test_dropout_keeps_a_fraction_p_and_preserves_the_mean(p):
    x = np.random.default_rng(0).standard_normal((500, 500)) + 10
    out, _ = L.dropout_forward(x, {"mode": "train", "p": p, "seed": 1})
    kept = np.mean(out != 0)
    assert abs(kept - p) < 0.01, f"kept {kept:.3f} of the units with p={p} (p is the KEEP probability)"
    assert abs(out.mean() - x.mean()) < 0.1, "inverted dropout must divide kept units by p"
    kept = out != 0
    assert np.allclose(out[kept], x[kept] / p, rtol=1e-12), "every kept unit must be x / p"
    test_out, _ = L.dropout_forward(x, {"mode": "test", "p": p})
    assert np.array_equal(test_out, x)


@m.dropout_forward
def test_dropout_seed_makes_masks_reproducible_and_keeps_dtype(rng):
    x = rng.standard_normal((20, 30)).astype(np.float32)
    a, _ = L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 3})
    b, _ = L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 3})
    assert np.array_equal(a, b) and a.dtype == np.float32


@m.dropout_backward
def test_dropout_backward_numerically(rng):
    x, dout = _normal(rng, 6, 7), _normal(rng, 6, 7)
    param = {"mode": "train", "p": 0.6, "seed": 5}
    _, cache = L.dropout_forward(x, param)
    check_backward("dropout_backward", lambda z: L.dropout_forward(z, param)[0], [x],
                   [L.dropout_backward(dout, cache)], dout)


@pytest.mark.parametrize("p", [0, 1.5, -0.1, None])
def test_dropout_rejects_bad_keep_probability(p):
    with pytest.raises(ValueError, match="KEEPING"):
        L.dropout_forward(np.zeros(3), {"mode": "train", "p": p})


# --------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------
@st.composite
def conv_cases(draw, max_out=3):
    """A convolution that fits: batch 1-2, channels 1-3, non-square kernels, stride 1-3, pad 0-3."""
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 3))
    HH, WW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H_out, W_out = draw(st.integers(1, max_out)), draw(st.integers(1, max_out))
    H, W = (H_out - 1) * stride + HH - 2 * pad, (W_out - 1) * stride + WW - 2 * pad
    assume(H >= 1 and W >= 1)
    N, C, F = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return (_normal(rng, N, C, H, W), _normal(rng, F, C, HH, WW), _normal(rng, F),
            {"stride": stride, "pad": pad}, rng)


@m.conv_forward_naive
@pytest.mark.parametrize("name", ["conv_forward/stride2_pad1", "conv_forward/rectangular_stride3_pad2"])
def test_conv_forward_matches_the_stored_values(name):
    """Fixed inputs, and the outputs the instructor's solution gave for them (cs231n.stored)."""
    case = stored_case(name)
    x_before = case["x"].copy()
    out, _ = L.conv_forward_naive(case["x"], case["w"], case["b"], {"stride": case["stride"], "pad": case["pad"]})
    assert_close(f"conv_forward_naive, stored case {name}", out, case["out"], 1e-10, 1e-12)
    assert np.array_equal(case["x"], x_before), "conv_forward_naive must not change its input x"


@m.conv_forward_naive
def test_conv_forward_lecture_example_sizes(rng):
    """32x32x3 with ten 5x5 filters, stride 1, pad 2 gives 32x32x10 (the lecture's example)."""
    out, _ = L.conv_forward_naive(_normal(rng, 1, 3, 32, 32), _normal(rng, 10, 3, 5, 5),
                                  np.zeros(10), {"stride": 1, "pad": 2})
    assert out.shape == (1, 10, 32, 32)


@m.conv_backward_naive
@given(case=conv_cases())
def test_conv_backward_numerically(case):
    x, w, b, conv_param, rng = case
    out, cache = L.conv_forward_naive(x, w, b, conv_param)
    dout = _normal(rng, *out.shape)
    check_backward(f"conv_backward_naive {conv_param}",
                   lambda *a: L.conv_forward_naive(*a, conv_param)[0],
                   [x, w, b], L.conv_backward_naive(dout, cache), dout, 1e-6)


@pytest.mark.parametrize("x, w, b, conv_param, fragment", [
    ((1, 1, 7, 7), (1, 1, 3, 3), (1,), {"stride": 3, "pad": 0},
     "(7 + 2*0 = 7) less one window (3) leaves 4, which the stride 3 does not divide"),
    ((1, 3, 8, 8), (2, 4, 3, 3), (2,), {"stride": 1, "pad": 1}, "x has 3 channels but each filter in w has 4"),
    ((1, 1, 4, 4), (1, 1, 7, 7), (1,), {"stride": 1, "pad": 1}, "larger than the padded input (4 + 2*1 = 6)"),
    ((1, 1, 4, 4), (2, 1, 3, 3), (3,), {"stride": 1, "pad": 1}, "b must have shape (2,)"),
    ((1, 1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 1}, "conv_param is missing ['pad']"),
    ((1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 1, "pad": 0}, "x must be a 4-d array"),
    ((1, 1, 4, 4), (1, 1, 3, 3), (1,), {"stride": 0, "pad": 0}, "stride must be an integer >= 1"),
])
def test_conv_errors_show_what_is_wrong(x, w, b, conv_param, fragment):
    with pytest.raises(ValueError) as info:
        L.conv_forward_naive(np.zeros(x), np.zeros(w), np.zeros(b), conv_param)
    assert fragment in str(info.value)


# --------------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------------
@st.composite
def pool_cases(draw):
    """A pool that fits: tiling or not, overlapping (3x3 stride 2) or not, non-square windows."""
    PH, PW, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H_out, W_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H, W = (H_out - 1) * stride + PH, (W_out - 1) * stride + PW
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    # distinct values at least 1e-3 apart: no ties, and a 1e-5 nudge never changes the argmax
    size = N * C * H * W
    x = rng.permutation(size).reshape(N, C, H, W) / size
    return x, {"pool_height": PH, "pool_width": PW, "stride": stride}, rng


@m.max_pool_forward_naive
@pytest.mark.parametrize("name", ["max_pool_forward/2x2_stride2", "max_pool_forward/3x2_stride1_negative"])
def test_max_pool_forward_matches_the_stored_values(name):
    case = stored_case(name)
    pp = {k: case[k] for k in ("pool_height", "pool_width", "stride")}
    out, _ = L.max_pool_forward_naive(case["x"], pp)
    assert_close(f"max_pool_forward_naive, stored case {name}", out, case["out"], 1e-15)


@m.max_pool_forward_naive
def test_max_pool_lecture_example():
    """The lecture's 4x4 slice pooled 2x2 stride 2 gives [[6, 8], [3, 4]]."""
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=float)[None, None]
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    assert np.array_equal(L.max_pool_forward_naive(x, pp)[0][0, 0], [[6, 8], [3, 4]])


@m.max_pool_backward_naive
@given(case=pool_cases())
def test_max_pool_backward_numerically(case):
    x, pp, rng = case
    out, cache = L.max_pool_forward_naive(x, pp)
    dout = _normal(rng, *out.shape)
    check_backward(f"max_pool_backward_naive {pp}", lambda z: L.max_pool_forward_naive(z, pp)[0],
                   [x], [L.max_pool_backward_naive(dout, cache)], dout)


@m.max_pool_backward_naive
def test_max_pool_backward_sends_ties_to_the_first_maximum():
    x = np.ones((1, 1, 2, 2))
    _, cache = L.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = L.max_pool_backward_naive(np.full((1, 1, 1, 1), 3.0), cache)
    assert np.array_equal(dx[0, 0], [[3.0, 0.0], [0.0, 0.0]])


def test_pool_larger_than_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"window \(5\) is larger than the padded input"):
        L.max_pool_forward_naive(np.zeros((1, 1, 4, 4)), {"pool_height": 5, "pool_width": 2, "stride": 1})


# --------------------------------------------------------------------------------------------
# Spatial batchnorm and group norm
# --------------------------------------------------------------------------------------------
def _spatial_case(seed, N=3, C=4, H=3, W=2):
    rng = np.random.default_rng(seed)
    return 2 + 3 * _normal(rng, N, C, H, W), _normal(rng, C), _normal(rng, C), _normal(rng, N, C, H, W)


@m.spatial_batchnorm_forward
def test_spatial_batchnorm_normalises_each_channel_over_batch_and_pixels():
    x, _, _, _ = _spatial_case(0, N=10, C=3, H=4, W=5)
    out, _ = L.spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    assert_close("spatial batchnorm mean", out.mean(axis=(0, 2, 3)), np.zeros(3), 1e-7, 1e-12)
    assert_close("spatial batchnorm std", out.std(axis=(0, 2, 3)), np.ones(3), 1e-5)


@m.spatial_batchnorm_backward
@given(seed=st.integers(0, 2**16), N=st.integers(1, 3), C=st.integers(1, 3), H=st.integers(1, 3))
def test_spatial_batchnorm_backward_numerically(seed, N, C, H):
    assume(N * H * 2 > 2)
    x, gamma, beta, dout = _spatial_case(seed, N, C, H, 2)
    _, cache = L.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    check_backward("spatial_batchnorm_backward",
                   lambda *a: L.spatial_batchnorm_forward(*a, {"mode": "train"})[0],
                   [x, gamma, beta], L.spatial_batchnorm_backward(dout, cache), dout, 1e-6)


@m.spatial_groupnorm_forward
def test_groupnorm_normalises_each_group_of_each_example():
    x, _, _, _ = _spatial_case(1, N=2, C=6, H=4, W=4)
    out, _ = L.spatial_groupnorm_forward(x, np.ones(6), np.zeros(6), 3, {})
    groups = out.reshape(2, 3, -1)
    assert_close("groupnorm mean", groups.mean(axis=2), np.zeros((2, 3)), 1e-7, 1e-12)
    assert_close("groupnorm std", groups.std(axis=2), np.ones((2, 3)), 1e-5)


@m.spatial_groupnorm_backward
@given(seed=st.integers(0, 2**16), G=st.sampled_from([1, 2, 4]))
def test_groupnorm_backward_numerically(seed, G):
    x, gamma, beta, dout = _spatial_case(seed, N=2, C=4, H=2, W=3)
    _, cache = L.spatial_groupnorm_forward(x, gamma, beta, G, {})
    check_backward(f"spatial_groupnorm_backward G={G}",
                   lambda *a: L.spatial_groupnorm_forward(*a, G, {})[0],
                   [x, gamma, beta], L.spatial_groupnorm_backward(dout, cache), dout, 1e-6)


def test_groupnorm_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match=r"divides the 4 channels of x, got G=3 \(4 / 3 = 1.33\)"):
        L.spatial_groupnorm_forward(np.zeros((1, 4, 2, 2)), np.ones(4), np.zeros(4), 3, {})


def test_affine_rejects_mismatched_features():
    with pytest.raises(ValueError, match=r"3\*4 = 12 features but w has 10 rows"):
        L.affine_forward(np.zeros((2, 3, 4)), np.zeros((10, 5)), np.zeros(5))
