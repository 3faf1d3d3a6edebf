"""First-order update rules: sgd, momentum, Nesterov momentum, Adagrad, RMSProp, Adam, Adadelta.

Every rule has the same signature:

    next_w, config = rule(w, dw, config=None)

Inputs:
- w: float ndarray of any shape, the current weights (not modified).
- dw: float ndarray shaped like w, the gradient of the loss with respect to w.
- config: dict of hyperparameters ('learning_rate', 'momentum', 'decay_rate', 'beta1',
  'beta2', 'epsilon', 'rho') and of the rule's state ('velocity', 'cache', 'm', 'v', 't',
  'accum_grad', 'accum_update'); None means "all defaults". Missing hyperparameters are set to
  their defaults in config, and the state is kept in config, so pass the returned config back in
  on the next call. Use one config per parameter array: the state has w's shape.
Returns: next_w (ndarray shaped like w, with w's dtype) and config.

`get_update_rule(name)` returns a rule by name; the Solver uses it.
"""
import math
import numbers

import numpy as np

# Hyperparameters that must lie in [0, 1): they weigh an old average against a new value.
_DECAYS = ("momentum", "decay_rate", "beta1", "beta2", "rho")


def _setup(rule, w, dw, config, **defaults):
    """Validate w and dw, fill config with `defaults` where missing, check the values; return config."""
    for name, array in (("w", w), ("dw", dw)):
        if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
            got = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
            raise TypeError(f"{rule}: {name} must be a float ndarray, got {got}; "
                            f"use np.asarray({name}, dtype=np.float64)")
    if w.shape != dw.shape:
        raise ValueError(f"{rule}: dw must have w's shape {w.shape}, got {dw.shape}; "
                         "pass the gradient of this very parameter")
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"{rule}: config must be a dict or None, got {type(config).__name__}")
    for key, value in defaults.items():
        config.setdefault(key, value)
        value = config[key]
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{rule}: config['{key}'] must be a finite number, got {value!r}")
        if key in _DECAYS and not 0 <= value < 1:
            raise ValueError(f"{rule}: config['{key}'] must be in [0, 1), got {value}; "
                             f"the default is {defaults[key]}")
        if key in ("learning_rate", "epsilon") and value <= 0:
            raise ValueError(f"{rule}: config['{key}'] must be > 0, got {value}; "
                             f"the default is {defaults[key]}")
    return config


def _state(rule, config, key, w):
    """config[key], created as zeros shaped like w if missing; ValueError if its shape is not w's."""
    if key not in config:
        config[key] = np.zeros_like(w)
    state = config[key]
    if np.shape(state) != w.shape:
        raise ValueError(f"{rule}: config['{key}'] has shape {np.shape(state)} but w has shape "
                         f"{w.shape}; give each parameter its own config dict")
    return state


def _like(next_w, w):
    """next_w as an array with w's dtype (a float32 parameter stays float32)."""
    return np.asarray(next_w).astype(w.dtype, copy=False)


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: next_w = w - learning_rate * dw.

    Inputs: w, dw: float arrays of the same shape; config: dict or None, with
    'learning_rate' (float, default 1e-2).
    Returns: next_w (shaped like w, w's dtype), config.
    """
    config = _setup("sgd", w, dw, config, learning_rate=1e-2)
    # The worked example: every other rule follows this pattern.
    next_w = w - config["learning_rate"] * dw
    return _like(next_w, w), config


def sgd_momentum(w, dw, config=None):
    """Stochastic gradient descent with momentum.

    v = momentum * v - learning_rate * dw;  next_w = w + v

    Inputs: w, dw: float arrays of the same shape; config: dict or None, with
    'learning_rate' (float, default 1e-2), 'momentum' (float in [0, 1), default 0.9) and the
    state 'velocity' (array shaped like w, starts at zeros).
    Returns: next_w (shaped like w, w's dtype), config with the new 'velocity'.
    """
    config = _setup("sgd_momentum", w, dw, config, learning_rate=1e-2, momentum=0.9)
    v = _state("sgd_momentum", config, "velocity", w)
    # TODO: update the velocity v, store it in config['velocity'], and set next_w.
    ### BEGIN SOLUTION
    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v
    config["velocity"] = v
    ### END SOLUTION
    return _like(next_w, w), config


def nesterov(w, dw, config=None):
    """Nesterov accelerated gradient (NAG), in the form that tracks the looked-ahead weights.

    Plain NAG evaluates the gradient at the look-ahead point w + momentum * v. Renaming that
    point as the weights we keep, and dw as the gradient there, gives an update that needs only
    the usual dw:

        v_prev = v
        v = momentum * v - learning_rate * dw
        next_w = w - momentum * v_prev + (1 + momentum) * v

    Inputs: w, dw: float arrays of the same shape; config: dict or None, with
    'learning_rate' (float, default 1e-2), 'momentum' (float in [0, 1), default 0.9) and the
    state 'velocity' (array shaped like w, starts at zeros).
    Returns: next_w (shaped like w, w's dtype), config with the new 'velocity'.
    """
    config = _setup("nesterov", w, dw, config, learning_rate=1e-2, momentum=0.9)
    v = _state("nesterov", config, "velocity", w)
    # TODO: the Nesterov update above: new velocity into config['velocity'], then next_w.
    ### BEGIN SOLUTION
    mu = config["momentum"]
    v_prev = v
    v = mu * v_prev - config["learning_rate"] * dw
    next_w = w - mu * v_prev + (1 + mu) * v
    config["velocity"] = v
    ### END SOLUTION
    return _like(next_w, w), config


def adagrad(w, dw, config=None):
    """Adagrad: each weight's step shrinks with the sum of its squared gradients so far.

    cache = cache + dw**2;  next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    Inputs: w, dw: float arrays of the same shape; config: dict or None, with
    'learning_rate' (float, default 1e-2), 'epsilon' (float, default 1e-8) and the state
    'cache' (array shaped like w, starts at zeros).
    Returns: next_w (shaped like w, w's dtype), config with the new 'cache'.
    """
    config = _setup("adagrad", w, dw, config, learning_rate=1e-2, epsilon=1e-8)
    cache = _state("adagrad", config, "cache", w)
    # TODO: accumulate the squared gradient into config['cache'], then set next_w.
    ### BEGIN SOLUTION
    cache = cache + dw * dw
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    config["cache"] = cache
    ### END SOLUTION
    return _like(next_w, w), config


def rmsprop(w, dw, config=None):
    """RMSProp: like Adagrad, but with a leaky (moving) average of the squared gradients.

    cache = decay_rate * cache + (1 - decay_rate) * dw**2
    next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    Inputs: w, dw: float arrays of the same shape; config: dict or None, with
    'learning_rate' (float, default 1e-2), 'decay_rate' (float in [0, 1), default 0.99),
    'epsilon' (float, default 1e-8) and the state 'cache' (array shaped like w, starts at zeros).
    Returns: next_w (shaped like w, w's dtype), config with the new 'cache'.
    """
    config = _setup("rmsprop", w, dw, config, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8)
    cache = _state("rmsprop", config, "cache", w)
    # TODO: update the moving average config['cache'], then set next_w.
    ### BEGIN SOLUTION
    rate = config["decay_rate"]
    cache = rate * cache + (1 - rate) * dw * dw
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    config["cache"] = cache
    ### END SOLUTION
    return _like(next_w, w), config


def adam(w, dw, config=None):
    """Adam: momentum on the gradient plus RMSProp scaling, both bias-corrected.

    t = t + 1
    m = beta1 * m + (1 - beta1) * dw          (first moment)
    v = beta2 * v + (1 - beta2) * dw**2       (second moment)
    m_hat = m / (1 - beta1**t);  v_hat = v / (1 - beta2**t)
    next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    Inputs: w, dw: float arrays of the same shape; config: dict or None, with
    'learning_rate' (float, default 1e-3), 'beta1' (default 0.9), 'beta2' (default 0.999),
    'epsilon' (default 1e-8) and the state 'm', 'v' (arrays shaped like w, start at zeros) and
    't' (int, the number of updates made so far, starts at 0).
    Returns: next_w (shaped like w, w's dtype), config with the new 'm', 'v' and 't'.
    """
    config = _setup("adam", w, dw, config, learning_rate=1e-3, beta1=0.9, beta2=0.999,
                    epsilon=1e-8)
    m = _state("adam", config, "m", w)
    v = _state("adam", config, "v", w)
    config.setdefault("t", 0)
    # TODO: increment config['t'], update config['m'] and config['v'], then set next_w using
    # the bias-corrected moments (the correction matters most in the first few steps).
    ### BEGIN SOLUTION
    t = config["t"] + 1
    beta1, beta2 = config["beta1"], config["beta2"]
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw * dw
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    config["t"], config["m"], config["v"] = t, m, v
    ### END SOLUTION
    return _like(next_w, w), config


def adadelta(w, dw, config=None):
    """Adadelta (Zeiler, 2012): RMSProp whose step size comes from the past steps themselves.

    accum_grad = rho * accum_grad + (1 - rho) * dw**2
    step = sqrt(accum_update + epsilon) / sqrt(accum_grad + epsilon) * dw
    accum_update = rho * accum_update + (1 - rho) * step**2
    next_w = w - learning_rate * step

    The paper has no learning rate; 'learning_rate' here is a plain multiplier (default 1.0, the
    paper's rule) that lets the Solver's lr_decay act. The unscaled step goes into accum_update.

    Inputs: w, dw: float arrays of the same shape; config: dict or None, with 'rho' (float in
    [0, 1), default 0.95), 'epsilon' (default 1e-6), 'learning_rate' (default 1.0) and the
    state 'accum_grad', 'accum_update' (arrays shaped like w, start at zeros).
    Returns: next_w (shaped like w, w's dtype), config with the new 'accum_grad', 'accum_update'.
    """
    config = _setup("adadelta", w, dw, config, learning_rate=1.0, rho=0.95, epsilon=1e-6)
    accum_grad = _state("adadelta", config, "accum_grad", w)
    accum_update = _state("adadelta", config, "accum_update", w)
    # TODO: update config['accum_grad'], compute the step, update config['accum_update'] with
    # the step, then set next_w.
    ### BEGIN SOLUTION
    rho, eps = config["rho"], config["epsilon"]
    accum_grad = rho * accum_grad + (1 - rho) * dw * dw
    step = np.sqrt(accum_update + eps) / np.sqrt(accum_grad + eps) * dw
    accum_update = rho * accum_update + (1 - rho) * step * step
    next_w = w - config["learning_rate"] * step
    config["accum_grad"], config["accum_update"] = accum_grad, accum_update
    ### END SOLUTION
    return _like(next_w, w), config


UPDATE_RULES = {rule.__name__: rule for rule in
                (sgd, sgd_momentum, nesterov, adagrad, rmsprop, adam, adadelta)}


def get_update_rule(name):
    """The update rule called `name`, one of UPDATE_RULES ('sgd', 'adam', ...).

    Raises ValueError, listing the valid names, for an unknown name.
    """
    try:
        return UPDATE_RULES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown update rule {name!r}; use one of {', '.join(UPDATE_RULES)} "
                         "or pass a function next_w, config = rule(w, dw, config)") from None
