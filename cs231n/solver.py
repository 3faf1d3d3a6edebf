"""Solver: trains a classification model by minibatch gradient descent.

    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=100, print_every=100)
    solver.train()

A model is any object with
- `params`: dict name -> float ndarray, the parameters to train;
- `loss(X, y=None)`: with y None, the class scores, an array (N, C); otherwise (loss, grads),
  a float and a dict with one gradient per key of params, each shaped like its parameter.

`data` is a dict with 'X_train' (N_train, ...), 'y_train' (N_train,) int labels in [0, C),
'X_val' (N_val, ...), 'y_val' (N_val,). After `train()`, `model.params` holds the parameters
that scored best on the validation set, and the histories tell how training went.
"""
import copy
import numbers
import os
import pickle
import tempfile

import numpy as np
from tqdm.auto import tqdm

from cs231n import optim

_DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")


class Solver:
    """Minibatch training with an update rule from cs231n.optim, lr decay, history, checkpoints.

    Keyword arguments (all optional):
    - update_rule: name of a rule in cs231n.optim ('sgd', 'adam', ...) or a function
      next_w, config = rule(w, dw, config). Default 'sgd'.
    - optim_config: dict of hyperparameters for the rule, e.g. {'learning_rate': 1e-3}; each
      parameter gets its own copy, which also holds that parameter's state.
    - lr_decay: after each epoch, every config's 'learning_rate' is multiplied by this. Default 1.
    - batch_size: examples per step. Default 100.
    - num_epochs: passes over the training data per call of train(). Default 10.
    - num_train_samples: training examples used to measure training accuracy each epoch
      (a random subset; None for all). Default 1000.
    - num_val_samples: validation examples used each epoch; None (the default) for all.
    - checkpoint_name: if given, after each epoch the solver pickles a checkpoint to
      '{checkpoint_name}_epoch_{epoch}.pkl'. Default None.
    - print_every: print the loss every this many iterations when verbose. Default 10.
    - verbose: show a progress bar and print progress. Default True.
    - seed: seed of the generator that draws minibatches and accuracy subsets, so that a run
      can be repeated exactly. Default None (a fresh seed).

    Attributes after train(): loss_history (one float per iteration), train_acc_history and
    val_acc_history (one float before training and one per epoch), best_val_acc, best_params
    (dict name -> array, copied), epoch.

    Raises FloatingPointError from train() when the loss becomes nan or inf, naming the
    iteration; usually the learning rate is too high.
    """

    DEFAULTS = {
        "update_rule": "sgd", "optim_config": None, "lr_decay": 1.0, "batch_size": 100,
        "num_epochs": 10, "num_train_samples": 1000, "num_val_samples": None,
        "checkpoint_name": None, "print_every": 10, "verbose": True, "seed": None,
    }

    def __init__(self, model, data, **kwargs):
        """Inputs: model (see the module docstring); data: dict with X_train, y_train, X_val,
        y_val; kwargs: the options listed in the class docstring.
        Raises ValueError for an unknown option, an unknown rule or malformed data.
        """
        unknown = sorted(set(kwargs) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"Solver: unknown keyword argument(s) {', '.join(unknown)}; "
                             f"valid ones are {', '.join(self.DEFAULTS)}")
        options = {**self.DEFAULTS, **kwargs}
        _check_model(model)
        self.model = model
        self.X_train, self.y_train, self.X_val, self.y_val = _check_data(data)

        rule = options["update_rule"]
        if isinstance(rule, str):
            self.update_rule = optim.get_update_rule(rule)
        elif callable(rule):
            self.update_rule = rule
        else:
            raise TypeError(f"Solver: update_rule must be a name such as 'adam' or a function "
                            f"next_w, config = rule(w, dw, config), got {type(rule).__name__}")
        self.update_rule_name = rule if isinstance(rule, str) else getattr(rule, "__name__",
                                                                           repr(rule))
        if not isinstance(options["optim_config"], (dict, type(None))):
            raise TypeError("Solver: optim_config must be a dict such as {'learning_rate': 1e-3}, "
                            f"got {type(options['optim_config']).__name__}")
        self.optim_config = dict(options["optim_config"] or {})

        self.lr_decay = options["lr_decay"]
        if not isinstance(self.lr_decay, numbers.Real) or not 0 < self.lr_decay < float("inf"):
            raise ValueError(f"Solver: lr_decay must be a number > 0 (e.g. 0.95), "
                             f"got {self.lr_decay!r}")
        self.batch_size = _positive_int("batch_size", options["batch_size"])
        self.num_epochs = _positive_int("num_epochs", options["num_epochs"])
        self.print_every = _positive_int("print_every", options["print_every"])
        self.num_train_samples = _positive_int("num_train_samples", options["num_train_samples"],
                                               allow_none=True)
        self.num_val_samples = _positive_int("num_val_samples", options["num_val_samples"],
                                             allow_none=True)
        self.checkpoint_name = options["checkpoint_name"]
        self.verbose = bool(options["verbose"])
        self.seed = options["seed"]
        self._reset()

    def _reset(self):
        """Fresh book-keeping: epoch 0, empty histories, one optim config per parameter."""
        self.rng = np.random.default_rng(self.seed)
        self.epoch = 0
        self.best_val_acc = -1.0
        self.best_params = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.optim_configs = {name: copy.deepcopy(self.optim_config) for name in self.model.params}

    def _step(self, batch):
        """One update on the examples `batch` (index array); returns the loss, a float."""
        loss, grads = self.model.loss(self.X_train[batch], self.y_train[batch])
        loss = float(loss)
        params = self.model.params
        if set(grads) != set(params):
            raise ValueError(f"model.loss returned gradients for {sorted(grads)} but the model's "
                             f"params are {sorted(params)}; return one gradient per parameter")
        if not np.isfinite(loss):
            return loss
        for name, w in params.items():
            params[name], self.optim_configs[name] = self.update_rule(
                w, grads[name], self.optim_configs[name])
        return loss

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of examples the model classifies correctly.

        Inputs: X: array (N, ...); y: int array (N,); num_samples: if not None and smaller than
        N, score a random subset of that many; batch_size: examples per call of model.loss.
        Returns: accuracy, a float in [0, 1].
        """
        if len(X) != len(y):
            raise ValueError(f"check_accuracy: X has {len(X)} examples but y has {len(y)}")
        if num_samples is not None and len(X) > num_samples:
            keep = self.rng.choice(len(X), num_samples, replace=False)
            X, y = X[keep], y[keep]
        if len(X) == 0:
            raise ValueError("check_accuracy: no examples to score")
        batch_size = _positive_int("batch_size", batch_size)
        predictions = [np.argmax(self.model.loss(X[i:i + batch_size]), axis=1)
                       for i in range(0, len(X), batch_size)]
        return float(np.mean(np.concatenate(predictions) == y))

    def _record_accuracy(self, progress):
        """Append train and val accuracy; keep a copy of the params if val accuracy is the best."""
        train_acc = self.check_accuracy(self.X_train, self.y_train, self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if self.verbose:
            progress.write(f"(Epoch {self.epoch} / {self._last_epoch}) "
                           f"train acc: {train_acc:.4f}; val acc: {val_acc:.4f}")
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_params = {name: w.copy() for name, w in self.model.params.items()}

    def train(self):
        """Run num_epochs epochs of minibatch updates, then restore the best parameters.

        Each epoch visits the training examples in a fresh random order, batch_size at a time
        (a last partial batch is left out). Accuracies are measured before the first epoch and
        after each one. Calling train() again goes on for num_epochs more epochs.
        Raises FloatingPointError when the loss becomes nan or inf.
        """
        num_train = len(self.X_train)
        per_epoch = max(num_train // self.batch_size, 1)
        self._last_epoch = self.epoch + self.num_epochs
        num_iterations = self.num_epochs * per_epoch
        progress = tqdm(total=num_iterations, disable=not self.verbose, desc="training",
                        unit="it", leave=True)
        try:
            if not self.val_acc_history:
                self._record_accuracy(progress)
            for t in range(num_iterations):
                if t % per_epoch == 0:
                    order = self.rng.permutation(num_train)
                start = (t % per_epoch) * self.batch_size
                loss = self._step(order[start:start + self.batch_size])
                iteration = len(self.loss_history) + 1
                if not np.isfinite(loss):
                    lr = next(iter(self.optim_configs.values()), {}).get("learning_rate")
                    now = "" if lr is None else f" (now {lr:g})"
                    raise FloatingPointError(
                        f"loss became {loss} at iteration {iteration} (epoch {self.epoch + 1}): "
                        f"lower the learning rate{now} or check the weight scale")
                self.loss_history.append(loss)
                progress.set_postfix(loss=f"{loss:.4g}", refresh=False)
                progress.update()
                if self.verbose and (t % self.print_every == 0 or t == num_iterations - 1):
                    progress.write(f"(Iteration {t + 1} / {num_iterations}) loss: {loss:.6f}")
                if (t + 1) % per_epoch == 0:
                    self._end_epoch(progress)
        finally:
            progress.close()
        self.model.params.update({name: w.copy() for name, w in self.best_params.items()})

    def _end_epoch(self, progress):
        """Count the epoch, decay the learning rates, record accuracies, write a checkpoint."""
        self.epoch += 1
        for config in self.optim_configs.values():
            if "learning_rate" in config:
                config["learning_rate"] *= self.lr_decay
        self._record_accuracy(progress)
        if self.checkpoint_name:
            self._save_checkpoint()

    def _save_checkpoint(self):
        """Pickle the model and the training state, atomically (a temp file, then os.replace)."""
        checkpoint = {
            "model": self.model, "update_rule": self.update_rule_name,
            "lr_decay": self.lr_decay, "optim_config": self.optim_config,
            "batch_size": self.batch_size, "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples, "epoch": self.epoch,
            "loss_history": self.loss_history, "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history, "best_val_acc": self.best_val_acc,
        }
        path = f"{self.checkpoint_name}_epoch_{self.epoch}.pkl"
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(checkpoint, f)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        if self.verbose:
            tqdm.write(f'Saved checkpoint "{path}" (epoch {self.epoch})')


def _positive_int(name, value, allow_none=False):
    """value if it is an int >= 1 (or None when allowed); ValueError otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        extra = " or None" if allow_none else ""
        raise ValueError(f"Solver: {name} must be an integer >= 1{extra}, got {value!r}")
    return int(value)


def _check_model(model):
    """TypeError unless model has a params dict and a callable loss."""
    if not isinstance(getattr(model, "params", None), dict) or not callable(
            getattr(model, "loss", None)):
        raise TypeError(f"Solver: the model ({type(model).__name__}) needs a dict `params` and a "
                        "method `loss(X, y=None)`; see the cs231n.solver docstring")


def _check_data(data):
    """(X_train, y_train, X_val, y_val) from the dict `data`; ValueError naming what is wrong."""
    if not hasattr(data, "keys"):
        raise TypeError(f"Solver: data must be a dict with keys {', '.join(_DATA_KEYS)}, "
                        f"got {type(data).__name__}")
    missing = [key for key in _DATA_KEYS if key not in data]
    if missing:
        raise ValueError(f"Solver: data is missing {', '.join(missing)}; it needs "
                         f"{', '.join(_DATA_KEYS)}")
    arrays = [np.asarray(data[key]) for key in _DATA_KEYS]
    for split, X, y in (("train", *arrays[:2]), ("val", *arrays[2:])):
        if X.ndim == 0 or y.ndim != 1 or len(X) != len(y):
            raise ValueError(f"Solver: X_{split} has {len(X) if X.ndim else 0} examples but "
                             f"y_{split} has shape {y.shape}; they need one label per example")
        if len(X) == 0:
            raise ValueError(f"Solver: X_{split} is empty")
    return arrays
