"""Pictures for the notebooks: filter grids and training curves."""
import numpy as np


def visualize_grid(images, padding=1, scale_each=True):
    """Tile a batch of images into one picture, one image per cell of a near-square grid.

    Inputs:
    - images: array (N, H, W, C) or (N, H, W); e.g. first-layer filters transposed to (F, HH, WW, C).
    - padding: pixels of blank between cells.
    - scale_each: stretch each image to [0, 1] on its own (filters have arbitrary ranges);
      otherwise scale the whole batch together.
    Returns: float array (G*H + (G-1)*padding, G*W + (G-1)*padding[, C]) in [0, 1], G = ceil(sqrt(N)).
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C), got shape {images.shape}")
    N, H, W = images.shape[:3]
    G = int(np.ceil(np.sqrt(N)))

    def stretch(a):
        low, high = a.min(), a.max()
        return np.zeros_like(a) if high == low else (a - low) / (high - low)

    images = np.stack([stretch(im) for im in images]) if scale_each else stretch(images)
    grid = np.ones((G * H + (G - 1) * padding, G * W + (G - 1) * padding) + images.shape[3:])
    for k, image in enumerate(images):
        r, c = divmod(k, G)
        top, left = r * (H + padding), c * (W + padding)
        grid[top:top + H, left:left + W] = image
    return grid


def show_filters(w, ax=None, title=None):
    """Show conv filters w (F, C, HH, WW) as a grid; C=3 as colour, otherwise the first channel."""
    import matplotlib.pyplot as plt

    w = np.asarray(w)
    images = w.transpose(0, 2, 3, 1) if w.shape[1] == 3 else w[:, 0]
    ax = ax or plt.gca()
    ax.imshow(visualize_grid(images), cmap=None if w.shape[1] == 3 else "gray", interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def plot_training(solvers, smooth=20):
    """Loss, training and validation accuracy of one or more Solvers, side by side.

    Inputs: solvers, a Solver or a dict label -> Solver; smooth, the window of a moving average
    drawn over the noisy per-iteration loss. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if not isinstance(solvers, dict):
        solvers = {"": solvers}
    fig, (ax_loss, ax_train, ax_val) = plt.subplots(1, 3, figsize=(15, 4))
    for label, solver in solvers.items():
        loss = np.asarray(solver.loss_history)
        line, = ax_loss.plot(loss, alpha=0.3)
        if len(loss) >= smooth > 1:
            ax_loss.plot(np.arange(smooth - 1, len(loss)), np.convolve(loss, np.ones(smooth) / smooth, "valid"),
                         color=line.get_color(), label=label or None)
        ax_train.plot(solver.train_acc_history, "o-", label=label or None)
        ax_val.plot(solver.val_acc_history, "o-", label=label or None)
    for ax, title, xlabel in ((ax_loss, "training loss", "iteration"),
                              (ax_train, "training accuracy", "epoch"),
                              (ax_val, "validation accuracy", "epoch")):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        if any(solvers):
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
