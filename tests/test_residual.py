"""The residual block of cs231n.layer_utils against numerical gradients on random shapes (batch
1, one channel, stride 1 and 2, identity and projection shortcuts) and against values stored from
the instructor's solution, and the ResNet classifier built from it.

Each test carries the mark of the student task it checks: `pytest -m residual_block_forward`.
"""
import numpy as np
import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from cs231n.classifiers import ResNet
from cs231n.classifiers.resnet import global_average_pool_backward, global_average_pool_forward
from cs231n.layer_utils import conv_forward, residual_block_backward, residual_block_forward
from cs231n.layers import spatial_batchnorm_forward
from cs231n.solver import Solver
from cs231n.stored import stored_case, stored_params
from helpers import assert_close, check_backward, check_scalar_grad

m = pytest.mark


def block_case(rng, N, C, F, H, W, stride, projection=None):
    """x, params and bn_params of one block; projection defaults to 'whenever the shape changes'."""
    if projection is None:
        projection = stride != 1 or C != F
    x = 1 + 2 * rng.standard_normal((N, C, H, W))

    def filters(shape):  # at least 0.25 from 0: a one-channel 1x1 filter of 0.0002 before
        z = rng.standard_normal(shape)  # batchnorm is a near-singular scale, whose numerical
        return np.sign(z) * (0.25 + np.abs(z))  # gradient at h = 1e-5 misses the tolerance

    params = {"W1": filters((F, C, 3, 3)), "b1": rng.standard_normal(F),
              "gamma1": 1 + 0.3 * rng.standard_normal(F), "beta1": rng.standard_normal(F),
              "W2": filters((F, F, 3, 3)), "b2": rng.standard_normal(F),
              "gamma2": 1 + 0.3 * rng.standard_normal(F), "beta2": rng.standard_normal(F)}
    if projection:
        params.update({"Wp": filters((F, C, 1, 1)), "bp": rng.standard_normal(F),
                       "gammap": 1 + 0.3 * rng.standard_normal(F), "betap": rng.standard_normal(F)})
    return x, params, [{"mode": "train"} for _ in range(2 + projection)]


@st.composite
def blocks(draw):
    """Batch 1-3, channels 1-3, filters 1-3, stride 1-2, odd or even sizes that fit the stride."""
    stride = draw(st.integers(1, 2))
    N, C, F = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # a stride-2 3x3 conv with pad 1 tiles the input only when its size is odd
    sizes = st.sampled_from([3, 5]) if stride == 2 else st.integers(2, 4)
    H, W = draw(sizes), draw(sizes)
    projection = stride != 1 or C != F or draw(st.booleans())  # a projection is allowed anyway
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return block_case(rng, N, C, F, H, W, stride, projection), stride, rng


def relu_inputs(x, p, stride):
    """The block's two ReLU inputs (the first batchnorm's output; main path + shortcut), from the
    package's conv (cs231n.layer_utils) and spatial batchnorm: only to notice a numerical
    gradient's step crossing a ReLU's kink."""
    def conv_bn(a, k, pad, step):
        out = conv_forward(a, p["W" + k], p["b" + k], {"stride": step, "pad": pad})[0]
        return spatial_batchnorm_forward(out, p["gamma" + k], p["beta" + k], {"mode": "train"})[0]

    first = conv_bn(x, "1", 1, stride)
    main = conv_bn(np.maximum(first, 0), "2", 1, 1)
    return first, main + (conv_bn(x, "p", 0, stride) if "Wp" in p else x)


@m.residual_block_forward
@pytest.mark.parametrize("name", ["residual_block_forward/identity", "residual_block_forward/projection_stride2"])
def test_residual_block_forward_matches_the_stored_values(name):
    """Fixed inputs, and the outputs the instructor's solution gave for them (cs231n.stored)."""
    case = stored_case(name)
    params = stored_params(case)
    bn_params = [{"mode": "train"} for _ in range(2 + ("Wp" in params))]
    out, _ = residual_block_forward(case["x"], params, bn_params, case["stride"])
    assert_close(f"residual_block_forward, stored case {name}", out, case["out"], 1e-8, 1e-10)


@m.residual_block_forward
def test_identity_block_with_zero_main_path_is_relu_of_its_input(rng):
    """gamma2 = beta2 = 0 silences the main path: the block is relu(x), the paper's argument that
    a deeper residual net can always do at least as well as a shallower one."""
    x, params, bn_params = block_case(rng, 2, 3, 3, 4, 4, 1)
    params["gamma2"][:] = 0
    params["beta2"][:] = 0
    out, _ = residual_block_forward(x, params, bn_params, 1)
    assert_close("identity block with a silent main path", out, np.maximum(x, 0), 1e-12, 1e-14)


@m.residual_block_forward
def test_residual_block_updates_every_running_average(rng):
    x, params, bn_params = block_case(rng, 2, 2, 3, 5, 5, 2)
    residual_block_forward(x, params, bn_params, 2)
    for i, bn in enumerate(bn_params):
        assert "running_mean" in bn and np.any(bn["running_mean"] != 0), (
            f"bn_params[{i}] was not used: each batchnorm of the block must update its own bn_param")


def _grad_check(x, params, bn_params, stride, rng):
    out, cache = residual_block_forward(x, params, bn_params, stride)
    dout = rng.standard_normal(out.shape)
    dx, grads = residual_block_backward(dout, cache)
    assert set(grads) == set(params), f"grads has keys {sorted(grads)}, params {sorted(params)}"
    names = ["x", *params]
    signs = [np.sign(a) for a in relu_inputs(x, params, stride)]
    crossed = []  # whether a step of the numerical gradient moved a ReLU input across 0

    def forward(*values):
        p = dict(zip(names[1:], values[1:]))
        crossed.append(any(np.any(np.sign(a) != s) for a, s in zip(relu_inputs(values[0], p, stride), signs)))
        return residual_block_forward(values[0], p, [{"mode": "train"} for _ in bn_params], stride)[0]

    try:
        check_backward(f"residual_block_backward x {x.shape} stride {stride} "
                       f"{'projection' if 'Wp' in params else 'identity'}",
                       forward, [x, *params.values()], [dx, *(grads[k] for k in params)], dout,
                       1e-5, 1e-6)  # a bias or a one-channel filter before batchnorm has gradient 0
    except AssertionError:
        if any(crossed):  # at a kink the numerical gradient is wrong, not the backward: draw another case
            reject()
        raise


@m.residual_block_backward
@given(case=blocks())
def test_residual_block_backward_numerically(case):
    (x, params, bn_params), stride, rng = case
    _grad_check(x, params, bn_params, stride, rng)


@m.residual_block_backward
@pytest.mark.parametrize("N, C, F, H, stride", [
    (1, 1, 1, 3, 1),  # batch 1, one channel, identity
    (1, 1, 2, 3, 2),  # batch 1, one channel, stride 2 projection
    (2, 3, 3, 4, 1),  # identity on an even size
    (2, 2, 3, 4, 1),  # projection for the channels only
])
def test_residual_block_backward_on_the_edge_cases(N, C, F, H, stride):
    rng = np.random.default_rng(N * 1000 + C * 100 + F * 10 + stride)
    _grad_check(*block_case(rng, N, C, F, H, H, stride), stride, rng)


@pytest.mark.parametrize("C, F, stride, fragment", [
    (2, 3, 1, "cannot be added"),
    (3, 3, 2, "cannot be added"),
])
def test_a_shape_change_without_projection_is_a_clear_error(C, F, stride, fragment):
    rng = np.random.default_rng(0)
    x, params, _ = block_case(rng, 1, C, F, 5, 5, stride, projection=False)
    with pytest.raises(ValueError, match=fragment):
        residual_block_forward(x, params, [{"mode": "train"}] * 2, stride)


def test_wrong_number_of_bn_params_is_a_clear_error():
    x, params, _ = block_case(np.random.default_rng(0), 1, 2, 2, 3, 3, 1)
    with pytest.raises(ValueError, match="bn_params must hold 2"):
        residual_block_forward(x, params, [{"mode": "train"}] * 3, 1)


# --------------------------------------------------------------------------------------------
# Global average pooling and the ResNet classifier (the student's, standing on the student's
# residual block; its sizes come from the student's conv_output_shape)
# --------------------------------------------------------------------------------------------
@m.global_average_pool_forward
def test_global_average_pool_forward_on_a_hand_example():
    x = np.arange(16, dtype=float).reshape(2, 2, 2, 2)  # maps [[0, 1], [2, 3]], [[4, 5], [6, 7]], ...
    out, _ = global_average_pool_forward(x)
    assert out.shape == (2, 2) and np.array_equal(out, [[1.5, 5.5], [9.5, 13.5]])


@m.global_average_pool_forward
@m.global_average_pool_backward
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 1, 1), (3, 1, 2, 7)])
def test_global_average_pool_backward_numerically(shape):
    rng = np.random.default_rng(sum(shape))
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape[:2])
    _, cache = global_average_pool_forward(x)
    check_backward(f"global_average_pool_backward x {shape}", lambda z: global_average_pool_forward(z)[0],
                   [x], [global_average_pool_backward(dout, cache)], dout)


GAP_MARKS = [m.ResNet, m.global_average_pool_forward, m.global_average_pool_backward, m.conv_output_shape]
BLOCK_MARKS = [*GAP_MARKS, m.residual_block_forward, m.residual_block_backward]
# the plain twin stands on the student's spatial batchnorm
PLAIN_MARKS = [*GAP_MARKS, m.spatial_batchnorm_forward, m.spatial_batchnorm_backward]


@pytest.mark.parametrize("input_dim, residual", [
    pytest.param((3, 8, 8), True, marks=BLOCK_MARKS, id="resnet-even-size"),
    pytest.param((2, 7, 5), True, marks=BLOCK_MARKS, id="resnet-odd-size"),
    pytest.param((3, 8, 8), False, marks=PLAIN_MARKS, id="plain"),
])
def test_resnet_gradients_match_numerical(input_dim, residual):
    rng = np.random.default_rng(5)
    model = ResNet(input_dim, stage_filters=(3, 4), blocks_per_stage=1, residual=residual,
                   reg=0.1, dtype=np.float64, seed=0)
    X, y = rng.standard_normal((3, *input_dim)), rng.integers(0, 10, 3)
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    check_scalar_grad(repr(model), lambda: model.loss(X, y)[0], model.params, grads, 1e-5, 1e-7)


@m.ResNet
@m.global_average_pool_forward
@m.conv_output_shape
@m.residual_block_forward
@m.residual_block_backward
def test_resnet_initial_loss_is_about_log_of_classes():
    """Batchnorm makes the initial scores' scale independent of the weights' scale, so the check
    uses a model whose last layer starts near zero, as the lecture's sanity check asks."""
    rng = np.random.default_rng(3)
    model = ResNet((3, 8, 8), stage_filters=(8, 16), seed=0)
    model.params["fc_W"] *= 1e-3
    X, y = rng.standard_normal((40, 3, 8, 8)), rng.integers(0, 10, 40)
    loss, _ = model.loss(X, y)
    assert abs(loss - np.log(10)) < 0.05, f"initial loss {loss:.4f}, expected about log(10) = 2.3026"


@m.ResNet
@m.global_average_pool_forward
@m.global_average_pool_backward
@m.conv_output_shape
@m.residual_block_forward
@m.residual_block_backward
def test_resnet_overfits_fifty_examples():
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((50, 3, 8, 8)), rng.integers(0, 10, 50)
    model = ResNet((3, 8, 8), stage_filters=(8, 16), blocks_per_stage=1, seed=0)
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    update_rule="adam", optim_config={"learning_rate": 1e-2}, num_epochs=25,
                    batch_size=25, verbose=False, seed=0)
    solver.train()
    assert solver.check_accuracy(X, y) == 1.0, (
        f"ResNet reached {solver.check_accuracy(X, y):.0%} training accuracy on 50 examples")
    assert solver.loss_history[-1] < solver.loss_history[0] / 5


@m.conv_output_shape  # the ResNet's sizes come from the student's conv_output_shape
def test_resnet_layout_and_errors():
    model = ResNet((3, 32, 32), stage_filters=(16, 32, 64), blocks_per_stage=2)
    assert model.output_size == (64, 9, 9)  # 32 -> 33 by the 2x2 stem, then 33 -> 17 -> 9
    assert sum(k.endswith("_Wp") for k in model.params) == 2  # one per stride-2 stage
    assert repr(model).startswith("ResNet(14 weight layers")
    plain = ResNet((3, 32, 32), stage_filters=(16, 32, 64), blocks_per_stage=2, residual=False)
    assert not any(k.endswith("_Wp") for k in plain.params)
    with pytest.raises(ValueError, match=r"\(16 \+ 2\*1 - 3\) / 2 \+ 1 = 8.50"):
        ResNet((3, 31, 31), stage_filters=(4, 4, 4))  # 31 -> 16 is even, so 16 -> ? does not fit
