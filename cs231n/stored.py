"""Inputs and expected outputs for the visible checks, stored when the assignment was released.

The expected outputs were computed from the instructor's solution on these fixed inputs and
saved in stored_values.npz next to this file: a check compares your output with numbers, never
with code you could call instead of writing your own.

    case = stored_case("conv_forward/stride2_pad1")   # {'x': ..., 'w': ..., 'out': ...}
"""
from pathlib import Path

import numpy as np

FILE = Path(__file__).resolve().parent / "stored_values.npz"


def stored_names():
    """The names of the stored cases, e.g. 'conv_forward/stride2_pad1'."""
    with np.load(FILE) as data:
        return sorted({key.rsplit("/", 1)[0] for key in data.files})


def stored_case(name):
    """{input or output name: array} of one stored case; KeyError listing the names if unknown.

    Scalars (stride, pad, ...) come back as Python ints; parameters of a model as 'param.W1'.
    """
    prefix = name + "/"
    with np.load(FILE) as data:
        case = {key[len(prefix):]: data[key] for key in data.files if key.startswith(prefix)}
    if not case:
        raise KeyError(f"no stored case {name!r}; the stored cases are {stored_names()}")
    return {k: (v.item() if v.ndim == 0 and v.dtype.kind in "iu" else v) for k, v in case.items()}


def stored_params(case):
    """The 'param.*' entries of a stored case as a params dict {'W1': ..., ...}."""
    return {k[len("param."):]: v for k, v in case.items() if k.startswith("param.")}
