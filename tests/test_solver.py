"""Solver: training, lr decay, best-parameter restore, checkpoints, errors, reproducibility.

The models are written here (a small two-layer net and a scripted model whose accuracy and loss
follow a table), so these tests do not depend on cs231n.layers or cs231n.classifiers.
"""
import pickle

import numpy as np
import pytest

from cs231n import optim, solver as solver_module
from cs231n.solver import Solver

NUM_CLASSES = 5


class TwoLayerNet:
    """affine - relu - affine - softmax, in plain numpy, with float `dtype` parameters."""

    def __init__(self, input_dim, hidden_dim=64, num_classes=NUM_CLASSES, seed=0,
                 dtype=np.float64):
        gen = np.random.default_rng(seed)
        self.params = {
            "W1": (gen.standard_normal((input_dim, hidden_dim)) / np.sqrt(input_dim)).astype(dtype),
            "b1": np.zeros(hidden_dim, dtype),
            "W2": (gen.standard_normal((hidden_dim, num_classes)) / np.sqrt(hidden_dim)).astype(dtype),
            "b2": np.zeros(num_classes, dtype),
        }

    def loss(self, X, y=None):
        p = self.params
        h = np.maximum(0, X @ p["W1"] + p["b1"])
        scores = h @ p["W2"] + p["b2"]
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = len(X)
        loss = -log_probs[np.arange(n), y].mean()
        dscores = np.exp(log_probs)
        dscores[np.arange(n), y] -= 1
        dscores /= n
        dh = (dscores @ p["W2"].T) * (h > 0)
        grads = {"W2": h.T @ dscores, "b2": dscores.sum(0), "W1": X.T @ dh, "b1": dh.sum(0)}
        return loss, {k: g.astype(p[k].dtype) for k, g in grads.items()}


class ScriptedModel:
    """One parameter 'w', a step counter; accuracy and loss are read from tables indexed by w.

    The label of each example is stored in its first feature, so the model can score exactly
    the fraction ACCURACY[w] of any set correctly. Train it with `count_up`, which adds 1 to w.
    """

    def __init__(self, accuracy, losses=None):
        self.params = {"w": np.zeros(1)}
        self.accuracy, self.losses = accuracy, losses

    def _w(self):
        return int(self.params["w"][0])

    def loss(self, X, y=None):
        if y is None:
            labels = X[:, 0].astype(int)
            right = int(round(self.accuracy[self._w()] * len(X)))
            predicted = np.where(np.arange(len(X)) < right, labels, (labels + 1) % NUM_CLASSES)
            return np.eye(NUM_CLASSES)[predicted]
        loss = self.losses[self._w()] if self.losses is not None else 1.0
        return loss, {"w": np.zeros(1)}


def count_up(w, dw, config=None):
    """An update rule that ignores the gradient and adds 1."""
    config = {} if config is None else config
    return w + 1, config


def labelled_data(n_train, n_val=None, dim=10, seed=0):
    """Random features with random labels in [0, NUM_CLASSES); the label is also feature 0."""
    gen = np.random.default_rng(seed)
    data = {}
    for split, n in (("train", n_train), ("val", n_val or n_train)):
        y = gen.integers(NUM_CLASSES, size=n)
        X = gen.standard_normal((n, dim))
        X[:, 0] = y
        data[f"X_{split}"], data[f"y_{split}"] = X, y
    return data


@pytest.fixture
def small_data():
    """50 training examples; validation is the same 50, so the best params fit them too."""
    data = labelled_data(50, seed=1)
    data["X_train"][:, 0] = 0  # keep the label out of the features the net sees
    data["X_val"], data["y_val"] = data["X_train"], data["y_train"]
    return data


def quiet(model, data, **kwargs):
    return Solver(model, data, verbose=False, **kwargs)


@pytest.mark.parametrize("rule, lr", [pytest.param("sgd_momentum", 5e-2, marks=pytest.mark.sgd_momentum),
                                      pytest.param("adam", 1e-2, marks=pytest.mark.adam)])
def test_overfits_fifty_examples(small_data, rule, lr):
    model = TwoLayerNet(10)
    solver = quiet(model, small_data, update_rule=rule, optim_config={"learning_rate": lr},
                   batch_size=25, num_epochs=100, seed=0)
    solver.train()
    assert len(solver.loss_history) == 200  # 2 iterations per epoch
    assert solver.train_acc_history[-1] == 1.0, solver.train_acc_history[-10:]
    assert np.mean(solver.loss_history[-10:]) < 0.2 * np.mean(solver.loss_history[:10])
    assert solver.best_val_acc == 1.0
    assert solver.check_accuracy(small_data["X_train"], small_data["y_train"]) == 1.0


@pytest.mark.adam  # trains with this student rule
def test_float32_model_trains_and_stays_float32(small_data):
    model = TwoLayerNet(10, dtype=np.float32)
    data = {k: v.astype(np.float32) if k.startswith("X") else v for k, v in small_data.items()}
    solver = quiet(model, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                   batch_size=25, num_epochs=20, seed=0)
    solver.train()
    assert solver.loss_history[-1] < solver.loss_history[0]
    assert all(w.dtype == np.float32 for w in model.params.values())


def test_histories_have_one_entry_per_iteration_and_per_epoch():
    data = labelled_data(30, n_val=12)
    solver = quiet(TwoLayerNet(10), data, batch_size=7, num_epochs=3, seed=0)
    solver.train()
    assert len(solver.loss_history) == 3 * (30 // 7)
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4  # before + 3 epochs
    assert solver.epoch == 3
    solver.train()  # goes on for num_epochs more
    assert solver.epoch == 6 and len(solver.val_acc_history) == 7


def test_lr_decay_is_applied_after_each_epoch():
    seen = []

    def recording_sgd(w, dw, config):
        seen.append(config["learning_rate"])
        return optim.sgd(w, dw, config)

    data = labelled_data(20)
    user_config = {"learning_rate": 0.1}
    model = TwoLayerNet(10, hidden_dim=4)
    solver = quiet(model, data, update_rule=recording_sgd, optim_config=user_config,
                   lr_decay=0.5, batch_size=10, num_epochs=3)
    solver.train()
    per_step = [0.1] * 2 + [0.05] * 2 + [0.025] * 2  # 2 iterations per epoch
    assert seen == pytest.approx([lr for lr in per_step for _ in model.params])
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(0.1 * 0.5 ** 3)
    assert user_config == {"learning_rate": 0.1}, "the caller's optim_config must not change"


@pytest.mark.adam  # trains with this student rule
def test_each_parameter_gets_its_own_config_and_state(small_data):
    model = TwoLayerNet(10)
    solver = quiet(model, small_data, update_rule="adam", batch_size=25, num_epochs=1,
                   optim_config={"learning_rate": 1e-3})
    solver.train()
    assert set(solver.optim_configs) == set(model.params)
    assert len({id(c) for c in solver.optim_configs.values()}) == len(model.params)
    for name, config in solver.optim_configs.items():
        assert config["m"].shape == model.params[name].shape and config["t"] == 2


def test_best_validation_params_are_restored():
    accuracy = [0.2, 0.4, 1.0, 0.6, 0.0]  # val (and train) accuracy after epoch 0..4
    model = ScriptedModel(accuracy)
    data = labelled_data(10)
    solver = quiet(model, data, update_rule=count_up, batch_size=10, num_epochs=4)
    solver.train()
    assert solver.val_acc_history == accuracy
    assert solver.best_val_acc == 1.0
    assert solver.best_params["w"][0] == 2
    assert model.params["w"][0] == 2, "model.params should hold the best epoch's parameters"
    model.params["w"] += 1
    assert solver.best_params["w"][0] == 2, "best_params must be a copy"


@pytest.mark.sgd_momentum  # trains with this student rule
def test_checkpoints_are_written_atomically_and_load(tmp_path):
    data = labelled_data(20, n_val=8)
    model = TwoLayerNet(10, hidden_dim=8)
    name = tmp_path / "net"
    solver = quiet(model, data, update_rule="sgd_momentum", optim_config={"learning_rate": 0.01},
                   lr_decay=0.9, batch_size=10, num_epochs=2, checkpoint_name=str(name),
                   num_train_samples=15)
    solver.train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net_epoch_1.pkl", "net_epoch_2.pkl"]
    with open(tmp_path / "net_epoch_2.pkl", "rb") as f:
        checkpoint = pickle.load(f)
    assert checkpoint["epoch"] == 2 and checkpoint["update_rule"] == "sgd_momentum"
    assert checkpoint["lr_decay"] == 0.9 and checkpoint["batch_size"] == 10
    assert checkpoint["optim_config"] == {"learning_rate": 0.01}
    assert checkpoint["num_train_samples"] == 15 and checkpoint["num_val_samples"] is None
    assert checkpoint["loss_history"] == solver.loss_history
    assert checkpoint["val_acc_history"] == solver.val_acc_history
    assert checkpoint["train_acc_history"] == solver.train_acc_history
    assert set(checkpoint["model"].params) == set(model.params)
    scores = checkpoint["model"].loss(data["X_val"])
    assert scores.shape == (8, NUM_CLASSES)


def test_a_failed_checkpoint_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken_dump(obj, f):
        f.write(b"half a pickle")
        raise OSError("disk full")

    monkeypatch.setattr(solver_module.pickle, "dump", broken_dump)
    solver = quiet(TwoLayerNet(10, hidden_dim=4), labelled_data(10), batch_size=10,
                   num_epochs=1, checkpoint_name=str(tmp_path / "net"))
    with pytest.raises(OSError, match="disk full"):
        solver.train()
    assert list(tmp_path.iterdir()) == []


def test_callable_update_rule_gets_each_parameter_with_its_config(small_data):
    calls = []

    def sign_sgd(w, dw, config=None):
        config = {} if config is None else config
        config.setdefault("learning_rate", 1e-2)
        config["calls"] = config.get("calls", 0) + 1
        calls.append(w.shape)
        return w - config["learning_rate"] * np.sign(dw), config

    model = TwoLayerNet(10)
    solver = quiet(model, small_data, update_rule=sign_sgd, batch_size=25, num_epochs=10, seed=0)
    solver.train()
    assert len(calls) == 20 * len(model.params)
    assert all(c["calls"] == 20 for c in solver.optim_configs.values())
    assert np.mean(solver.loss_history[-5:]) < np.mean(solver.loss_history[:5])


def test_nan_loss_stops_training_with_a_clear_message():
    losses = [2.0, 1.5, 1.0, float("nan"), 0.5]
    model = ScriptedModel([0.5] * 5, losses)
    solver = quiet(model, labelled_data(10), update_rule=count_up, batch_size=5, num_epochs=3)
    with pytest.raises(FloatingPointError, match="loss became nan at iteration 4.*learning rate"):
        solver.train()
    assert solver.loss_history == [2.0, 1.5, 1.0]


def test_diverging_sgd_raises_rather_than_continuing(small_data):
    solver = quiet(TwoLayerNet(10), small_data, optim_config={"learning_rate": 1e8},
                   batch_size=25, num_epochs=20, seed=0)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="lower the learning"):
        solver.train()


@pytest.mark.adam  # trains with this student rule
def test_seed_makes_runs_reproducible(small_data):
    def losses(seed):
        solver = quiet(TwoLayerNet(10), small_data, update_rule="adam", batch_size=10,
                       num_epochs=2, seed=seed, num_train_samples=20)
        solver.train()
        return solver.loss_history, solver.train_acc_history

    assert losses(7) == losses(7)
    assert losses(7)[0] != losses(8)[0]


def test_check_accuracy_batches_and_subsamples():
    data = labelled_data(37)
    model = ScriptedModel([1.0])
    solver = quiet(model, data)
    assert solver.check_accuracy(data["X_train"], data["y_train"], batch_size=5) == 1.0
    model.accuracy = [0.5]
    assert solver.check_accuracy(data["X_train"], data["y_train"], num_samples=10) == 0.5
    with pytest.raises(ValueError, match="37 examples but y has 36"):
        solver.check_accuracy(data["X_train"], data["y_train"][:-1])


def test_verbose_prints_progress_and_quiet_prints_nothing(small_data, capsys):
    Solver(TwoLayerNet(10), small_data, batch_size=25, num_epochs=2, print_every=2).train()
    out = capsys.readouterr().out
    assert "(Iteration 1 / 4) loss:" in out and "(Iteration 3 / 4) loss:" in out
    assert "(Epoch 0 / 2) train acc:" in out and "(Epoch 2 / 2) train acc:" in out
    quiet(TwoLayerNet(10), small_data, batch_size=25, num_epochs=2).train()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("kwargs, message", [
    ({"learning_rate": 1e-3}, "learning_rate.*optim_config"),
    ({"update_rule": "adamw"}, "'adamw'.*adam"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"num_epochs": 2.5}, "num_epochs must be an integer >= 1"),
    ({"lr_decay": -0.5}, "lr_decay must be a number > 0"),
    ({"num_val_samples": 0}, "num_val_samples must be an integer >= 1 or None"),
])
def test_bad_options_are_value_errors_that_name_them(small_data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Solver(TwoLayerNet(10), small_data, **kwargs)


def test_bad_rule_type_and_bad_model_are_type_errors(small_data):
    with pytest.raises(TypeError, match="update_rule must be a name"):
        Solver(TwoLayerNet(10), small_data, update_rule=3)
    with pytest.raises(TypeError, match="optim_config must be a dict"):
        Solver(TwoLayerNet(10), small_data, optim_config=1e-3)
    with pytest.raises(TypeError, match="needs a dict `params`"):
        Solver(object(), small_data)


def test_bad_data_says_which_part(small_data):
    missing = {k: v for k, v in small_data.items() if k != "y_val"}
    with pytest.raises(ValueError, match="missing y_val"):
        Solver(TwoLayerNet(10), missing)
    short = dict(small_data, y_train=small_data["y_train"][:-1])
    with pytest.raises(ValueError, match="X_train has 50 examples but y_train"):
        Solver(TwoLayerNet(10), short)
    with pytest.raises(TypeError, match="data must be a dict"):
        Solver(TwoLayerNet(10), [1, 2, 3])


def test_gradients_must_match_params(small_data):
    class Forgetful(TwoLayerNet):
        def loss(self, X, y=None):
            out = super().loss(X, y)
            return out if y is None else (out[0], {k: g for k, g in out[1].items() if k != "b2"})

    with pytest.raises(ValueError, match="one gradient per parameter"):
        quiet(Forgetful(10), small_data, num_epochs=1).train()

