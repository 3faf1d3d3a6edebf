"""Assertions shared by the tests: gradients against numerical gradients, and backward tasks
against the values stored from the reference (cs231n.stored), with messages that name the
function, the quantity (`db`), the shape and the relative error, as the notebooks' checks do."""
import numpy as np

from cs231n import layers as L
from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from cs231n.stored import stored_case

# backward task: (its gradients' names, its forward task, forward(case) -> (out, cache), and the
# cache built from the case where given code fixes it (None: only the student's forward makes it))
BACKWARD = {
    "affine_backward": (("dx", "dw", "db"), "affine_forward",
                        lambda c: L.affine_forward(c["x"], c["w"], c["b"]), lambda c: (c["x"], c["w"], c["b"])),
    "relu_backward": (("dx",), "relu_forward", lambda c: L.relu_forward(c["x"]), lambda c: c["x"]),
    "dropout_backward": (("dx",), "dropout_forward", None, lambda c: ({"mode": "train", "p": c["p"]}, c["mask"])),
    "conv_backward_naive": (("dx", "dw", "db"), "conv_forward_naive",
                            lambda c: L.conv_forward_naive(c["x"], c["w"], c["b"], {"stride": c["stride"], "pad": c["pad"]}),
                            lambda c: (c["x"], c["w"], c["b"], {"stride": c["stride"], "pad": c["pad"]})),
    "max_pool_backward_naive": (("dx",), "max_pool_forward_naive",
                                lambda c: L.max_pool_forward_naive(c["x"], _pool_param(c)),
                                lambda c: (c["x"], _pool_param(c))),
    "batchnorm_backward": (("dx", "dgamma", "dbeta"), "batchnorm_forward",
                           lambda c: L.batchnorm_forward(c["x"], c["gamma"], c["beta"], {"mode": "train"}), None),
    "layernorm_backward": (("dx", "dgamma", "dbeta"), "layernorm_forward",
                           lambda c: L.layernorm_forward(c["x"], c["gamma"], c["beta"], {}), None),
    "spatial_batchnorm_backward": (("dx", "dgamma", "dbeta"), "spatial_batchnorm_forward",
                                   lambda c: L.spatial_batchnorm_forward(c["x"], c["gamma"], c["beta"], {"mode": "train"}),
                                   None),
    "spatial_groupnorm_backward": (("dx", "dgamma", "dbeta"), "spatial_groupnorm_forward",
                                   lambda c: L.spatial_groupnorm_forward(c["x"], c["gamma"], c["beta"], c["G"], {}), None),
}
BACKWARD["batchnorm_backward_alt"] = BACKWARD["batchnorm_backward"]


def _pool_param(case):
    return {k: case[k] for k in ("pool_height", "pool_width", "stride")}


def _stored(task):
    return stored_case("backward/" + ("batchnorm_backward" if task == "batchnorm_backward_alt" else task))


def forward_problem(backward_task):
    """Why the forward task that `backward_task`'s numerical checks differentiate is not right
    on its stored case (a str), or None when it is."""
    _, forward_task, forward, _ = BACKWARD[backward_task]
    case = _stored(backward_task)
    try:
        if forward is None:  # dropout: no stored output (the mask is the student's draw)
            x = 1.0 + np.arange(42.0).reshape(6, 7)
            out, (_, mask) = L.dropout_forward(x, {"mode": "train", "p": case["p"], "seed": 5})
            expected = x * mask
        else:
            out, expected = forward(case)[0], case["out"]
    except Exception as error:  # a stub, or any bug: the forward task's own checks say which
        return f"raises {type(error).__name__}"
    if np.shape(out) != np.shape(expected) or not rel_error(out, expected) < 1e-6:
        return "does not give the stored output yet" if forward else "does not give out = x * mask yet"
    return None


def check_stored_backward(task, tol=1e-7, atol=1e-10):
    """The student's backward `task` on its stored case against the reference's gradients, each
    named (`db`); the forward pass is run only where it alone makes the cache (normalisations)."""
    __tracebackhide__ = True
    names, _, forward, build_cache = BACKWARD[task]
    case = _stored(task)
    # a stubbed forward's NotImplementedError says to write it first (tests/conftest.py)
    cache = build_cache(case) if build_cache is not None else forward(case)[1]
    grads = getattr(L, task)(case["dout"], cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert len(grads) == len(names), f"{task} returned {len(grads)} values, expected {len(names)}: {', '.join(names)}"
    for name, grad in zip(names, grads):
        assert grad is not None, f"{task} returned None for {name}: compute it"
        assert_close(f"{task} {name}", grad, case[name], tol, atol)


def grad_names(name, count):
    """The names of a check's gradients, from the task its name starts with: ('dx', 'dw', 'db')."""
    known = BACKWARD.get(name.split()[0], ((),))[0]
    if len(known) == count:
        return known
    return ("dx",) if count == 1 else tuple(f"d(input {i})" for i in range(count))


def assert_close(name, actual, expected, tol=1e-7, atol=1e-9):
    """Pass when the relative error is below tol, or every difference is below atol (tiny
    gradients are all rounding noise, where a relative error means nothing)."""
    __tracebackhide__ = True
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
    __tracebackhide__ = True
    names = grad_names(name, len(inputs))
    for i, (x, grad) in enumerate(zip(inputs, analytic)):
        if grad is None:
            continue
        args = list(inputs)

        def f(z, i=i, args=args):
            args[i] = z
            return forward(*args)

        numerical = eval_numerical_gradient_array(f, x, dout)
        assert_close(f"{name} {names[i]}", grad, numerical, tol, atol)


def check_scalar_grad(name, loss_fn, params, grads, tol=1e-6, atol=1e-8):
    """Compare grads[k] with the numerical gradient of the scalar loss_fn() in params[k]."""
    for k, p in params.items():
        numerical = eval_numerical_gradient(lambda _: loss_fn(), p)
        assert_close(f"{name} d{k}", grads[k], numerical, tol, atol)
