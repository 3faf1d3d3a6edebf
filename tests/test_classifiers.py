"""The classifiers: initial loss about log(10), gradients against numerical ones, overfitting
a small set with the Solver, and clear errors for bad configurations."""
import numpy as np
import pytest

from cs231n.classifiers import ConvNet, FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from cs231n.solver import Solver
from helpers import check_scalar_grad

m = pytest.mark


def _images(rng, n, shape=(3, 8, 8)):
    return rng.standard_normal((n, *shape)), rng.integers(0, 10, n)


def _small_models():
    """Small float64 instances of every classifier, weights large enough to stay off the kinks."""
    return [
        pytest.param(lambda: TwoLayerNet(192, 7, weight_scale=0.1, reg=0.3, seed=0), id="TwoLayerNet",
                     marks=m.TwoLayerNet),
        pytest.param(lambda: FullyConnectedNet([6, 5], 192, weight_scale=0.1, reg=0.3, dtype=np.float64,
                                               seed=0), id="FullyConnectedNet", marks=m.FullyConnectedNet),
        pytest.param(lambda: FullyConnectedNet([6, 5], 192, weight_scale=0.1, normalization="batchnorm",
                                               reg=0.3, dtype=np.float64, seed=0),
                     id="FullyConnectedNet-batchnorm", marks=m.FullyConnectedNet),
        # wide enough that dropout and relu never zero a whole row, where layernorm sits on a kink
        pytest.param(lambda: FullyConnectedNet([12, 10], 192, weight_scale=0.1, normalization="layernorm",
                                               dropout_keep_ratio=0.7, reg=0.3, dtype=np.float64, seed=0),
                     id="FullyConnectedNet-layernorm-dropout", marks=m.FullyConnectedNet),
        pytest.param(lambda: ThreeLayerConvNet((3, 8, 8), 3, 3, 7, weight_scale=0.1, reg=0.3,
                                               dtype=np.float64, seed=0),
                     id="ThreeLayerConvNet", marks=m.ThreeLayerConvNet),
        pytest.param(lambda: ConvNet((3, 8, 8), [[4, 4], [5]], hidden_dims=[6], reg=0.3,
                                     dtype=np.float64, seed=0), id="ConvNet"),
        pytest.param(lambda: ConvNet((3, 8, 8), [[4], [5]], pool=[True, False], hidden_dims=[],
                                     normalization="batchnorm", reg=0.3, dtype=np.float64, seed=0),
                     id="ConvNet-batchnorm"),
    ]


@pytest.mark.parametrize("make", _small_models())
def test_gradients_match_numerical(make):
    model = make()
    X, y = _images(np.random.default_rng(1), 3)
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    check_scalar_grad(type(model).__name__, lambda: model.loss(X, y)[0], model.params, grads,
                      tol=1e-5, atol=1e-7)


@pytest.mark.parametrize("make", [
    pytest.param(lambda: TwoLayerNet(192, 50, seed=0), marks=m.TwoLayerNet, id="TwoLayerNet"),
    pytest.param(lambda: FullyConnectedNet([50, 50], 192, weight_scale=1e-3, seed=0),
                 marks=m.FullyConnectedNet, id="FullyConnectedNet"),
    pytest.param(lambda: ThreeLayerConvNet((3, 8, 8), 8, 3, 20, seed=0),
                 marks=m.ThreeLayerConvNet, id="ThreeLayerConvNet"),
    pytest.param(lambda: ConvNet((3, 8, 8), [[8]], hidden_dims=[20], weight_scale=1e-3, seed=0),
                 id="ConvNet"),
])
def test_initial_loss_is_about_log_of_classes(make):
    """With small weights the scores are about equal, so the softmax loss is about log(10)."""
    X, y = _images(np.random.default_rng(2), 40)
    loss, _ = make().loss(X, y)
    assert abs(loss - np.log(10)) < 0.05, f"initial loss {loss:.4f}, expected about log(10) = 2.3026"


@pytest.mark.parametrize("make, rule, lr", [
    pytest.param(lambda: TwoLayerNet(192, 100, weight_scale=1e-2, seed=0), "adam", 3e-3,
                 marks=m.TwoLayerNet, id="TwoLayerNet"),
    pytest.param(lambda: FullyConnectedNet([100, 100], 192, weight_scale=5e-2, seed=0), "sgd_momentum", 5e-2,
                 marks=m.FullyConnectedNet, id="FullyConnectedNet"),
    pytest.param(lambda: ThreeLayerConvNet((3, 8, 8), 16, 3, 100, weight_scale=1e-1, seed=0), "adam", 3e-3,
                 marks=m.ThreeLayerConvNet, id="ThreeLayerConvNet"),
    pytest.param(lambda: ConvNet((3, 8, 8), [[16]], hidden_dims=[50], normalization="batchnorm",
                                 seed=0), "adam", 1e-2, id="ConvNet"),
])
def test_solver_overfits_fifty_examples(make, rule, lr):
    rng = np.random.default_rng(3)
    X, y = _images(rng, 50)
    model = make()
    # validate on the training set itself, so that the best parameters restored are the fittest
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y},
                    update_rule=rule, optim_config={"learning_rate": lr}, num_epochs=25,
                    batch_size=25, verbose=False, seed=0)
    solver.train()
    assert solver.check_accuracy(X, y) == 1.0, (
        f"{type(model).__name__} reached {solver.check_accuracy(X, y):.0%} training accuracy on "
        f"50 examples; a correct model overfits them completely")
    assert solver.loss_history[-1] < solver.loss_history[0] / 5


@m.FullyConnectedNet
def test_fc_net_test_mode_is_deterministic_with_dropout():
    model = FullyConnectedNet([20], 192, dropout_keep_ratio=0.5)
    X, _ = _images(np.random.default_rng(4), 5)
    assert np.array_equal(model.loss(X), model.loss(X))


@m.ThreeLayerConvNet
def test_three_layer_convnet_shapes():
    model = ThreeLayerConvNet(num_filters=32, filter_size=7, hidden_dim=100, seed=0)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (32, 3, 7, 7), "b1": (32,), "W2": (32 * 16 * 16, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert model.loss(np.zeros((2, 3, 32, 32), dtype=np.float32)).shape == (2, 10)


def test_convnet_describes_itself_in_the_lecture_pattern():
    model = ConvNet((3, 32, 32), [[32, 32], [64]], pool=[True, False], hidden_dims=[128])
    assert repr(model) == "ConvNet(CONV3-32-RELU CONV3-32-RELU POOL CONV3-64-RELU FC-128-RELU FC-10 SOFTMAX)"


@pytest.mark.parametrize("make, fragment", [
    (lambda: FullyConnectedNet([5], 10, normalization="groupnorm"), "normalization must be one of"),
    (lambda: FullyConnectedNet([5], 10, dropout_keep_ratio=0), "KEEPING"),
    (lambda: ThreeLayerConvNet(filter_size=4), "filter_size must be odd"),
    (lambda: ThreeLayerConvNet(input_dim=(3, 7, 7)), "even height and width"),
    (lambda: ConvNet((3, 6, 6), [[4], [4], [4]]), "a 2x2 pool needs an even size, got 3x3"),
    (lambda: ConvNet((3, 8, 8), [[4], [4]], pool=[True]), "2 blocks, 1 pool flags"),
])
def test_bad_configurations_are_clear_errors(make, fragment):
    with pytest.raises(ValueError) as info:
        make()
    assert fragment in str(info.value)
