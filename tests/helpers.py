"""Assertions shared by the tests: gradients against numerical gradients, with messages that
name the function, the shape and the relative error, as the notebooks' checks do."""
import numpy as np

from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error


def assert_close(name, actual, expected, tol=1e-7, atol=1e-9):
    """Pass when the relative error is below tol, or every difference is below atol (tiny
    gradients are all rounding noise, where a relative error means nothing)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape}, expected {expected.shape}"
    err = rel_error(actual, expected)
    diff = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    assert err < tol or diff < atol, (
        f"{name}: relative error {err:.2e} (max abs difference {diff:.2e}) for shape "
        f"{actual.shape}; expected below {tol:.0e}")


def check_backward(name, forward, inputs, analytic, dout, tol=1e-7, atol=1e-9):
    """Compare analytic gradients with numerical ones.

    forward: callable(*inputs) -> output array; inputs: list of float64 arrays;
    analytic: list of gradients (None to skip one); dout: upstream gradient of the output.
    """
    for i, (x, grad) in enumerate(zip(inputs, analytic)):
        if grad is None:
            continue
        args = list(inputs)

        def f(z, i=i, args=args):
            args[i] = z
            return forward(*args)

        numerical = eval_numerical_gradient_array(f, x, dout)
        assert_close(f"{name} d(input {i})", grad, numerical, tol, atol)


def check_scalar_grad(name, loss_fn, params, grads, tol=1e-6, atol=1e-8):
    """Compare grads[k] with the numerical gradient of the scalar loss_fn() in params[k]."""
    for k, p in params.items():
        numerical = eval_numerical_gradient(lambda _: loss_fn(), p)
        assert_close(f"{name} d{k}", grads[k], numerical, tol, atol)
