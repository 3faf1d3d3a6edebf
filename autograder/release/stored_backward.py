"""Stored cases for the backward tasks: fixed inputs and upstream gradient, and what the
reference's forward and backward gave for them (autograder.release.stored_values writes them with its
other cases). A student's backward task is checked against these numbers, so it passes whenever
it is right, whatever their forward pass does (tests/helpers.py, check_stored_backward).

Each case is named `backward/<task>` and holds the inputs, `dout`, the forward's `out` and the
gradients under their own names (`dx`, `dw`, `db`, `dgamma`, ...).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

Stored = dict[str, Any]  # a case: its inputs and outputs by name (arrays, and a few numbers)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _affine() -> Stored:
    from cs231n.layers import affine_backward, affine_forward

    r = _rng(221)
    x, w, b = r.standard_normal((3, 2, 4)), r.standard_normal((8, 5)), r.standard_normal(5)
    out, cache = affine_forward(x, w, b)
    dout = r.standard_normal(out.shape)
    return {"x": x, "w": w, "b": b, "dout": dout, "out": out, **dict(zip(("dx", "dw", "db"), affine_backward(dout, cache)))}


def _relu() -> Stored:
    from cs231n.layers import relu_backward, relu_forward

    r = _rng(222)
    x = r.standard_normal((4, 5))
    x[np.abs(x) < 0.05] = 0.5
    out, cache = relu_forward(x)
    dout = r.standard_normal(x.shape)
    return {"x": x, "dout": dout, "out": out, "dx": relu_backward(dout, cache)}


def _dropout() -> Stored:
    from cs231n.layers import dropout_backward

    r = _rng(223)
    p = 0.6
    mask = (r.random((5, 6)) < p) / p
    dout = r.standard_normal(mask.shape)
    return {"p": p, "mask": mask, "dout": dout, "dx": dropout_backward(dout, ({"mode": "train", "p": p}, mask))}


def _conv() -> Stored:
    from cs231n.layers import conv_backward_naive, conv_forward_naive

    r = _rng(224)
    x, w, b = r.standard_normal((2, 2, 5, 4)), r.standard_normal((3, 2, 3, 2)), r.standard_normal(3)
    out, cache = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    dout = r.standard_normal(out.shape)
    grads = conv_backward_naive(dout, cache)
    return {"x": x, "w": w, "b": b, "stride": 2, "pad": 1, "dout": dout, "out": out,
            **dict(zip(("dx", "dw", "db"), grads))}


def _pool() -> Stored:
    from cs231n.layers import max_pool_backward_naive, max_pool_forward_naive

    r = _rng(225)
    x = r.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) / 100.0  # distinct: no ties
    pool = {"pool_height": 3, "pool_width": 2, "stride": 2}
    out, cache = max_pool_forward_naive(x, pool)
    dout = r.standard_normal(out.shape)
    return {"x": x, **pool, "dout": dout, "out": out, "dx": max_pool_backward_naive(dout, cache)}


def _norm(forward: Callable[..., Any], backward: Callable[..., Any], shape: tuple[int, ...], seed: int,
          *extra: Any) -> Stored:
    r = _rng(seed)
    C = shape[1]
    x, gamma, beta = 2 * r.standard_normal(shape) + 1, 1 + 0.3 * r.standard_normal(C), r.standard_normal(C)
    out, cache = forward(x, gamma, beta, *extra)
    dout = r.standard_normal(out.shape)
    return {"x": x, "gamma": gamma, "beta": beta, "dout": dout, "out": out,
            **dict(zip(("dx", "dgamma", "dbeta"), backward(dout, cache)))}


def _batchnorm() -> Stored:
    from cs231n.layers import batchnorm_backward, batchnorm_forward

    return _norm(batchnorm_forward, batchnorm_backward, (6, 4), 226, {"mode": "train"})


def _layernorm() -> Stored:
    from cs231n.layers import layernorm_backward, layernorm_forward

    return _norm(layernorm_forward, layernorm_backward, (4, 6), 227, {})


def _spatial_batchnorm() -> Stored:
    from cs231n.layers import spatial_batchnorm_backward, spatial_batchnorm_forward

    return _norm(spatial_batchnorm_forward, spatial_batchnorm_backward, (2, 3, 3, 2), 228, {"mode": "train"})


def _groupnorm() -> Stored:
    from cs231n.layers import spatial_groupnorm_backward, spatial_groupnorm_forward

    return {"G": 2, **_norm(spatial_groupnorm_forward, spatial_groupnorm_backward, (2, 4, 2, 3), 229, 2, {})}


BACKWARD_CASES: dict[str, Callable[[], Stored]] = {f"backward/{task}": make for task, make in [
    ("affine_backward", _affine), ("relu_backward", _relu), ("dropout_backward", _dropout),
    ("conv_backward_naive", _conv), ("max_pool_backward_naive", _pool), ("batchnorm_backward", _batchnorm),
    ("layernorm_backward", _layernorm), ("spatial_batchnorm_backward", _spatial_batchnorm),
    ("spatial_groupnorm_backward", _groupnorm)]}
