"""Instructor-only: the answer-bearing checks, kept out of the release (autograder.release.build's
PUBLIC_TESTS leaves this file out, and its leak check refuses such code in what it ships).

The student tasks against independent implementations of themselves (a convolution through
scipy, pooling through sliding windows, a residual block by einsum, the counting formulas by
window positions), and the stored values of cs231n/stored_values.npz against the same
implementations, so the numbers students check against are right.
"""
import math

import numpy as np
import pytest
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from cs231n import layers as L
from cs231n.arch import conv_macs, conv_output_shape, conv_param_count, pool_output_shape, same_pad
from cs231n.layer_utils import residual_block_forward
from cs231n.stored import FILE as STORED_FILE
from cs231n.stored import stored_case, stored_names, stored_params
from helpers import assert_close
from test_layers import _normal, conv_cases, pool_cases
from test_residual import blocks

m = pytest.mark


# --------------------------------------------------------------------------------------------
# Convolution and pooling
# --------------------------------------------------------------------------------------------
def conv_reference(x, w, b, stride, pad):
    """Cross-correlation by scipy, then strided: an implementation independent of ours."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    full = np.array([[scipy.signal.correlate(xi, wf, mode="valid")[0] + bf for wf, bf in zip(w, b)]
                     for xi in xp])
    return full[:, :, ::stride, ::stride]


@m.conv_forward_naive
@given(case=conv_cases(max_out=5))
def test_conv_forward_matches_scipy(case):
    x, w, b, conv_param, _ = case
    out, _ = L.conv_forward_naive(x, w, b, conv_param)
    expected = conv_reference(x, w, b, conv_param["stride"], conv_param["pad"])
    assert_close(f"conv_forward_naive {conv_param}", out, expected, 1e-10, 1e-12)


@m.max_pool_forward_naive
@given(case=pool_cases())
def test_max_pool_forward_matches_sliding_windows(case):
    x, pp, _ = case
    out, _ = L.max_pool_forward_naive(x, pp)
    windows = sliding_window_view(x, (pp["pool_height"], pp["pool_width"]), axis=(2, 3))
    expected = windows[:, :, ::pp["stride"], ::pp["stride"]].max(axis=(4, 5))
    assert_close(f"max_pool_forward_naive {pp}", out, expected, 1e-15)


@m.max_pool_forward_naive
def test_max_pool_lecture_example_and_reshape_max(rng):
    """The lecture's 4x4 slice pooled 2x2 stride 2 gives [[6, 8], [3, 4]]; a batch agrees with
    the reshape-based max whenever the pool tiles the input."""
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=float)[None, None]
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    assert np.array_equal(L.max_pool_forward_naive(x, pp)[0][0, 0], [[6, 8], [3, 4]])
    x = _normal(rng, 3, 2, 8, 6)
    expected = x.reshape(3, 2, 4, 2, 3, 2).max(axis=(3, 5))
    assert np.array_equal(L.max_pool_forward_naive(x, pp)[0], expected)


# --------------------------------------------------------------------------------------------
# The residual block
# --------------------------------------------------------------------------------------------
def _conv(x, w, b, stride, pad):
    """Convolution by einsum over explicit windows: independent of the package's layers."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    F, _, HH, WW = w.shape
    H_out = (xp.shape[2] - HH) // stride + 1
    W_out = (xp.shape[3] - WW) // stride + 1
    windows = np.lib.stride_tricks.sliding_window_view(xp, (HH, WW), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride][:, :, :H_out, :W_out]
    return np.einsum("ncijkl,fckl->nfij", windows, w) + b[None, :, None, None]


def _bn(a, gamma, beta, eps=1e-5):
    mu, var = a.mean(axis=(0, 2, 3), keepdims=True), a.var(axis=(0, 2, 3), keepdims=True)
    return gamma[None, :, None, None] * (a - mu) / np.sqrt(var + eps) + beta[None, :, None, None]


def relu_inputs(x, p, stride):
    """The block's two ReLU inputs: the first batchnorm's output, and main path + shortcut."""
    first = _bn(_conv(x, p["W1"], p["b1"], stride, 1), p["gamma1"], p["beta1"])
    main = _bn(_conv(np.maximum(first, 0), p["W2"], p["b2"], 1, 1), p["gamma2"], p["beta2"])
    shortcut = _bn(_conv(x, p["Wp"], p["bp"], stride, 0), p["gammap"], p["betap"]) if "Wp" in p else x
    return first, main + shortcut


def reference_block(x, p, stride):
    return np.maximum(relu_inputs(x, p, stride)[1], 0)


@m.residual_block_forward
@given(case=blocks())
def test_residual_block_forward_matches_an_independent_computation(case):
    (x, params, bn_params), stride, _ = case
    out, _ = residual_block_forward(x, params, bn_params, stride)
    assert_close(f"residual_block_forward x {x.shape} stride {stride} "
                 f"{'projection' if 'Wp' in params else 'identity'}", out,
                 reference_block(x, params, stride), 1e-8, 1e-10)


# --------------------------------------------------------------------------------------------
# The counting functions of cs231n.arch, by window positions
# --------------------------------------------------------------------------------------------
def _windows(size, field, stride, pad):
    """Independent count of the window positions along one axis, by numpy's sliding windows."""
    return sliding_window_view(np.zeros(size + 2 * pad), field)[::stride].shape[0]



@m.conv_output_shape
@pytest.mark.parametrize("field, pad", [(3, 1), (5, 2), (7, 3)])
@given(size=st.integers(7, 64), depth=st.integers(1, 8), filters=st.integers(1, 8))
def test_pad_f_minus_1_over_2_preserves_the_size(field, pad, size, depth, filters):
    assert pad == (field - 1) // 2
    assert conv_output_shape((size, size + 1, depth), filters, field, 1, pad) == (size, size + 1, filters)



conv_settings = given(h=st.integers(1, 40), w=st.integers(1, 40), c=st.integers(1, 9), k=st.integers(1, 9),
                      field=st.integers(1, 7), stride=st.integers(1, 4), pad=st.integers(0, 3))


def _windows_or_refused(function, h, w, c, k, field, stride, pad):
    """Both axes' window counts; or None, once `function` refused a setting that does not fit."""
    if any(n + 2 * pad < field or (n + 2 * pad - field) % stride for n in (h, w)):
        with pytest.raises(ValueError):
            function((h, w, c), k, field, stride, pad)
        return None
    return _windows(h, field, stride, pad), _windows(w, field, stride, pad)


@m.conv_output_shape
@conv_settings
def test_conv_output_shape_counts_the_window_positions(h, w, c, k, field, stride, pad):
    windows = _windows_or_refused(conv_output_shape, h, w, c, k, field, stride, pad)
    if windows:
        out = conv_output_shape((h, w, c), k, field, stride, pad)
        assert out == (*windows, k)
        assert all(isinstance(d, int) for d in out)



@m.pool_output_shape
@given(h=st.integers(2, 40), c=st.integers(1, 600), field=st.integers(1, 4), stride=st.integers(1, 4))
def test_pool_keeps_the_depth_and_counts_the_windows(h, c, field, stride):
    if h < field or (h - field) % stride:
        with pytest.raises(ValueError):
            pool_output_shape((h, h, c), field, stride)
        return
    assert pool_output_shape((h, h, c), field, stride) == (_windows(h, field, stride, 0),) * 2 + (c,)



@m.conv_param_count
@given(h=st.integers(1, 30), c=st.integers(1, 64), k=st.integers(1, 64), field=st.integers(1, 7))
def test_conv_parameters_do_not_depend_on_the_spatial_size(h, c, k, field):
    assert conv_param_count((h, h + 3, c), k, field) == (field * field * c * k, k)



@m.same_pad
@given(half=st.integers(0, 10), size=st.integers(1, 80))
def test_same_pad_keeps_every_size_at_stride_1(half, size):
    field = 2 * half + 1
    pad = same_pad(field)
    assert _windows(size, field, 1, pad) == size or size + 2 * pad < field



@m.conv_macs
@conv_settings
def test_conv_macs_is_one_dot_product_per_output_value(h, w, c, k, field, stride, pad):
    windows = _windows_or_refused(conv_macs, h, w, c, k, field, stride, pad)
    if windows:
        dot_product = field * field * c  # each output value: one filter against one window, full depth
        assert conv_macs((h, w, c), k, field, stride, pad) == math.prod(windows) * k * dot_product




# --------------------------------------------------------------------------------------------
# The stored values students check against are right
# --------------------------------------------------------------------------------------------
def _independent(name, case):
    if name.startswith("conv_forward/"):
        return conv_reference(case["x"], case["w"], case["b"], case["stride"], case["pad"])
    if name.startswith("max_pool_forward/"):
        windows = sliding_window_view(case["x"], (case["pool_height"], case["pool_width"]), axis=(2, 3))
        return windows[:, :, ::case["stride"], ::case["stride"]].max(axis=(4, 5))
    return reference_block(case["x"], stored_params(case), case["stride"])


FORWARD_CASES = [n for n in stored_names() if n.split("/")[0] in
                 ("conv_forward", "max_pool_forward", "residual_block_forward")]


@pytest.mark.parametrize("name", FORWARD_CASES)
def test_every_stored_forward_value_agrees_with_an_independent_computation(name):
    case = stored_case(name)
    assert_close(f"stored {name}", case["out"], _independent(name, case), 1e-9, 1e-12)


def test_the_stored_file_is_what_the_reference_computes_now():
    """cs231n/stored_values.npz is current: `python -m autograder.release.stored_values` rewrites it."""
    from autograder.release.stored_values import compute

    fresh = compute()
    with np.load(STORED_FILE) as data:
        assert sorted(data.files) == sorted(fresh), "run python -m autograder.release.stored_values"
        for key, value in fresh.items():
            assert np.array_equal(data[key], value), f"{key} changed: run python -m autograder.release.stored_values"
