"""The checks students run in the notebooks: each prints the relative error beside the
magnitude to expect, and on failure raises AssertionError with a hint about the usual mistake.

    check_close("affine_forward out", out, expected, tol=1e-9, hint="did you reshape x?")
    check_gradient("affine_backward dw", lambda w: affine_forward(x, w, b)[0], w, dw, dout)

Relative error is max |a - b| / max(1e-8, |a| + |b|): about 1e-7 or less means equal in float64,
1e-2 or more means a bug.

A failed check shows its message and hint, not the frames of this module (IPython calls
CheckFailed._render_traceback_; pytest honours `__tracebackhide__`).

The checks return None on purpose: nbgrader reads a number left as a test cell's last value as
that cell's (partial) score, so a check that returned its error would score 0.
"""
import os
import traceback

import numpy as np

from .gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error


class CheckFailed(AssertionError):
    """A notebook check did not pass; the message says by how much and what to look at."""

    def _render_traceback_(self):
        """What IPython shows: the notebook's own frames and the message, not this module's."""
        frames = [f for f in traceback.extract_tb(self.__traceback__)
                  if f.filename != __file__ and f"{os.sep}IPython{os.sep}" not in f.filename]
        return [line.rstrip("\n") for line in traceback.format_list(frames)] + [f"{type(self).__name__}: {self}"]


def _fail(name, detail, hint):
    __tracebackhide__ = True
    message = f"{name}: {detail}"
    if hint:
        message += f"\n  Hint: {hint}"
    raise CheckFailed(message)


def check_shape(name, actual, shape, hint=None):
    """Raise CheckFailed unless `actual` is an ndarray of the given shape."""
    __tracebackhide__ = True
    got = getattr(actual, "shape", None)
    if actual is None:
        _fail(name, "got None: the function did not compute this value yet", hint)
    if got != tuple(shape):
        _fail(name, f"shape {got}, expected {tuple(shape)}", hint)


def check_close(name, actual, expected, tol=1e-7, hint=None):
    """Compare two arrays (or floats) by relative error; print it, raise CheckFailed if >= tol.

    Returns: None (see the module docstring); the error is printed.
    """
    __tracebackhide__ = True
    if actual is None:
        _fail(name, "got None: the function did not compute this value yet", hint)
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        _fail(name, f"shape {actual.shape}, expected {expected.shape}", hint)
    if not np.all(np.isfinite(actual)):
        _fail(name, "contains nan or inf", hint)
    err = rel_error(actual, expected)
    verdict = "ok" if err < tol else "FAILED"
    print(f"{name}: relative error {err:.1e} (expect < {tol:.0e}) {verdict}")
    if err >= tol:
        _fail(name, f"relative error {err:.1e}, expected below {tol:.0e}", hint)


def check_gradient(name, f, x, analytic, dout=None, tol=1e-7, hint=None):
    """Compare an analytic gradient with a numerical one.

    Inputs:
    - f: function of x; returns a scalar (dout None) or an array shaped like dout.
    - x: float64 array, the point; restored on return.
    - analytic: the gradient to check, shaped like x.
    - dout: upstream gradient for an array function, or None for a scalar function.
    Returns: None; the relative error is printed.
    """
    __tracebackhide__ = True
    if analytic is None:
        _fail(name, "got None: the backward pass did not compute this gradient yet", hint)
    if dout is None:
        numerical = eval_numerical_gradient(f, x)
    else:
        numerical = eval_numerical_gradient_array(f, x, dout)
    check_close(name, analytic, numerical, tol, hint)


def check_value(name, actual, expected, tol, hint=None):
    """Compare a scalar with an expected value within an absolute tolerance; print both."""
    __tracebackhide__ = True
    if actual is None:
        _fail(name, "got None: the function did not compute this value yet", hint)
    diff = abs(float(actual) - float(expected))
    verdict = "ok" if diff <= tol else "FAILED"
    print(f"{name}: {float(actual):.6g} (expect {float(expected):.6g} +- {tol:g}) {verdict}")
    if diff > tol:
        _fail(name, f"{float(actual):.6g} is {diff:.3g} away from {float(expected):.6g}", hint)
