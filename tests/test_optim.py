"""Update rules against their formulas, written here independently, over several steps.

Where a rule has a closed form in the whole gradient history (a weighted sum of past gradients)
the reference uses it, so it is not the same loop as the code under test; Adadelta has none and
is replayed one scalar at a time in plain Python floats.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cs231n import optim
from cs231n.gradient_check import rel_error

STEPS = 5
STUDENT_RULES = ["sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam", "adadelta"]
ALL_RULES = ["sgd"] + STUDENT_RULES
DEFAULTS = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "nesterov": {"learning_rate": 1e-2, "momentum": 0.9},
    "adagrad": {"learning_rate": 1e-2, "epsilon": 1e-8},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    "adadelta": {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-6},
}
STATE = {
    "sgd": [], "sgd_momentum": ["velocity"], "nesterov": ["velocity"], "adagrad": ["cache"],
    "rmsprop": ["cache"], "adam": ["m", "v", "t"], "adadelta": ["accum_grad", "accum_update"],
}


def marked(names):
    """pytest params carrying the task mark of each student rule (sgd is the given example)."""
    return [pytest.param(name, marks=getattr(pytest.mark, name)) if name in STUDENT_RULES
            else name for name in names]


def run(rule, w, grads, config=None):
    """Apply `rule` once per gradient, carrying config; return every w (w_0 .. w_T) and config."""
    ws = [w]
    for dw in grads:
        w, config = rule(w, dw, config)
        ws.append(w)
    return ws, config


@pytest.fixture
def history(rng):
    """w_0 (4, 5) and STEPS gradients that change from step to step, float64."""
    w0 = rng.standard_normal((4, 5))
    grads = [rng.standard_normal((4, 5)) * (1 + k) for k in range(STEPS)]
    return w0, grads


def decayed_sum(grads, decay, t, power=1):
    """sum_{i=1..t} decay**(t-i) * g_i**power: the unrolled form of a leaky accumulator."""
    return sum(decay ** (t - i) * grads[i - 1] ** power for i in range(1, t + 1))


def check_steps(name, ws, expected):
    for t in range(1, STEPS + 1):
        err = rel_error(ws[t], expected[t])
        assert err < 1e-9, f"{name}: w after step {t} is off, relative error {err:.1e}"


def test_sgd_formula(history):
    w0, grads = history
    ws, config = run(optim.sgd, w0, grads, {"learning_rate": 0.1})
    check_steps("sgd", ws, [w0 - 0.1 * sum(grads[:t]) for t in range(STEPS + 1)])


@pytest.mark.parametrize("name, lookahead", [
    pytest.param("sgd_momentum", 0, marks=pytest.mark.sgd_momentum),
    pytest.param("nesterov", 1, marks=pytest.mark.nesterov)])
def test_momentum_formulas(name, lookahead, history):
    w0, grads = history
    lr, mu = 0.05, 0.8
    ws, config = run(getattr(optim, name), w0, grads, {"learning_rate": lr, "momentum": mu})
    # v_t = -lr * sum_i mu^(t-i) g_i; momentum: w_t = w_0 + v_1 + ... + v_t; for Nesterov the
    # steps telescope to the same plus the look-ahead mu * v_t.
    v = [np.zeros_like(w0)] + [-lr * decayed_sum(grads, mu, t) for t in range(1, STEPS + 1)]
    expected = [w0 + sum(v[1:t + 1]) + lookahead * mu * v[t] for t in range(STEPS + 1)]
    check_steps(name, ws, expected)
    assert rel_error(config["velocity"], v[STEPS]) < 1e-9


@pytest.mark.nesterov
def test_nesterov_tracks_the_lookahead_point_of_classic_nag(rng):
    """On a quadratic, the reformulated weights equal classic NAG's x + momentum * v each step."""
    A = rng.standard_normal((6, 6))
    A = A @ A.T / 6 + np.eye(6)
    b = rng.standard_normal(6)
    grad = lambda x: A @ x - b  # noqa: E731  gradient of x.A.x / 2 - b.x
    lr, mu = 0.1, 0.9
    x, v = rng.standard_normal(6), np.zeros(6)
    w, config = x.copy(), {"learning_rate": lr, "momentum": mu}
    for t in range(1, 11):
        v = mu * v - lr * grad(x + mu * v)  # classic NAG: gradient at the look-ahead point
        x = x + v
        w, config = optim.nesterov(w, grad(w), config)
        err = rel_error(w, x + mu * v)
        assert err < 1e-9, f"nesterov: step {t} is not the look-ahead of NAG, rel error {err:.1e}"


@pytest.mark.adagrad
def test_adagrad_formula(history):
    w0, grads = history
    lr, eps = 0.1, 1e-3
    ws, config = run(optim.adagrad, w0, grads, {"learning_rate": lr, "epsilon": eps})
    expected = [w0]
    for t in range(1, STEPS + 1):
        cache = sum(g ** 2 for g in grads[:t])
        expected.append(expected[-1] - lr * grads[t - 1] / (np.sqrt(cache) + eps))
    check_steps("adagrad", ws, expected)
    assert rel_error(config["cache"], sum(g ** 2 for g in grads)) < 1e-12


@pytest.mark.rmsprop
def test_rmsprop_formula(history):
    w0, grads = history
    lr, rate, eps = 0.01, 0.9, 1e-4
    config = {"learning_rate": lr, "decay_rate": rate, "epsilon": eps}
    ws, config = run(optim.rmsprop, w0, grads, config)
    expected = [w0]
    for t in range(1, STEPS + 1):
        cache = (1 - rate) * decayed_sum(grads, rate, t, power=2)
        expected.append(expected[-1] - lr * grads[t - 1] / (np.sqrt(cache) + eps))
    check_steps("rmsprop", ws, expected)
    assert rel_error(config["cache"], cache) < 1e-12


@pytest.mark.adam
def test_adam_formula(history):
    w0, grads = history
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-4
    config = {"learning_rate": lr, "beta1": b1, "beta2": b2, "epsilon": eps}
    ws, config = run(optim.adam, w0, grads, config)
    expected = [w0]
    for t in range(1, STEPS + 1):
        # bias-corrected moments: weighted averages whose weights sum to one
        m_hat = (1 - b1) * decayed_sum(grads, b1, t) / (1 - b1 ** t)
        v_hat = (1 - b2) * decayed_sum(grads, b2, t, power=2) / (1 - b2 ** t)
        expected.append(expected[-1] - lr * m_hat / (np.sqrt(v_hat) + eps))
    check_steps("adam", ws, expected)
    assert config["t"] == STEPS
    assert rel_error(config["m"], (1 - b1) * decayed_sum(grads, b1, STEPS)) < 1e-12
    assert rel_error(config["v"], (1 - b2) * decayed_sum(grads, b2, STEPS, power=2)) < 1e-12


@pytest.mark.adam
def test_adam_first_step_is_learning_rate_sized(rng):
    """Bias correction makes the first step lr * sign(dw), whatever the gradient's scale."""
    w = rng.standard_normal(50)
    dw = rng.standard_normal(50) * 1e3
    next_w, _ = optim.adam(w, dw, {"learning_rate": 0.01})
    assert rel_error(next_w - w, -0.01 * np.sign(dw)) < 1e-6


@pytest.mark.adadelta
def test_adadelta_formula(history):
    w0, grads = history
    lr, rho, eps = 0.5, 0.9, 1e-4
    config = {"learning_rate": lr, "rho": rho, "epsilon": eps}
    ws, config = run(optim.adadelta, w0, grads, config)
    expected = np.empty((STEPS + 1,) + w0.shape)
    expected[0] = w0
    for ix in np.ndindex(w0.shape):  # one weight at a time, in Python floats
        w, eg2, edx2 = float(w0[ix]), 0.0, 0.0
        for t in range(1, STEPS + 1):
            g = float(grads[t - 1][ix])
            eg2 = rho * eg2 + (1 - rho) * g * g
            step = math.sqrt(edx2 + eps) / math.sqrt(eg2 + eps) * g
            edx2 = rho * edx2 + (1 - rho) * step * step
            w -= lr * step
            expected[t][ix] = w
        assert config["accum_grad"][ix] == pytest.approx(eg2, rel=1e-12)
        assert config["accum_update"][ix] == pytest.approx(edx2, rel=1e-12)
    check_steps("adadelta", ws, expected)


@pytest.mark.parametrize("name", marked(ALL_RULES))
def test_defaults_and_state_are_set_in_config(name, rng):
    w = rng.standard_normal((3, 2))
    _, config = getattr(optim, name)(w, rng.standard_normal((3, 2)))
    for key, value in DEFAULTS[name].items():
        assert config[key] == value, f"{name}: default {key} should be {value}, got {config[key]}"
    for key in STATE[name]:
        assert key in config, f"{name}: the state {key!r} must be kept in config"


@pytest.mark.parametrize("name", marked(ALL_RULES))
def test_config_none_and_empty_dict_agree(name, rng):
    w, dw = rng.standard_normal(7), rng.standard_normal(7)
    rule = getattr(optim, name)
    a, _ = rule(w, dw)
    b, config = rule(w, dw, {})
    c, _ = rule(w, dw, dict(DEFAULTS[name]))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", marked(ALL_RULES))
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_shape_and_dtype_kept_inputs_untouched(name, shape, dtype, seed):
    gen = np.random.default_rng(seed)
    w = gen.standard_normal(shape).astype(dtype)
    dw = gen.standard_normal(shape).astype(dtype)
    w_copy, dw_copy = w.copy(), dw.copy()
    rule, config = getattr(optim, name), None
    for _ in range(3):
        next_w, config = rule(w, dw, config)
        assert next_w.shape == w.shape and next_w.dtype == w.dtype, \
            f"{name}: got {next_w.shape} {next_w.dtype} for w {w.shape} {w.dtype}"
        assert np.all(np.isfinite(next_w))
    np.testing.assert_array_equal(w, w_copy, err_msg=f"{name} must not change w in place")
    np.testing.assert_array_equal(dw, dw_copy, err_msg=f"{name} must not change dw")


@pytest.mark.parametrize("name", marked(ALL_RULES))
def test_float32_stays_float32_with_float64_hyperparameters(name, rng):
    w = rng.standard_normal(5).astype(np.float32)
    dw = rng.standard_normal(5).astype(np.float32)
    config = {"learning_rate": np.float64(DEFAULTS[name]["learning_rate"])}
    for _ in range(3):
        w, config = getattr(optim, name)(w, dw, config)
    assert w.dtype == np.float32


@pytest.mark.parametrize("name", marked(["sgd_momentum", "nesterov"]))
def test_zero_momentum_is_sgd(name, history):
    w0, grads = history
    expected, _ = run(optim.sgd, w0, grads, {"learning_rate": 0.03})
    got, _ = run(getattr(optim, name), w0, grads, {"learning_rate": 0.03, "momentum": 0.0})
    check_steps(name, got, expected)


@pytest.mark.parametrize("name", marked(ALL_RULES))
def test_rules_descend_a_quadratic(name, rng):
    """A few hundred steps on |w - target|^2 / 2 with default settings bring w closer."""
    target = rng.standard_normal(10)
    w, config = np.zeros(10), None
    start = np.linalg.norm(w - target)
    for _ in range(300):
        w, config = getattr(optim, name)(w, w - target, config)
    assert np.linalg.norm(w - target) < 0.9 * start, f"{name} did not descend"


def test_registry_and_lookup():
    assert list(optim.UPDATE_RULES) == ALL_RULES
    for name in ALL_RULES:
        assert optim.get_update_rule(name) is getattr(optim, name)
    with pytest.raises(ValueError) as err:
        optim.get_update_rule("adamw")
    assert "'adamw'" in str(err.value)
    for name in ALL_RULES:
        assert name in str(err.value), "the error should list the valid names"


def test_bad_inputs_say_what_is_wrong(rng):
    w = rng.standard_normal((2, 3))
    with pytest.raises(ValueError, match=r"dw must have w's shape \(2, 3\)"):
        optim.sgd(w, rng.standard_normal((3, 2)))
    with pytest.raises(TypeError, match="float ndarray"):
        optim.sgd(np.ones(3, dtype=int), np.ones(3))
    with pytest.raises(TypeError, match="float ndarray"):
        optim.sgd([1.0, 2.0], np.ones(2))
    with pytest.raises(TypeError, match="config must be a dict"):
        optim.sgd(w, w, config=0.1)
    with pytest.raises(ValueError, match="learning_rate.*> 0"):
        optim.sgd(w, w, {"learning_rate": -1.0})
    with pytest.raises(ValueError, match=r"momentum.*\[0, 1\)"):
        optim.sgd_momentum(w, w, {"momentum": 1.5})
    with pytest.raises(ValueError, match="finite number"):
        optim.adam(w, w, {"beta1": float("nan")})


@pytest.mark.sgd_momentum
def test_one_config_shared_by_two_parameters_is_caught(rng):
    config = {}
    optim.sgd_momentum(rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), config)
    with pytest.raises(ValueError, match="its own config"):
        optim.sgd_momentum(rng.standard_normal(4), rng.standard_normal(4), config)
