"""Probes: how the judge calls each student task. `probe(load, inp) -> {name: ndarray}` calls a
task of the package `load` imports the way the notebooks do and returns its results through
`array`, `number` or `ints`; the same probe runs on the student's package and the reference's.
Copied next to the worker: numpy and the standard library only. docs/judge.md says more."""
from __future__ import annotations

import importlib
import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

Inputs = dict[str, np.ndarray]  # a case's inputs, scalars and strings as 0-d arrays
Outputs = dict[str, np.ndarray]
Load = Callable[[str], ModuleType]  # "layers" -> cs231n.layers of the package being judged
Probe = Callable[[Load, Inputs], Outputs]
PROBES: dict[str, Probe] = {}


class BadOutput(Exception):
    """The task returned something of the wrong kind; the message is for the student."""


def probe(function: Probe) -> Probe:
    PROBES[function.__name__] = function
    return function


def _kind(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"a {type(value).__name__} (a subclass of numpy.ndarray)"
    return f"a {type(value).__name__}"


def array(value: object, what: str) -> np.ndarray:
    """value itself if it is a plain numpy ndarray of numbers or booleans; else BadOutput."""
    if type(value) is not np.ndarray:
        raise BadOutput(f"{what} is {_kind(value)}, expected a numpy ndarray")
    if value.dtype.kind not in "biuf" or value.dtype.fields is not None:
        raise BadOutput(f"{what} has dtype {value.dtype}, expected a numeric dtype")
    return value


def number(value: object, what: str) -> np.ndarray:
    """value as a 0-d float64 array if it is a real number (Python, numpy or a 0-d array)."""
    if type(value) is np.ndarray and value.shape == () and value.dtype.kind in "iuf":
        return np.asarray(value, dtype=np.float64)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise BadOutput(f"{what} is {_kind(value)}, expected a number")
    return np.asarray(float(value), dtype=np.float64)


def ints(value: object, what: str, length: int | None = None) -> np.ndarray:
    """A tuple (or list) of integers as an int64 array; else BadOutput."""
    if not isinstance(value, (tuple, list)):
        raise BadOutput(f"{what} is {_kind(value)}, expected a tuple of ints")
    if length is not None and len(value) != length:
        raise BadOutput(f"{what} has {len(value)} entries, expected {length}")
    for v in value:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise BadOutput(f"{what} holds {_kind(v)}, expected ints")
    return np.array([int(v) for v in value], dtype=np.int64)


def pair(result: object, what: str, n: int = 2) -> tuple[Any, ...]:
    """Unpack a returned tuple of n values, saying what came back when it is not one."""
    if not isinstance(result, tuple) or len(result) != n:
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else _kind(result)
        raise BadOutput(f"{what} returned {got}, expected a tuple of {n}")
    return result


def _f(inp: Inputs, key: str) -> float | None:
    return float(inp[key]) if key in inp else None


def _i(inp: Inputs, key: str) -> int:
    return int(inp[key])


def _s(inp: Inputs, key: str) -> str:
    return str(inp[key])


def _params(inp: Inputs, keys: Iterable[str]) -> dict[str, Any]:
    """{key: inp[key]} for the optional hyperparameters present in the case."""
    return {k: (_s(inp, k) if inp[k].dtype.kind == "U" else float(inp[k]))
            for k in keys if k in inp}


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
@probe
def affine_forward(load: Load, inp: Inputs) -> Outputs:
    out, _ = pair(load("layers").affine_forward(inp["x"], inp["w"], inp["b"]), "affine_forward")
    return {"out": array(out, "out")}


@probe
def affine_backward(load: Load, inp: Inputs) -> Outputs:
    grads = pair(load("layers").affine_backward(inp["dout"], (inp["x"], inp["w"], inp["b"])),
                 "affine_backward", 3)
    return {k: array(g, k) for k, g in zip(("dx", "dw", "db"), grads)}


@probe
def relu_forward(load: Load, inp: Inputs) -> Outputs:
    out, _ = pair(load("layers").relu_forward(inp["x"]), "relu_forward")
    return {"out": array(out, "out")}


@probe
def relu_backward(load: Load, inp: Inputs) -> Outputs:
    return {"dx": array(load("layers").relu_backward(inp["dout"], inp["x"]), "dx")}


def _loss(load: Load, inp: Inputs, name: str) -> Outputs:
    loss, dx = pair(getattr(load("layers"), name)(inp["x"], inp["y"]), name)
    return {"loss": number(loss, "loss"), "dx": array(dx, "dx")}


@probe
def svm_loss(load: Load, inp: Inputs) -> Outputs:
    return _loss(load, inp, "svm_loss")


@probe
def softmax_loss(load: Load, inp: Inputs) -> Outputs:
    return _loss(load, inp, "softmax_loss")


def _bn_param(inp: Inputs) -> dict[str, Any]:
    bn_param = {"mode": _s(inp, "mode"), **_params(inp, ("eps", "momentum"))}
    for key in ("running_mean", "running_var"):
        if key in inp:
            bn_param[key] = inp[key].copy()
    return bn_param


def _forward_with_running_stats(load: Load, inp: Inputs, name: str) -> Outputs:
    bn_param = _bn_param(inp)
    out, _ = pair(getattr(load("layers"), name)(inp["x"], inp["gamma"], inp["beta"], bn_param),
                  name)
    result = {"out": array(out, "out")}
    if bn_param["mode"] == "train":
        for key in ("running_mean", "running_var"):
            result[key] = array(bn_param.get(key), f"bn_param['{key}']")
    return result


def _forward_backward(load: Load, inp: Inputs, forward: str, backward: str, *args: Any) -> Outputs:
    layers = load("layers")
    _, cache = pair(getattr(layers, forward)(inp["x"], inp["gamma"], inp["beta"], *args), forward)
    grads = pair(getattr(layers, backward)(inp["dout"], cache), backward, 3)
    return {k: array(g, k) for k, g in zip(("dx", "dgamma", "dbeta"), grads)}


@probe
def batchnorm_forward(load: Load, inp: Inputs) -> Outputs:
    return _forward_with_running_stats(load, inp, "batchnorm_forward")


@probe
def batchnorm_backward(load: Load, inp: Inputs) -> Outputs:
    return _forward_backward(load, inp, "batchnorm_forward", "batchnorm_backward",
                             {"mode": "train", **_params(inp, ("eps",))})


@probe
def batchnorm_backward_alt(load: Load, inp: Inputs) -> Outputs:
    return _forward_backward(load, inp, "batchnorm_forward", "batchnorm_backward_alt",
                             {"mode": "train", **_params(inp, ("eps",))})


@probe
def layernorm_forward(load: Load, inp: Inputs) -> Outputs:
    out, _ = pair(load("layers").layernorm_forward(inp["x"], inp["gamma"], inp["beta"],
                                                   _params(inp, ("eps",))), "layernorm_forward")
    return {"out": array(out, "out")}


@probe
def layernorm_backward(load: Load, inp: Inputs) -> Outputs:
    return _forward_backward(load, inp, "layernorm_forward", "layernorm_backward",
                             _params(inp, ("eps",)))


@probe
def dropout_forward(load: Load, inp: Inputs) -> Outputs:
    """Two outputs with the same seed. Any correct mask will do, so the grader judges them by
    the laws of dropout in its own process (autograder/hidden/cases.py dropout_laws): this
    process is the student's, and whatever it computed could be forged."""
    layers = load("layers")
    param = {"mode": "train", "p": _f(inp, "p"), "seed": _i(inp, "seed")}
    out, _ = pair(layers.dropout_forward(inp["x"], dict(param)), "dropout_forward")
    again, _ = pair(layers.dropout_forward(inp["x"], dict(param)), "dropout_forward")
    return {"out": array(out, "out"), "again": array(again, "out of the second call")}


@probe
def dropout_backward(load: Load, inp: Inputs) -> Outputs:
    cache = ({"mode": "train", "p": _f(inp, "p")}, inp["mask"])
    return {"dx": array(load("layers").dropout_backward(inp["dout"], cache), "dx")}


def _conv_param(inp: Inputs) -> dict[str, int]:
    return {"stride": _i(inp, "stride"), "pad": _i(inp, "pad")}


def _pool_param(inp: Inputs) -> dict[str, int]:
    return {"pool_height": _i(inp, "pool_height"), "pool_width": _i(inp, "pool_width"),
            "stride": _i(inp, "stride")}


@probe
def conv_forward_naive(load: Load, inp: Inputs) -> Outputs:
    out, _ = pair(load("layers").conv_forward_naive(inp["x"], inp["w"], inp["b"], _conv_param(inp)),
                  "conv_forward_naive")
    return {"out": array(out, "out")}


@probe
def conv_backward_naive(load: Load, inp: Inputs) -> Outputs:
    cache = (inp["x"], inp["w"], inp["b"], _conv_param(inp))
    grads = pair(load("layers").conv_backward_naive(inp["dout"], cache), "conv_backward_naive", 3)
    return {k: array(g, k) for k, g in zip(("dx", "dw", "db"), grads)}


@probe
def max_pool_forward_naive(load: Load, inp: Inputs) -> Outputs:
    out, _ = pair(load("layers").max_pool_forward_naive(inp["x"], _pool_param(inp)),
                  "max_pool_forward_naive")
    return {"out": array(out, "out")}


@probe
def max_pool_backward_naive(load: Load, inp: Inputs) -> Outputs:
    dx = load("layers").max_pool_backward_naive(inp["dout"], (inp["x"], _pool_param(inp)))
    return {"dx": array(dx, "dx")}


@probe
def spatial_batchnorm_forward(load: Load, inp: Inputs) -> Outputs:
    return _forward_with_running_stats(load, inp, "spatial_batchnorm_forward")


@probe
def spatial_batchnorm_backward(load: Load, inp: Inputs) -> Outputs:
    return _forward_backward(load, inp, "spatial_batchnorm_forward", "spatial_batchnorm_backward",
                             {"mode": "train", **_params(inp, ("eps",))})


@probe
def spatial_groupnorm_forward(load: Load, inp: Inputs) -> Outputs:
    out, _ = pair(load("layers").spatial_groupnorm_forward(
        inp["x"], inp["gamma"], inp["beta"], _i(inp, "G"), _params(inp, ("eps",))),
        "spatial_groupnorm_forward")
    return {"out": array(out, "out")}


@probe
def spatial_groupnorm_backward(load: Load, inp: Inputs) -> Outputs:
    return _forward_backward(load, inp, "spatial_groupnorm_forward", "spatial_groupnorm_backward",
                             _i(inp, "G"), _params(inp, ("eps",)))


# --------------------------------------------------------------------------------------------
# The residual block (cs231n.layer_utils)
# --------------------------------------------------------------------------------------------
def _layer_utils(load: Load) -> ModuleType:
    """cs231n.layer_utils of the package being judged. The worker's loader (process.MODULES) does
    not list it, so it is imported here, from the same package, once cs231n.layers imported
    (load raises the loader's ImportFailed when it did not)."""
    load("layers")
    return importlib.import_module("cs231n.layer_utils")


def _block_params(inp: Inputs) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """The block's params from the case's 'param.*' inputs, and fresh train-mode bn_params."""
    params = {k[len("param."):]: v.copy() for k, v in inp.items() if k.startswith("param.")}
    return params, [{"mode": "train"} for _ in range(2 + ("Wp" in params))]


@probe
def residual_block_forward(load: Load, inp: Inputs) -> Outputs:
    params, bn_params = _block_params(inp)
    out, _ = pair(_layer_utils(load).residual_block_forward(inp["x"], params, bn_params,
                                                             _i(inp, "stride")),
                  "residual_block_forward")
    result = {"out": array(out, "out")}
    for i, bn in enumerate(bn_params):
        for key in ("running_mean", "running_var"):
            result[f"bn_params[{i}].{key}"] = array(bn.get(key), f"bn_params[{i}]['{key}']")
    return result


@probe
def residual_block_backward(load: Load, inp: Inputs) -> Outputs:
    """The student's backward on the student's own forward cache (the cache is the student's
    design); a wrong forward shows up here only through the gradients it leads to."""
    layer_utils = _layer_utils(load)
    params, bn_params = _block_params(inp)
    _, cache = pair(layer_utils.residual_block_forward(inp["x"], params, bn_params,
                                                       _i(inp, "stride")),
                    "residual_block_forward")
    dx, grads = pair(layer_utils.residual_block_backward(inp["dout"], cache),
                     "residual_block_backward")
    if not isinstance(grads, dict):
        raise BadOutput(f"grads is {_kind(grads)}, expected a dict")
    result = {"dx": array(dx, "dx")}
    for name in params:
        if name not in grads:
            raise BadOutput(f"grads has no '{name}'")
        result[f"grad.{name}"] = array(grads[name], f"grads['{name}']")
    return result


# --------------------------------------------------------------------------------------------
# Update rules: several steps, carrying the config from one call to the next
# --------------------------------------------------------------------------------------------
STATE = {"sgd_momentum": ("velocity",), "nesterov": ("velocity",), "adagrad": ("cache",),
         "rmsprop": ("cache",), "adam": ("m", "v", "t"), "adadelta": ("accum_grad", "accum_update")}
HYPERPARAMETERS = ("learning_rate", "momentum", "decay_rate", "beta1", "beta2", "epsilon", "rho")


@probe
def update_rule(load: Load, inp: Inputs) -> Outputs:
    rule_name = _s(inp, "rule")
    rule = getattr(load("optim"), rule_name)
    config: Any = _params(inp, HYPERPARAMETERS) or None
    w, steps = inp["w"].copy(), []
    for k, dw in enumerate(inp["dws"]):
        w, config = pair(rule(w, dw.copy(), config), rule_name)
        w = array(w, f"next_w of step {k + 1}")
        if not isinstance(config, dict):
            raise BadOutput(f"config of step {k + 1} is {_kind(config)}, expected a dict")
        steps.append(w)
    result = {"next_w": np.stack(steps) if len({s.shape for s in steps}) == 1 else steps[-1]}
    for key in STATE[rule_name]:
        value = config.get(key)
        result[f"config.{key}"] = (number(value, f"config['{key}']") if key == "t"
                                   else array(value, f"config['{key}']"))
    return result


# --------------------------------------------------------------------------------------------
# Classifiers
# --------------------------------------------------------------------------------------------
def _init_params(model: object, names: Iterable[str]) -> Outputs:
    """The named parameters of a fresh model, as they are: the grader judges them by the laws of
    an initialisation in its own process (hidden/cases.py init_summary), since a summary made
    here, in the student's process, could be forged."""
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise BadOutput(f"model.params is {_kind(params)}, expected a dict")
    result = {}
    for name in names:
        if name not in params:
            raise BadOutput(f"model.params has no '{name}'")
        result[f"param.{name}"] = array(params[name], f"params['{name}']")
    return result


def _set_params(model: object, inp: Inputs) -> None:
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise BadOutput(f"model.params is {_kind(params)}, expected a dict")
    for key, value in inp.items():
        if key.startswith("param."):
            params[key[len("param."):]] = value.copy()


def _scores_loss_grads(model: Any, inp: Inputs, names: Iterable[str], train_first: bool = False) -> Outputs:
    X, y = inp["X"], inp["y"]
    result = {}
    if not train_first:
        result["scores"] = array(model.loss(X), "scores")
    loss, grads = pair(model.loss(X, y), "loss(X, y)")
    result["loss"] = number(loss, "loss")
    if not isinstance(grads, dict):
        raise BadOutput(f"grads is {_kind(grads)}, expected a dict")
    for name in names:
        if name not in grads:
            raise BadOutput(f"grads has no '{name}'")
        result[f"grad.{name}"] = array(grads[name], f"grads['{name}']")
    if train_first:
        result["scores"] = array(model.loss(X), "scores")
    return result


@probe
def two_layer_net_init(load: Load, inp: Inputs) -> Outputs:
    model = load("classifiers").TwoLayerNet(
        input_dim=_i(inp, "input_dim"), hidden_dim=_i(inp, "hidden_dim"),
        num_classes=_i(inp, "num_classes"), weight_scale=_f(inp, "weight_scale"),
        dtype=np.dtype(_s(inp, "dtype")).type, seed=_i(inp, "seed"))
    return _init_params(model, ("W1", "b1", "W2", "b2"))


@probe
def two_layer_net_loss(load: Load, inp: Inputs) -> Outputs:
    W1, W2 = inp["param.W1"], inp["param.W2"]
    model = load("classifiers").TwoLayerNet(input_dim=W1.shape[0], hidden_dim=W1.shape[1],
                                            num_classes=W2.shape[1], reg=_f(inp, "reg"),
                                            dtype=np.float64, seed=0)
    _set_params(model, inp)
    return _scores_loss_grads(model, inp, ("W1", "b1", "W2", "b2"))


def _fc_net(load: Load, inp: Inputs, **kwargs: Any) -> tuple[Any, str | None]:
    norm = _s(inp, "normalization") or None
    return load("classifiers").FullyConnectedNet(
        [int(h) for h in inp["hidden_dims"]], input_dim=_i(inp, "input_dim"),
        num_classes=_i(inp, "num_classes"), normalization=norm, dtype=np.float64,
        seed=_i(inp, "seed"), **kwargs), norm


@probe
def fc_net_init(load: Load, inp: Inputs) -> Outputs:
    model, norm = _fc_net(load, inp, weight_scale=_f(inp, "weight_scale"))
    L = len(inp["hidden_dims"]) + 1
    extra = [f"{k}{i}" for i in range(1, L) for k in ("gamma", "beta")] if norm else []
    return _init_params(model, [f"{k}{i}" for i in range(1, L + 1) for k in ("W", "b")] + extra)


@probe
def fc_net_loss(load: Load, inp: Inputs) -> Outputs:
    model, _ = _fc_net(load, inp, reg=_f(inp, "reg"))
    _set_params(model, inp)
    names = [k[len("param."):] for k in inp if k.startswith("param.")]
    return _scores_loss_grads(model, inp, names, train_first=True)


def _three_layer_net(load: Load, inp: Inputs, **kwargs: Any) -> Any:
    return load("classifiers").ThreeLayerConvNet(
        input_dim=tuple(int(d) for d in inp["input_dim"]), num_filters=_i(inp, "num_filters"),
        filter_size=_i(inp, "filter_size"), hidden_dim=_i(inp, "hidden_dim"),
        num_classes=_i(inp, "num_classes"), dtype=np.float64, seed=_i(inp, "seed"), **kwargs)


@probe
def three_layer_conv_net_init(load: Load, inp: Inputs) -> Outputs:
    model = _three_layer_net(load, inp, weight_scale=_f(inp, "weight_scale"))
    return _init_params(model, ("W1", "b1", "W2", "b2", "W3", "b3"))


@probe
def three_layer_conv_net_loss(load: Load, inp: Inputs) -> Outputs:
    model = _three_layer_net(load, inp, reg=_f(inp, "reg"))
    _set_params(model, inp)
    return _scores_loss_grads(model, inp, ("W1", "b1", "W2", "b2", "W3", "b3"))


# --------------------------------------------------------------------------------------------
# The small ResNet (cs231n.classifiers.resnet)
# --------------------------------------------------------------------------------------------
def _resnet_module(load: Load) -> ModuleType:
    """cs231n.classifiers.resnet of the package being judged, once cs231n.classifiers imported."""
    load("classifiers")
    return importlib.import_module("cs231n.classifiers.resnet")


@probe
def global_average_pool_forward(load: Load, inp: Inputs) -> Outputs:
    out, _ = pair(_resnet_module(load).global_average_pool_forward(inp["x"]), "global_average_pool_forward")
    return {"out": array(out, "out")}


@probe
def global_average_pool_backward(load: Load, inp: Inputs) -> Outputs:
    """The student's backward on the student's own forward cache."""
    resnet = _resnet_module(load)
    _, cache = pair(resnet.global_average_pool_forward(inp["x"]), "global_average_pool_forward")
    return {"dx": array(resnet.global_average_pool_backward(inp["dout"], cache), "dx")}


@probe
def resnet_loss(load: Load, inp: Inputs) -> Outputs:
    """A ResNet (or its plain twin) made by the given constructor from a seed, so its parameters
    are the reference's; its loss and every gradient, then its scores (test-mode batchnorm)."""
    model = load("classifiers").ResNet(
        input_dim=tuple(int(d) for d in inp["input_dim"]),
        stage_filters=tuple(int(d) for d in inp["stage_filters"]),
        blocks_per_stage=_i(inp, "blocks_per_stage"), num_classes=_i(inp, "num_classes"),
        residual=bool(_i(inp, "residual")), reg=_f(inp, "reg"), dtype=np.float64, seed=_i(inp, "seed"))
    names = sorted(getattr(model, "params", {}))
    return _scores_loss_grads(model, inp, names, train_first=True)


# --------------------------------------------------------------------------------------------
# Architectures on paper (cs231n.arch)
# --------------------------------------------------------------------------------------------
def _shape_args(inp: Inputs) -> tuple[int, ...]:
    return tuple(int(d) for d in inp["in_shape"])


@probe
def conv_output_shape(load: Load, inp: Inputs) -> Outputs:
    shape = load("arch").conv_output_shape(_shape_args(inp), _i(inp, "filters"), _i(inp, "size"),
                                           _i(inp, "stride"), _i(inp, "pad"))
    return {"out_shape": ints(shape, "the output shape", 3)}


@probe
def pool_output_shape(load: Load, inp: Inputs) -> Outputs:
    shape = load("arch").pool_output_shape(_shape_args(inp), _i(inp, "size"), _i(inp, "stride"))
    return {"out_shape": ints(shape, "the output shape", 3)}


@probe
def arch_shape_error(load: Load, inp: Inputs) -> Outputs:
    """1 when the layer that does not fit raises ValueError, 0 when it returns; for a conv or a
    pool also the first number with two decimals in the message (-1 if none): the task's message
    shows the count it came to (2.33 for a 7x7 input, a 3x3 filter and stride 3), which a
    ValueError raised by given code does not."""
    arch = load("arch")
    layer = _s(inp, "layer")
    try:
        if layer == "conv":
            arch.conv_output_shape(_shape_args(inp), _i(inp, "filters"), _i(inp, "size"),
                                   _i(inp, "stride"), _i(inp, "pad"))
        elif layer == "same_pad":
            arch.same_pad(_i(inp, "size"))
        else:
            arch.pool_output_shape(_shape_args(inp), _i(inp, "size"), _i(inp, "stride"))
    except ValueError as err:
        out = {"raises_value_error": np.asarray(1.0)}
        if layer != "same_pad":
            shown = re.search(r"(?<![\d.])(\d+\.\d\d)(?!\d)", str(err)[:2000])
            out["number_shown"] = np.asarray(float(shown.group(1)) if shown else -1.0)
        return out
    return {"raises_value_error": np.asarray(0.0)} if layer == "same_pad" else {
        "raises_value_error": np.asarray(0.0), "number_shown": np.asarray(-1.0)}


@probe
def receptive_field(load: Load, inp: Inputs) -> Outputs:
    layers = [(int(size), int(stride)) for size, stride in inp["layers"]]
    return {"receptive_field": ints([load("arch").receptive_field(layers)], "the receptive field")}


@probe
def same_pad(load: Load, inp: Inputs) -> Outputs:
    pads = [load("arch").same_pad(int(size)) for size in inp["sizes"]]
    return {"pads": ints(pads, "the paddings")}


@probe
def conv_param_count(load: Load, inp: Inputs) -> Outputs:
    counts = load("arch").conv_param_count(_shape_args(inp), _i(inp, "filters"), _i(inp, "size"))
    return {"weights_biases": ints(counts, "(weights, biases)", 2)}


@probe
def fc_param_count(load: Load, inp: Inputs) -> Outputs:
    counts = load("arch").fc_param_count(_shape_args(inp), _i(inp, "units"))
    return {"weights_biases": ints(counts, "(weights, biases)", 2)}


@probe
def conv_macs(load: Load, inp: Inputs) -> Outputs:
    macs = load("arch").conv_macs(_shape_args(inp), _i(inp, "filters"), _i(inp, "size"),
                                  _i(inp, "stride"), _i(inp, "pad"))
    return {"macs": ints((macs,), "the multiply-adds", 1)}


# --------------------------------------------------------------------------------------------
# Re-checks of notebook cells (autograder.hidden.case.Recheck): the student's model trained by
# the given Solver, its parameters returned for the grader to evaluate; the student's arch
# functions walked over a case study's layers
# --------------------------------------------------------------------------------------------
def _trained(load: Load, model: object, inp: Inputs) -> Outputs:
    """Train model with the package's Solver on the case's data; its parameters by name."""
    data = {k: inp[k] for k in ("X_train", "y_train", "X_val", "y_val")}
    solver = load("solver").Solver(
        model, data, update_rule=_s(inp, "update_rule"),
        optim_config={"learning_rate": _f(inp, "learning_rate")}, num_epochs=_i(inp, "num_epochs"),
        batch_size=_i(inp, "batch_size"), verbose=False, seed=_i(inp, "seed"))
    solver.train()
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise BadOutput(f"model.params is {_kind(params)}, expected a dict")
    return {f"param.{k}": array(v, f"params['{k}']") for k, v in params.items() if isinstance(k, str)}


@probe
def two_layer_net_train(load: Load, inp: Inputs) -> Outputs:
    model = load("classifiers").TwoLayerNet(
        input_dim=_i(inp, "input_dim"), hidden_dim=_i(inp, "hidden_dim"),
        num_classes=_i(inp, "num_classes"), weight_scale=_f(inp, "weight_scale"),
        reg=_f(inp, "reg"), seed=_i(inp, "seed"))
    return _trained(load, model, inp)


@probe
def fc_net_train(load: Load, inp: Inputs) -> Outputs:
    model = load("classifiers").FullyConnectedNet(
        [int(h) for h in inp["hidden_dims"]], input_dim=_i(inp, "input_dim"),
        num_classes=_i(inp, "num_classes"), weight_scale=_f(inp, "weight_scale"),
        reg=_f(inp, "reg"), seed=_i(inp, "seed"))
    return _trained(load, model, inp)


LAYER_KINDS = ("conv", "pool", "norm", "fc")  # rows of network_table: kind, a, b, c, d


@probe
def network_table(load: Load, inp: Inputs) -> Outputs:
    """Output shape and (weights, biases) of every layer of a network, from the student's
    conv_output_shape, pool_output_shape, conv_param_count and fc_param_count. A layer row is
    (kind, filters or units or size, size or stride, stride, pad); an FC output (units,) is
    returned as (units, 1, 1)."""
    arch = load("arch")
    shape = _shape_args(inp)
    shapes, counts = [], []
    for kind, a, b, c, d in (tuple(int(v) for v in row) for row in inp["layers"]):
        name = LAYER_KINDS[kind]
        if name == "conv":
            count = ints(arch.conv_param_count(shape, a, b), "(weights, biases)", 2)
            shape = tuple(int(v) for v in ints(arch.conv_output_shape(shape, a, b, c, d),
                                               "the output shape", 3))
        elif name == "pool":
            count = np.zeros(2, dtype=np.int64)
            shape = tuple(int(v) for v in ints(arch.pool_output_shape(shape, a, b),
                                               "the output shape", 3))
        elif name == "fc":
            count = ints(arch.fc_param_count(shape, a), "(weights, biases)", 2)
            shape = (a,)
        else:
            count = np.zeros(2, dtype=np.int64)
        shapes.append(tuple(int(v) for v in shape) + (1,) * (3 - len(shape)))
        counts.append(count)
    return {"out_shape": np.array(shapes, dtype=np.int64), "weights_biases": np.stack(counts)}
