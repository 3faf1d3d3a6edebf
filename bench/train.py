"""Training throughput of ThreeLayerConvNet with the fast layers, beside the same net in PyTorch.

One step = forward + backward + SGD update of a float32 minibatch of 50 CIFAR-sized images
(conv 32 7x7 filters - relu - 2x2 max pool - affine 100 - relu - affine 10 - softmax), on random
data (the speed does not depend on the values). Images per second are the median over steps;
an epoch is CIFAR-10's 49,000 training images.

Run: python -m bench.train [--budget SECONDS] [--single-core]
"""
import numpy as np

from bench.common import load_torch, machine_report, parse_args, timed, verdict
from cs231n import layer_utils
from cs231n.classifiers.cnn import ThreeLayerConvNet
from cs231n.optim import sgd

BATCH, EPOCH = 50, 49_000
FILTERS, FILTER_SIZE, HIDDEN, CLASSES = 32, 7, 100, 10


def _batch():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((BATCH, 3, 32, 32)).astype(np.float32),
            rng.integers(CLASSES, size=BATCH))


def ours_step():
    """One training step of cs231n's ThreeLayerConvNet (float32), as a callable."""
    model = ThreeLayerConvNet(num_filters=FILTERS, filter_size=FILTER_SIZE, hidden_dim=HIDDEN,
                              num_classes=CLASSES, weight_scale=1e-3, dtype=np.float32, seed=0)
    X, y = _batch()
    config = {name: {"learning_rate": 1e-3} for name in model.params}

    def step():
        _, grads = model.loss(X, y)
        for name, w in model.params.items():
            model.params[name], config[name] = sgd(w, grads[name], config[name])

    return step


def torch_step(torch):
    """One training step of the same network in PyTorch (float32), as a callable."""
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, FILTERS, FILTER_SIZE, padding=(FILTER_SIZE - 1) // 2), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(FILTERS * 16 * 16, HIDDEN), nn.ReLU(),
        nn.Linear(HIDDEN, CLASSES))
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)
    X, y = (torch.from_numpy(a) for a in _batch())

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(X), y).backward()
        optimizer.step()

    return step


def run(budget=3.0, torch=None):
    """Measure and print both throughputs; return the verdict line of the issue's target."""
    layers = "fast" if layer_utils.FAST_LAYERS else "NAIVE (the extension is not built)"
    steps = {"cs231n": ours_step()}
    if torch is not None:
        steps["torch"] = torch_step(torch)
    rate = {name: BATCH / seconds for name, seconds in timed(steps, budget=budget).items()}
    print(f"\nThreeLayerConvNet training, float32, batch {BATCH}, {layers} layers")
    print(f"  {'':8} {'images/s':>9} {'epoch s':>8}")
    for name, images in rate.items():
        print(f"  {name:8} {images:9.0f} {EPOCH / images:8.1f}")
    if torch is None:
        print("  torch not installed: no comparison")
        return [verdict("training images/s cs231n/torch", None, 0.8, higher_is_better=True)]
    print(f"  cs231n/torch {rate['cs231n'] / rate['torch']:.2f}")
    return [verdict("training images/s cs231n/torch", rate["cs231n"] / rate["torch"], 0.8,
                    higher_is_better=True)]


def main():
    budget = parse_args(__doc__, "bench.train", 3.0)
    torch = load_torch()
    print("\n".join(machine_report(torch)))
    print("\nTarget\n" + "\n".join(run(budget, torch)))


if __name__ == "__main__":
    main()
