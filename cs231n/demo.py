"""`make demo`: train a small ConvNet with the reference code and show how it learns.

Runs on embedded defaults with no network: the offline digits data unless CIFAR-10 has been
fetched (`make data`) and --dataset cifar10 is given. Prints the loss curve as a text chart,
per-epoch accuracies and the final validation and test accuracy.
"""
import argparse
import time

import numpy as np

from .classifiers import ThreeLayerConvNet
from .data_utils import get_CIFAR10_data
from .layer_utils import FAST_LAYERS
from .solver import Solver

BARS = " ▁▂▃▄▅▆▇█"


def sparkline(values, width=60):
    """A one-line chart of `values` (averaged into at most `width` buckets), highest = █."""
    values = np.asarray(values, dtype=float)
    buckets = np.array_split(values, min(width, len(values)))
    means = np.array([b.mean() for b in buckets])
    low, high = means.min(), means.max()
    scaled = np.zeros_like(means) if high == low else (means - low) / (high - low)
    return "".join(BARS[int(round(s * (len(BARS) - 1)))] for s in scaled)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", help="digits (offline, default) or cifar10")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--num-training", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(f"conv layers: {'compiled fast layers' if FAST_LAYERS else 'naive layers (run make build for the fast ones)'}")
    data = get_CIFAR10_data(num_training=args.num_training, dataset=args.dataset)
    model = ThreeLayerConvNet(num_filters=16, filter_size=5, hidden_dim=100, weight_scale=1e-2,
                              reg=1e-3, seed=args.seed)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 2e-3},
                    num_epochs=args.epochs, batch_size=50, print_every=10**9, verbose=False,
                    seed=args.seed)
    start = time.perf_counter()
    solver.train()
    seconds = time.perf_counter() - start

    losses = solver.loss_history
    print(f"\nloss, {len(losses)} iterations: {losses[0]:.3f} {sparkline(losses)} {losses[-1]:.3f}")
    for epoch, (tr, va) in enumerate(zip(solver.train_acc_history, solver.val_acc_history)):
        when = "before training" if epoch == 0 else f"after epoch {epoch}"
        print(f"  {when:>15}: train accuracy {tr:.3f}, validation accuracy {va:.3f}")
    test_acc = solver.check_accuracy(data["X_test"], data["y_test"])
    print(f"\nbest validation accuracy {solver.best_val_acc:.3f}, test accuracy {test_acc:.3f} "
          f"({seconds:.1f} s of training)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
