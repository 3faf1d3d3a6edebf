"""Numerical gradients by centred differences, and the relative error used to compare them.

Every check in the notebooks and tests compares an analytic gradient with one of these.
Use float64 inputs: in float32 the rounding error of f(x + h) - f(x - h) swamps the difference.
"""
import numpy as np


def rel_error(x, y, eps=1e-8):
    """Largest elementwise relative error |x - y| / max(eps, |x| + |y|), a float.

    Inputs: x, y: arrays (or scalars) of the same shape. Around 1e-7 or less means "equal" for
    float64 gradients; 1e-2 or more is a bug.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error: shapes differ, {x.shape} vs {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(eps, np.abs(x) + np.abs(y))))


def _check_float64(x, who):
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{who}: x must be a float64 ndarray (got {got}); "
                        "use x.astype(np.float64) so the centred difference is accurate")


def _centred_difference(f, x, ix, h):
    """(f(x + h e_ix) - f(x - h e_ix)) / 2h, leaving x exactly as it was."""
    old = x[ix]
    x[ix] = old + h
    fxph = float(f(x))
    x[ix] = old - h
    fxmh = float(f(x))
    x[ix] = old
    return (fxph - fxmh) / (2 * h)


def eval_numerical_gradient(f, x, verbose=False, h=1e-5):
    """Numerical gradient of a scalar function f at x.

    Inputs:
    - f: callable taking x (the same array, perturbed in place) and returning a float.
    - x: float64 array of any shape; restored exactly on return.
    - h: step of the centred difference.
    Returns: grad, float64 array shaped like x.
    """
    _check_float64(x, "eval_numerical_gradient")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        grad[ix] = _centred_difference(f, x, ix, h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numerical gradient of sum(f(x) * df): the backward pass of an array function.

    Inputs:
    - f: callable taking x and returning an array shaped like df.
    - x: float64 array of any shape; restored exactly on return.
    - df: upstream gradient, shaped like f(x).
    Returns: dx, float64 array shaped like x.
    """
    _check_float64(x, "eval_numerical_gradient_array")
    df = np.asarray(df, dtype=np.float64)
    return eval_numerical_gradient(lambda z: np.sum(np.asarray(f(z)) * df), x, h=h)


def eval_numerical_gradient_blobs(f, inputs, output, h=1e-5):
    """Numerical gradients of sum(f(*inputs) * output.diffs) for several input blobs.

    Inputs: f: callable on the arrays in `inputs`; inputs: list of float64 arrays;
    output: object with `.diffs`, the upstream gradient of f's output.
    Returns: list of float64 arrays shaped like `inputs`.
    """
    return [eval_numerical_gradient_array(lambda _: f(*inputs), x, output.diffs, h=h)
            for x in inputs]


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, seed=None):
    """Compare an analytic gradient with centred differences at `num_checks` random entries.

    Inputs: f: scalar function of x; x: float64 array; analytic_grad: array shaped like x.
    Returns: list of (index, numerical, analytic, relative error); also prints one line each.
    """
    _check_float64(x, "grad_check_sparse")
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(num_checks):
        ix = tuple(int(rng.integers(n)) for n in x.shape)
        numerical = _centred_difference(f, x, ix, h)
        analytic = float(analytic_grad[ix])
        err = abs(numerical - analytic) / max(1e-12, abs(numerical) + abs(analytic))
        print(f"numerical: {numerical:+.6e} analytic: {analytic:+.6e}, relative error: {err:.2e}")
        rows.append((ix, numerical, analytic, err))
    return rows
