"""The pictures: grid layout and the training plot."""
import matplotlib
import numpy as np
import pytest

from cs231n.vis_utils import plot_training, show_filters, visualize_grid

matplotlib.use("Agg")


def test_grid_places_each_image_in_its_cell():
    images = np.stack([np.full((2, 3), k, dtype=float) for k in range(5)])
    grid = visualize_grid(images, padding=1, scale_each=False)
    assert grid.shape == (3 * 2 + 2, 3 * 3 + 2)
    assert np.all(grid[0:2, 4:7] == 0.25) and np.all(grid[3:5, 4:7] == 1.0)  # images 1 and 4
    assert np.all(grid[6:8, 0:3] == 1.0)  # an unused cell stays blank (white)


def test_grid_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        visualize_grid(np.zeros(5))


def test_filters_and_training_plot_draw(rng):
    class FakeSolver:
        loss_history = list(np.linspace(2.3, 0.5, 50))
        train_acc_history = [0.1, 0.5, 0.8]
        val_acc_history = [0.1, 0.4, 0.7]

    fig = plot_training({"adam": FakeSolver(), "sgd": FakeSolver()})
    assert [ax.get_title() for ax in fig.axes] == ["training loss", "training accuracy", "validation accuracy"]
    assert len(fig.axes[0].lines) == 4  # raw and smoothed loss for each solver
    ax = show_filters(rng.standard_normal((8, 3, 5, 5)))
    assert ax.images[0].get_array().shape == (3 * 5 + 2, 3 * 5 + 2, 3)
