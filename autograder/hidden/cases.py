"""The hidden cases of the function-level judge (CASES) and the notebook re-checks (RECHECKS):
shapes, settings and points per student task. Never shipped to students, never readable by a
judge worker. Each case's `make` gets a generator seeded by SALT and the case's key, and returns
the probe's inputs; docs/judge.md says how points and verdicts work."""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.random import Generator

from autograder.hidden.case import Arrays, Case, Recheck, Verdict

if TYPE_CHECKING:
    from cs231n.arch import Network
    from cs231n.classifiers import FullyConnectedNet, TwoLayerNet

Inputs = dict[str, Any]  # a case's inputs before Case.inputs makes them arrays
Make = Callable[[Generator], Inputs]

SALT = 20231

rel = 1e-7      # the notebooks' bar for an exact layer in float64
rel_net = 1e-6  # classifiers: more operations between input and output


def normal(rng: Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return scale * rng.standard_normal(shape)


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
def affine(N: int, dims: tuple[int, ...], M: int, backward: bool = False) -> Make:
    def make(rng: Generator) -> Inputs:
        D = int(np.prod(dims))
        inp = {"x": normal(rng, N, *dims), "w": normal(rng, D, M), "b": normal(rng, M)}
        if backward:
            inp["dout"] = normal(rng, N, M)
        return inp
    return make


def elementwise(*shape: int, backward: bool = False) -> Make:
    def make(rng: Generator) -> Inputs:
        inp = {"x": normal(rng, *shape)}
        if backward:
            inp["dout"] = normal(rng, *shape)
        return inp
    return make


def scores(N: int, C: int, scale: float = 1.0) -> Make:
    def make(rng: Generator) -> Inputs:
        return {"x": normal(rng, N, C, scale=scale), "y": rng.integers(0, C, N)}
    return make


def norm_inputs(N: int, D: int, mode: str = "train", dout: bool = False, running: bool = False,
                **settings: Any) -> Make:
    def make(rng: Generator) -> Inputs:
        inp = dict(x=normal(rng, N, D, scale=3.0) + 5.0, gamma=1 + normal(rng, D, scale=0.3),
                   beta=normal(rng, D), mode=mode, **settings)
        if running:
            inp["running_mean"] = normal(rng, D) + 5.0
            inp["running_var"] = rng.uniform(0.5, 9.0, D)
        if dout:
            inp["dout"] = normal(rng, N, D)
        return inp
    return make


def spatial_inputs(N: int, C: int, H: int, W: int, dout: bool = False, mode: str | None = "train",
                   running: bool = False, **settings: Any) -> Make:
    def make(rng: Generator) -> Inputs:
        inp = dict(x=normal(rng, N, C, H, W, scale=2.0) + 1.0,
                   gamma=1 + normal(rng, C, scale=0.3), beta=normal(rng, C), **settings)
        if mode is not None:
            inp["mode"] = mode
        if running:
            inp["running_mean"] = normal(rng, C) + 1.0
            inp["running_var"] = rng.uniform(0.5, 5.0, C)
        if dout:
            inp["dout"] = normal(rng, N, C, H, W)
        return inp
    return make


def dropout(shape: tuple[int, ...], p: float) -> Make:
    def make(rng: Generator) -> Inputs:
        x = normal(rng, *shape)
        x[x == 0] = 1.0
        return {"x": x, "p": p, "seed": int(rng.integers(1 << 30))}
    return make


def dropout_laws(inputs: Arrays, outputs: Arrays) -> tuple[bool, str]:
    """A verdict (grader side) on two dropout outputs made with the same seed: each unit is 0 or
    x / p, the fraction kept is p (within 5% relative error), and the same seed gives the same
    mask. The arrays come from the student's process: names, shapes and dtypes checked first."""
    x, p = inputs["x"], float(inputs["p"])
    if set(outputs) != {"out", "again"}:
        return False, f"dropout_forward sent {sorted(outputs)[:4]}, not two outputs"
    out, again = outputs["out"], outputs["again"]
    for got in (out, again):
        if got.dtype.kind != "f" or got.shape != x.shape:
            return False, f"out has shape {got.shape} and dtype {got.dtype}, expected those of x {x.shape}"
        if not np.all(np.isfinite(got)):
            return False, "out contains nan or inf"
    kept = out != 0
    scaled = x / p
    if not np.all(np.where(kept, np.abs(out - scaled) <= 1e-9 * np.abs(scaled), True)):
        return False, "a kept unit is not x / p"
    fraction = float(kept.mean())
    if abs(fraction - p) > 0.05 * (fraction + p):
        return False, f"kept {fraction:.3f} of the units with p = {p:g}"
    if not np.array_equal(out, again):
        return False, "the same seed gave a different mask"
    return True, f"passed (kept {fraction:.3f} of the units)"


def dropout_back(shape: tuple[int, ...], p: float) -> Make:
    def make(rng: Generator) -> Inputs:
        mask = (rng.random(shape) < p) / p
        return {"dout": normal(rng, *shape), "mask": mask, "p": p}
    return make


def conv(N: int, C: int, H: int, W: int, F: int, HH: int, WW: int, stride: int, pad: int,
         backward: bool = False) -> Make:
    def make(rng: Generator) -> Inputs:
        inp = {"x": normal(rng, N, C, H, W), "w": normal(rng, F, C, HH, WW), "b": normal(rng, F),
               "stride": stride, "pad": pad}
        if backward:
            H_out = 1 + (H + 2 * pad - HH) // stride
            W_out = 1 + (W + 2 * pad - WW) // stride
            inp["dout"] = normal(rng, N, F, H_out, W_out)
        return inp
    return make


def pool(N: int, C: int, H: int, W: int, ph: int, pw: int, stride: int, backward: bool = False) -> Make:
    def make(rng: Generator) -> Inputs:
        inp = {"x": normal(rng, N, C, H, W), "pool_height": ph, "pool_width": pw, "stride": stride}
        if backward:
            inp["dout"] = normal(rng, N, C, 1 + (H - ph) // stride, 1 + (W - pw) // stride)
        return inp
    return make


CONV_SHOW = ("x", "w", "stride", "pad")
POOL_SHOW = ("x", "pool_height", "pool_width", "stride")
BN_SHOW = ("x", "mode")

LAYER_CASES = [
    Case("affine_forward", "images_to_3", 0.5, "affine_forward", affine(2, (4, 5, 6), 3)),
    Case("affine_forward", "batch1_rows", 0.5, "affine_forward", affine(1, (7,), 5)),
    Case("affine_backward", "images_to_3", 1, "affine_backward", affine(3, (2, 3, 4), 3, True)),
    Case("affine_backward", "batch1_rows", 1, "affine_backward", affine(1, (6,), 4, True)),
    Case("relu_forward", "matrix", 0.5, "relu_forward", elementwise(5, 7)),
    Case("relu_forward", "volume", 0.5, "relu_forward", elementwise(2, 3, 4, 5)),
    Case("relu_backward", "matrix", 0.5, "relu_backward", elementwise(6, 5, backward=True)),
    Case("relu_backward", "volume", 0.5, "relu_backward", elementwise(2, 3, 3, 4, backward=True)),
    Case("svm_loss", "batch40_classes7", 1, "svm_loss", scores(40, 7)),
    Case("svm_loss", "batch1_classes3", 1, "svm_loss", scores(1, 3)),
    Case("softmax_loss", "batch40_classes7", 1, "softmax_loss", scores(40, 7)),
    Case("softmax_loss", "large_scores", 1, "softmax_loss", scores(10, 5, scale=1000.0)),
    Case("batchnorm_forward", "train", 1, "batchnorm_forward", norm_inputs(30, 6), show=BN_SHOW),
    Case("batchnorm_forward", "train_momentum_eps", 1, "batchnorm_forward",
         norm_inputs(12, 5, running=True, momentum=0.7, eps=1e-3),
         show=("x", "mode", "momentum", "eps")),
    Case("batchnorm_forward", "test", 1, "batchnorm_forward",
         norm_inputs(8, 4, mode="test", running=True), show=BN_SHOW),
    Case("batchnorm_backward", "batch20", 1.5, "batchnorm_backward", norm_inputs(20, 6, dout=True)),
    Case("batchnorm_backward", "batch3_eps", 1.5, "batchnorm_backward",
         norm_inputs(3, 4, dout=True, eps=1e-2), show=("x", "eps")),
    Case("batchnorm_backward_alt", "batch20", 1, "batchnorm_backward_alt",
         norm_inputs(20, 6, dout=True)),
    Case("batchnorm_backward_alt", "batch3_eps", 1, "batchnorm_backward_alt",
         norm_inputs(3, 4, dout=True, eps=1e-2), show=("x", "eps")),
    Case("layernorm_forward", "rows", 1, "layernorm_forward", norm_inputs(4, 9)),
    Case("layernorm_forward", "batch1_eps", 1, "layernorm_forward", norm_inputs(1, 6, eps=1e-3),
         show=("x", "eps")),
    Case("layernorm_backward", "rows", 1, "layernorm_backward", norm_inputs(5, 8, dout=True)),
    Case("layernorm_backward", "batch1", 1, "layernorm_backward", norm_inputs(1, 7, dout=True)),
    Case("dropout_forward", "keep_0.3", 0.5, "dropout_forward", dropout((100, 200), 0.3),
         verdict=dropout_laws, show=("x", "p")),
    Case("dropout_forward", "keep_0.8", 0.5, "dropout_forward", dropout((20, 10, 50), 0.8),
         verdict=dropout_laws, show=("x", "p")),
    Case("dropout_backward", "keep_0.3", 0.5, "dropout_backward", dropout_back((30, 20), 0.3),
         show=("dout", "p")),
    Case("dropout_backward", "keep_0.6", 0.5, "dropout_backward", dropout_back((4, 5, 6), 0.6),
         show=("dout", "p")),
    Case("conv_forward_naive", "stride1_pad0", 1, "conv_forward_naive",
         conv(2, 3, 5, 5, 4, 3, 3, 1, 0), show=CONV_SHOW),
    Case("conv_forward_naive", "stride2_pad1_nonsquare", 1, "conv_forward_naive",
         conv(2, 3, 7, 6, 4, 3, 2, 2, 1), show=CONV_SHOW),
    Case("conv_forward_naive", "stride3_pad3_batch1", 1, "conv_forward_naive",
         conv(1, 2, 5, 7, 3, 2, 4, 3, 3), show=CONV_SHOW),
    Case("conv_backward_naive", "stride1_pad0", 1, "conv_backward_naive",
         conv(2, 3, 5, 5, 4, 3, 3, 1, 0, True), show=CONV_SHOW),
    Case("conv_backward_naive", "stride2_pad1_nonsquare", 1.5, "conv_backward_naive",
         conv(2, 3, 7, 6, 4, 3, 2, 2, 1, True), show=CONV_SHOW),
    Case("conv_backward_naive", "stride3_pad3_batch1", 1.5, "conv_backward_naive",
         conv(1, 2, 5, 7, 3, 2, 4, 3, 3, True), show=CONV_SHOW),
    Case("max_pool_forward_naive", "2x2_stride2", 1, "max_pool_forward_naive",
         pool(2, 3, 8, 6, 2, 2, 2), show=POOL_SHOW),
    Case("max_pool_forward_naive", "3x2_stride1_batch1", 1, "max_pool_forward_naive",
         pool(1, 2, 5, 4, 3, 2, 1), show=POOL_SHOW),
    Case("max_pool_backward_naive", "2x2_stride2", 1, "max_pool_backward_naive",
         pool(2, 3, 8, 6, 2, 2, 2, True), show=POOL_SHOW),
    Case("max_pool_backward_naive", "3x2_stride1_overlapping", 1, "max_pool_backward_naive",
         pool(1, 2, 5, 4, 3, 2, 1, True), show=POOL_SHOW),
    Case("spatial_batchnorm_forward", "train", 1, "spatial_batchnorm_forward",
         spatial_inputs(3, 4, 5, 2), show=BN_SHOW),
    Case("spatial_batchnorm_forward", "test", 1, "spatial_batchnorm_forward",
         spatial_inputs(2, 3, 4, 4, mode="test", running=True), show=BN_SHOW),
    Case("spatial_batchnorm_backward", "train", 2, "spatial_batchnorm_backward",
         spatial_inputs(3, 4, 5, 2, dout=True)),
    Case("spatial_groupnorm_forward", "groups2", 1, "spatial_groupnorm_forward",
         spatial_inputs(2, 6, 4, 3, mode=None, G=2), show=("x", "G")),
    Case("spatial_groupnorm_forward", "groups3_eps", 1, "spatial_groupnorm_forward",
         spatial_inputs(3, 6, 2, 5, mode=None, G=3, eps=1e-3), show=("x", "G", "eps")),
    Case("spatial_groupnorm_backward", "groups2", 1, "spatial_groupnorm_backward",
         spatial_inputs(2, 6, 4, 3, mode=None, G=2, dout=True), show=("x", "G")),
    Case("spatial_groupnorm_backward", "groups1_batch1", 1, "spatial_groupnorm_backward",
         spatial_inputs(1, 4, 3, 3, mode=None, G=1, dout=True), show=("x", "G")),
]


# --------------------------------------------------------------------------------------------
# The residual block: identity and projection shortcuts, stride 1 and 2, batch 1, one channel
# --------------------------------------------------------------------------------------------
def residual_block(N: int, C: int, F: int, H: int, W: int, stride: int, backward: bool = False) -> Make:
    def make(rng: Generator) -> Inputs:
        inp = {"x": normal(rng, N, C, H, W, scale=2.0) + 0.5, "stride": stride}
        shapes = {"W1": (F, C, 3, 3), "b1": (F,), "gamma1": (F,), "beta1": (F,),
                  "W2": (F, F, 3, 3), "b2": (F,), "gamma2": (F,), "beta2": (F,)}
        if stride != 1 or C != F:
            shapes.update({"Wp": (F, C, 1, 1), "bp": (F,), "gammap": (F,), "betap": (F,)})
        for name, shape in shapes.items():
            inp[f"param.{name}"] = (1 + normal(rng, *shape, scale=0.3) if name.startswith("gamma")
                                    else normal(rng, *shape))
        if backward:
            H_out, W_out = (H - 1) // stride + 1, (W - 1) // stride + 1
            inp["dout"] = normal(rng, N, F, H_out, W_out)
        return inp
    return make


BLOCK_SHOW = ("x", "param.W1", "stride")
RESIDUAL_CASES = [
    Case("residual_block_forward", "identity", 1, "residual_block_forward",
         residual_block(2, 3, 3, 4, 5, 1), tol=rel_net, show=BLOCK_SHOW),
    Case("residual_block_forward", "projection_stride2", 1, "residual_block_forward",
         residual_block(2, 2, 4, 5, 7, 2), tol=rel_net, show=BLOCK_SHOW),
    Case("residual_block_forward", "batch1_one_channel_projection", 1, "residual_block_forward",
         residual_block(1, 1, 2, 3, 3, 1), tol=rel_net, show=BLOCK_SHOW),
    Case("residual_block_backward", "identity", 1.5, "residual_block_backward",
         residual_block(2, 3, 3, 4, 5, 1, backward=True), tol=rel_net, show=BLOCK_SHOW),
    Case("residual_block_backward", "projection_stride2", 1.5, "residual_block_backward",
         residual_block(2, 2, 4, 5, 7, 2, backward=True), tol=rel_net, show=BLOCK_SHOW),
    Case("residual_block_backward", "batch1_one_channel_identity", 1, "residual_block_backward",
         residual_block(1, 1, 1, 3, 3, 1, backward=True), tol=rel_net, show=BLOCK_SHOW),
]


# --------------------------------------------------------------------------------------------
# The small ResNet: global average pooling, and the whole net's loss and gradients (residual and
# plain, stride-2 stages with projections, batch 1), its parameters made by the given constructor
# --------------------------------------------------------------------------------------------
def resnet(N: int, C: int, H: int, stage_filters: tuple[int, ...], blocks: int, classes: int,
           residual: bool, reg: float) -> Make:
    def make(rng: Generator) -> Inputs:
        return {"X": normal(rng, N, C, H, H), "y": rng.integers(0, classes, N),
                "input_dim": np.array([C, H, H]), "stage_filters": np.array(stage_filters),
                "blocks_per_stage": blocks, "num_classes": classes, "residual": int(residual),
                "reg": reg, "seed": int(rng.integers(1 << 30))}
    return make


RESNET_SHOW = ("X", "stage_filters", "blocks_per_stage", "residual", "reg")
RESNET_CASES = [
    Case("global_average_pool_forward", "maps", 0.5, "global_average_pool_forward",
         elementwise(3, 4, 5, 2)),
    Case("global_average_pool_forward", "one_position", 0.5, "global_average_pool_forward",
         elementwise(2, 3, 1, 1)),
    Case("global_average_pool_backward", "maps", 0.5, "global_average_pool_backward",
         lambda rng: {"x": normal(rng, 2, 3, 4, 3), "dout": normal(rng, 2, 3)}),
    Case("global_average_pool_backward", "batch1", 0.5, "global_average_pool_backward",
         lambda rng: {"x": normal(rng, 1, 5, 2, 6), "dout": normal(rng, 1, 5)}),
    Case("ResNet", "two_stages_residual", 2, "resnet_loss",
         resnet(3, 2, 5, (3, 4), 1, 4, True, 0.05), tol=rel_net, show=RESNET_SHOW),
    Case("ResNet", "plain_twin", 1, "resnet_loss",
         resnet(2, 3, 6, (2, 3), 1, 3, False, 0.1), tol=rel_net, show=RESNET_SHOW),
    Case("ResNet", "three_stages_batch1", 1, "resnet_loss",
         resnet(1, 1, 9, (2, 2, 3), 1, 5, True, 0.0), tol=rel_net, show=RESNET_SHOW),
]


# --------------------------------------------------------------------------------------------
# Update rules: three or four steps, carrying the config
# --------------------------------------------------------------------------------------------
def steps(rule: str, shape: tuple[int, ...], n: int, **hyper: float) -> Make:
    def make(rng: Generator) -> Inputs:
        return dict(rule=rule, w=normal(rng, *shape), dws=normal(rng, n, *shape), **hyper)
    return make


OPTIM_CASES = []
for _rule, _hyper in [("sgd_momentum", {"learning_rate": 0.1, "momentum": 0.5}),
                      ("nesterov", {"learning_rate": 0.05, "momentum": 0.8}),
                      ("adagrad", {"learning_rate": 0.3, "epsilon": 1e-6}),
                      ("rmsprop", {"learning_rate": 0.02, "decay_rate": 0.9, "epsilon": 1e-6}),
                      ("adam", {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95,
                                "epsilon": 1e-6}),
                      ("adadelta", {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-5})]:
    OPTIM_CASES += [
        Case(_rule, "defaults_3_steps", 1, "update_rule", steps(_rule, (4, 5), 3), show=("w",)),
        Case(_rule, "settings_4_steps", 1, "update_rule", steps(_rule, (3, 2, 6), 4, **_hyper),
             show=("w", *_hyper)),
    ]


# --------------------------------------------------------------------------------------------
# Classifiers: the initialisation by its laws, the loss and gradients on parameters we set
# --------------------------------------------------------------------------------------------
INIT_TOL = {"*": 1e-12, **{f"std_over_scale.W{i}": 0.05 for i in range(1, 5)}}


def init_summary(inputs: Arrays, outputs: Arrays) -> Arrays:
    """A summary (grader side) of a fresh model's parameters, compared with the reference's:
    each one's shape, each weight's spread relative to weight_scale, biases and betas zero,
    gammas one, and, where the case asks for a dtype, every parameter of it."""
    scale = float(inputs["weight_scale"])
    params = {k[len("param."):]: v for k, v in outputs.items() if k.startswith("param.")}
    summary = {}
    for name, value in params.items():
        summary[f"shape.{name}"] = np.array(value.shape, dtype=np.int64)
        if name.startswith("W"):
            summary[f"std_over_scale.{name}"] = np.asarray(value.std() / scale)
        elif name.startswith("gamma"):
            summary[f"all_one.{name}"] = np.asarray(float(np.all(value == 1)))
        else:
            summary[f"all_zero.{name}"] = np.asarray(float(np.all(value == 0)))
    if "dtype" in inputs:
        dtype = np.dtype(str(inputs["dtype"]))
        summary["params_have_dtype"] = np.asarray(float(all(v.dtype == dtype for v in params.values())))
    return summary


def two_layer_init(rng: Generator) -> Inputs:
    return {"input_dim": 300, "hidden_dim": 50, "num_classes": 7, "weight_scale": 0.01,
            "dtype": "float32", "seed": int(rng.integers(1 << 30))}


def two_layer_loss(N: int, D: int, H: int, C: int, reg: float) -> Make:
    def make(rng: Generator) -> Inputs:
        return {"X": normal(rng, N, D), "y": rng.integers(0, C, N), "reg": reg,
                "param.W1": normal(rng, D, H, scale=0.3), "param.b1": normal(rng, H, scale=0.1),
                "param.W2": normal(rng, H, C, scale=0.3), "param.b2": normal(rng, C, scale=0.1)}
    return make


def fc_init(hidden_dims: Sequence[int], normalization: str) -> Make:
    def make(rng: Generator) -> Inputs:
        return {"hidden_dims": np.array(hidden_dims), "input_dim": 200, "num_classes": 6,
                "normalization": normalization, "weight_scale": 0.02,
                "seed": int(rng.integers(1 << 30))}
    return make


def fc_loss(N: int, D: int, hidden_dims: Sequence[int], C: int, normalization: str, reg: float) -> Make:
    def make(rng: Generator) -> Inputs:
        inp = {"X": normal(rng, N, D), "y": rng.integers(0, C, N), "reg": reg,
               "hidden_dims": np.array(hidden_dims), "input_dim": D, "num_classes": C,
               "normalization": normalization, "seed": 0}
        dims = [D, *hidden_dims, C]
        for i, (a, b) in enumerate(itertools.pairwise(dims), start=1):
            inp[f"param.W{i}"] = normal(rng, a, b, scale=0.4)
            inp[f"param.b{i}"] = normal(rng, b, scale=0.1)
            if normalization and i < len(dims) - 1:
                inp[f"param.gamma{i}"] = 1 + normal(rng, b, scale=0.2)
                inp[f"param.beta{i}"] = normal(rng, b, scale=0.2)
        return inp
    return make


def three_layer_init(rng: Generator) -> Inputs:
    return {"input_dim": np.array([3, 8, 6]), "num_filters": 5, "filter_size": 3,
            "hidden_dim": 40, "num_classes": 4, "weight_scale": 0.05,
            "seed": int(rng.integers(1 << 30))}


def three_layer_loss(N: int, C: int, H: int, W: int, F: int, size: int, hidden: int, classes: int,
                     reg: float) -> Make:
    def make(rng: Generator) -> Inputs:
        return {"X": normal(rng, N, C, H, W), "y": rng.integers(0, classes, N), "reg": reg,
                "input_dim": np.array([C, H, W]), "num_filters": F, "filter_size": size,
                "hidden_dim": hidden, "num_classes": classes, "seed": 0,
                "param.W1": normal(rng, F, C, size, size, scale=0.3),
                "param.b1": normal(rng, F, scale=0.1),
                "param.W2": normal(rng, F * (H // 2) * (W // 2), hidden, scale=0.2),
                "param.b2": normal(rng, hidden, scale=0.1),
                "param.W3": normal(rng, hidden, classes, scale=0.3),
                "param.b3": normal(rng, classes, scale=0.1)}
    return make


NET_SHOW = ("X", "reg")
FC_SHOW = ("X", "hidden_dims", "normalization", "reg")
CLASSIFIER_CASES = [
    Case("TwoLayerNet", "init", 1, "two_layer_net_init", two_layer_init, tol=INIT_TOL,
         summary=init_summary, show=("input_dim", "hidden_dim", "num_classes", "dtype")),
    Case("TwoLayerNet", "loss_and_grads", 2, "two_layer_net_loss",
         two_layer_loss(5, 12, 8, 4, 0.3), tol=rel_net, show=NET_SHOW),
    Case("FullyConnectedNet", "init_layernorm", 1, "fc_net_init",
         fc_init([30, 20, 10], "layernorm"),
         tol=INIT_TOL, summary=init_summary, show=("hidden_dims", "normalization")),
    Case("FullyConnectedNet", "three_layers_no_norm", 1, "fc_net_loss",
         fc_loss(6, 10, [8, 7], 5, "", 0.2), tol=rel_net, show=FC_SHOW),
    Case("FullyConnectedNet", "batchnorm", 1, "fc_net_loss",
         fc_loss(7, 9, [6, 5], 4, "batchnorm", 0.1), tol=rel_net, show=FC_SHOW),
    Case("FullyConnectedNet", "layernorm_one_hidden", 1, "fc_net_loss",
         fc_loss(4, 6, [10], 3, "layernorm", 0.0), tol=rel_net, show=FC_SHOW),
    Case("ThreeLayerConvNet", "init", 1, "three_layer_conv_net_init", three_layer_init,
         tol=INIT_TOL, summary=init_summary, show=("input_dim", "num_filters", "filter_size", "hidden_dim")),
    Case("ThreeLayerConvNet", "loss_and_grads", 2, "three_layer_conv_net_loss",
         three_layer_loss(2, 3, 6, 4, 3, 3, 10, 5, 0.05), tol=rel_net,
         show=("X", "filter_size", "reg")),
]


# --------------------------------------------------------------------------------------------
# Architectures on paper (cs231n.arch)
# --------------------------------------------------------------------------------------------
def fixed(**values: Any) -> Make:
    return lambda rng: {k: (np.array(v) if isinstance(v, tuple) else v) for k, v in values.items()}


ARCH_CASES = [
    Case("conv_output_shape", "stride2_pad1", 0.5, "conv_output_shape",
         fixed(in_shape=(35, 27, 3), filters=16, size=3, stride=2, pad=1), tol=0),
    Case("conv_output_shape", "does_not_fit", 0.5, "arch_shape_error",
         fixed(layer="conv", in_shape=(7, 7, 3), filters=4, size=3, stride=3, pad=0), tol=0),
    Case("pool_output_shape", "3x3_stride2", 0.5, "pool_output_shape",
         fixed(in_shape=(13, 15, 20), size=3, stride=2), tol=0),
    Case("pool_output_shape", "does_not_fit", 0.5, "arch_shape_error",
         fixed(layer="pool", in_shape=(8, 8, 4), size=3, stride=2), tol=0),
    Case("same_pad", "odd_sizes", 0.5, "same_pad", fixed(sizes=(1, 3, 5, 7, 9, 11)), tol=0),
    Case("same_pad", "even_size_refused", 0.5, "arch_shape_error", fixed(layer="same_pad", size=4), tol=0),
    Case("conv_param_count", "5x5x3_filters", 0.5, "conv_param_count",
         fixed(in_shape=(32, 32, 3), filters=10, size=5), tol=0),
    Case("conv_param_count", "1x1_filters", 0.5, "conv_param_count",
         fixed(in_shape=(14, 14, 64), filters=17, size=1), tol=0),
    Case("fc_param_count", "from_volume", 0.5, "fc_param_count",
         fixed(in_shape=(6, 6, 256), units=4096), tol=0),
    Case("fc_param_count", "from_vector", 0.5, "fc_param_count",
         fixed(in_shape=(4096,), units=10), tol=0),
    Case("receptive_field", "five_3x3", 0.5, "receptive_field",
         fixed(layers=np.array([[3, 1]] * 5)), tol=0),
    Case("receptive_field", "alexnet_to_pool5", 0.5, "receptive_field",
         fixed(layers=np.array([[11, 4], [3, 2], [5, 1], [3, 2], [3, 1], [3, 1], [3, 1], [3, 2]])), tol=0),
    Case("receptive_field", "strided_mix", 0.5, "receptive_field",
         fixed(layers=np.array([[2, 2], [3, 3], [1, 1], [4, 2]])), tol=0),
    Case("conv_macs", "vgg_conv", 0.5, "conv_macs",
         fixed(in_shape=(56, 56, 128), filters=256, size=3, stride=1, pad=1), tol=0),
    Case("conv_macs", "strided_nonsquare", 0.5, "conv_macs",
         fixed(in_shape=(31, 23, 5), filters=7, size=5, stride=2, pad=1), tol=0),
]

CASES = LAYER_CASES + RESIDUAL_CASES + RESNET_CASES + OPTIM_CASES + CLASSIFIER_CASES + ARCH_CASES


# --------------------------------------------------------------------------------------------
# Re-checks of notebook cells that check notebook state (a trained model, a case study's table):
# named by the cells' metadata.cs231n.recheck; no points of their own (hidden.case.Recheck)
# --------------------------------------------------------------------------------------------
def digits(rng: Generator, n_train: int, n_val: int, n_test: int) -> Inputs:
    """scikit-learn's 8x8 digits as rows of 64 values in [0, 1], centred on the training mean,
    split at random: train and val are sent to the worker, test (held.*) stays with the grader."""
    from sklearn.datasets import load_digits

    loaded = load_digits()
    X = (loaded.images / 16.0).astype(np.float32)
    X = X.reshape(len(X), -1)
    order = rng.permutation(len(X))
    parts = np.split(order, np.cumsum([n_train, n_val, n_test]))[:3]
    mean = X[parts[0]].mean(axis=0)
    return {"X_train": X[parts[0]] - mean, "y_train": loaded.target[parts[0]],
            "X_val": X[parts[1]] - mean, "y_val": loaded.target[parts[1]],
            "held.X": X[parts[2]] - mean, "held.y": loaded.target[parts[2]]}


def training(data: Make, **settings: Any) -> Make:
    def make(rng: Generator) -> Inputs:
        return {**data(rng), "update_rule": "sgd", "reg": 0.0, "seed": 0, **settings}
    return make


def reference_model(inputs: Arrays) -> TwoLayerNet | FullyConnectedNet:
    """The reference's model of a training re-check, built from the same settings (grader side)."""
    from cs231n.classifiers import FullyConnectedNet, TwoLayerNet

    if "hidden_dims" in inputs:
        return FullyConnectedNet([int(h) for h in inputs["hidden_dims"]],
                                 input_dim=int(inputs["input_dim"]),
                                 num_classes=int(inputs["num_classes"]), seed=0)
    return TwoLayerNet(input_dim=int(inputs["input_dim"]), hidden_dim=int(inputs["hidden_dim"]),
                       num_classes=int(inputs["num_classes"]), seed=0)


def accuracy_at_least(threshold: float, what: str) -> Verdict:
    """A verdict: the returned parameters, put into the reference's model, classify the held-out
    inputs held.X with at least `threshold` accuracy. The arrays come from the student's process:
    every name, shape and value is checked before use."""
    def verdict(inputs: Arrays, outputs: Arrays) -> tuple[bool, str]:
        model = reference_model(inputs)
        want = {f"param.{k}": v for k, v in model.params.items()}
        if set(outputs) != set(want):
            missing, extra = sorted(set(want) - set(outputs)), sorted(set(outputs) - set(want))
            return False, (f"the trained model's parameters are not those of the task: "
                           f"missing {[k[6:] for k in missing][:6]}, unexpected {[k[6:] for k in extra][:6]}")
        for key, ref in want.items():
            got = outputs[key]
            if got.dtype.kind != "f" or got.shape != ref.shape or not np.all(np.isfinite(got)):
                return False, (f"the trained {key[6:]} has shape {got.shape} and dtype {got.dtype} "
                               f"(expected {ref.shape}, finite floats)")
            model.params[key[6:]] = got.astype(ref.dtype)
        X, y = inputs["held.X"], inputs["held.y"]
        accuracy = float(np.mean(np.argmax(model.loss(X.astype(np.float64)), axis=1) == y))
        message = f"{what}: accuracy {accuracy:.2f} on {len(y)} images, needs at least {threshold:.2f}"
        return accuracy >= threshold, message
    return verdict


def network_rows(network: Network) -> Inputs:
    """A cs231n.arch.Network of the reference as network_table's inputs."""
    from cs231n import arch

    rows = []
    for layer in network.layers:
        if isinstance(layer, arch.Conv):
            rows.append((0, layer.filters, layer.size, layer.stride, layer.pad))
        elif isinstance(layer, arch.Pool):
            rows.append((1, layer.size, layer.stride, 0, 0))
        elif isinstance(layer, arch.Norm):
            rows.append((2, 0, 0, 0, 0))
        else:
            rows.append((3, layer.units, 0, 0, 0))
    return {"in_shape": np.array(network.input_shape), "layers": np.array(rows, dtype=np.int64)}


def case_study(name: str) -> Make:
    def make(rng: Generator) -> Inputs:
        from cs231n import arch

        return network_rows(getattr(arch, name))
    return make


FC_DIGITS = {"input_dim": 64, "num_classes": 10}


def thousand_digits(rng: Generator) -> Inputs:
    return digits(rng, 1000, 200, 297)


RECHECKS = [
    Recheck.named("two_layer_net_digits", "two_layer_net_train",
                  training(thousand_digits, **FC_DIGITS, hidden_dim=50, weight_scale=0.1,
                           learning_rate=0.3, num_epochs=10, batch_size=50),
                  verdict=accuracy_at_least(0.85, "TwoLayerNet trained on 1000 digits"),
                  seconds=20),
    Recheck.named("fc_net_digits", "fc_net_train",
                  training(thousand_digits, **FC_DIGITS, hidden_dims=np.array([100, 50]),
                           weight_scale=0.1, learning_rate=0.3, num_epochs=10, batch_size=50),
                  verdict=accuracy_at_least(0.9, "FullyConnectedNet trained on 1000 digits"),
                  seconds=20),
    Recheck.named("alexnet_table", "network_table", case_study("ALEXNET"), tol=0, seconds=10),
    Recheck.named("vgg16_table", "network_table", case_study("VGG16"), tol=0, seconds=10),
]
