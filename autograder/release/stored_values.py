"""The values the students' visible checks compare with, computed from the reference at release
into cs231n/stored_values.npz (docs/release.md, "Visible checks compare with stored values").

    python -m autograder.release.stored_values      # rewrite cs231n/stored_values.npz
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np

from autograder.config import PACKAGE
from autograder.release.stored_backward import BACKWARD_CASES, Stored

FILE = PACKAGE / "stored_values.npz"


def _linspace(shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
    return np.linspace(low, high, num=int(np.prod(shape))).reshape(shape)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> Stored:
    from cs231n.layers import conv_forward_naive

    out, _ = conv_forward_naive(x, w, b, {"stride": stride, "pad": pad})
    return {"x": x, "w": w, "b": b, "stride": stride, "pad": pad, "out": out}


def _pool(x: np.ndarray, ph: int, pw: int, stride: int) -> Stored:
    from cs231n.layers import max_pool_forward_naive

    out, _ = max_pool_forward_naive(x, {"pool_height": ph, "pool_width": pw, "stride": stride})
    return {"x": x, "pool_height": ph, "pool_width": pw, "stride": stride, "out": out}


def _block(seed: int, N: int, C: int, F: int, H: int, stride: int) -> Stored:
    from cs231n.layer_utils import residual_block_forward

    rng = np.random.default_rng(seed)
    shapes = {"W1": (F, C, 3, 3), "b1": (F,), "gamma1": (F,), "beta1": (F,),
              "W2": (F, F, 3, 3), "b2": (F,), "gamma2": (F,), "beta2": (F,)}
    if stride != 1 or C != F:
        shapes.update({"Wp": (F, C, 1, 1), "bp": (F,), "gammap": (F,), "betap": (F,)})
    x = 2 * rng.standard_normal((N, C, H, H)) + 1
    params = {k: (1 + 0.3 * rng.standard_normal(s)) if k.startswith("gamma") else rng.standard_normal(s)
              for k, s in shapes.items()}
    out, _ = residual_block_forward(x, params, [{"mode": "train"} for _ in range(2 + ("Wp" in params))],
                                    stride)
    return {"x": x, "stride": stride, "out": out, **{f"param.{k}": v for k, v in params.items()}}


def _random(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


CASES: dict[str, Callable[[], Stored]] = {  # name: () -> {input or output name: array}; run with the reference package
    "conv_forward/stride2_pad1": lambda: _conv(_linspace((2, 3, 4, 4), -0.1, 0.5),
                                               _linspace((3, 3, 4, 4), -0.2, 0.3),
                                               _linspace((3,), -0.1, 0.2), 2, 1),
    "conv_forward/rectangular_stride3_pad2": lambda: _conv(_random(71, 2, 2, 9, 7), _random(72, 3, 2, 4, 2),
                                                           _random(73, 3), 3, 2),
    "max_pool_forward/2x2_stride2": lambda: _pool(_linspace((2, 3, 4, 4), -0.3, 0.4), 2, 2, 2),
    "max_pool_forward/3x2_stride1_negative": lambda: _pool(_random(74, 2, 2, 5, 4) - 3.0, 3, 2, 1),
    "residual_block_forward/identity": lambda: _block(152, 2, 3, 3, 6, 1),
    "residual_block_forward/projection_stride2": lambda: _block(153, 2, 2, 4, 7, 2),
}

CASES.update(BACKWARD_CASES)  # each backward task on its own: autograder/release/stored_backward.py


def compute() -> dict[str, np.ndarray]:
    """{name/key: array} of every case, from the cs231n package imported (the reference)."""
    values = {}
    for name, make in CASES.items():
        values.update({f"{name}/{k}": np.asarray(v) for k, v in make().items()})
    return values


def write(path: str | Path = FILE) -> Path:
    """Write the cases' values to `path` (an .npz); returns the path."""
    # numpy's stubs type **arrays as if a name could be the keyword allow_pickle (a bool); none is
    np.savez(path, **compute())  # type: ignore[arg-type]
    return Path(path)


if __name__ == "__main__":
    print(write(sys.argv[1] if len(sys.argv) > 1 else FILE))
