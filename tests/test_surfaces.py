"""The 2-D surfaces of the Optimizers notebook: gradients against centred differences, minima
and saddle where the docstrings put them, windows that hold the start, and the drawing helpers."""
import matplotlib
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cs231n import optim, surfaces
from cs231n.gradient_check import eval_numerical_gradient, rel_error

matplotlib.use("Agg")

ALL = [surfaces.ravine(), surfaces.saddle(), surfaces.bowl(), surfaces.ravine(30)]
IDS = [s.name for s in ALL]
coordinate = st.floats(-5, 5, allow_nan=False)


@pytest.mark.parametrize("surface", ALL, ids=IDS)
@given(x=coordinate, y=coordinate)
def test_gradient_matches_centred_differences(surface, x, y):
    w = np.array([x, y])
    numerical = eval_numerical_gradient(surface.loss, w)
    analytic = surface.grad(w)
    assert analytic.shape == (2,) and analytic.dtype == np.float64
    assert np.allclose(analytic, numerical, rtol=1e-6, atol=1e-6), (
        f"{surface.name}: gradient at {w} is {analytic}, centred differences give {numerical}, "
        f"relative error {rel_error(analytic, numerical):.1e}")


@pytest.mark.parametrize("surface", ALL, ids=IDS)
def test_minimum_is_the_lowest_point_and_the_start_is_in_the_window(surface):
    assert surface.loss(surface.minimum) == pytest.approx(surface.min_loss, abs=1e-12)
    assert np.allclose(surface.grad(surface.minimum), 0, atol=1e-12)
    X, Y, Z = surface.grid(101)
    assert Z.shape == (101, 101) and Z.min() >= surface.min_loss - 1e-12
    xmin, xmax, ymin, ymax = surface.extent
    assert xmin < surface.start[0] < xmax and ymin < surface.start[1] < ymax
    assert xmin < surface.minimum[0] < xmax and ymin < surface.minimum[1] < ymax


def test_saddle_is_flat_curves_up_along_x_and_down_along_y():
    s = surfaces.saddle()
    assert np.allclose(s.grad([0.0, 0.0]), 0) and s.loss([0.0, 0.0]) == 0 > s.min_loss
    h = 1e-3
    assert s.loss([h, 0.0]) > 0 > s.loss([0.0, h])
    assert s.loss([0.0, -1.0]) == pytest.approx(s.min_loss)  # the second minimum


def test_ravine_is_80_times_steeper_across_than_along_at_any_angle():
    for angle in (0, 30, 90):
        s = surfaces.ravine(angle)
        c, si = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        along, across = np.array([c, si]), np.array([-si, c])
        assert s.loss(along) == pytest.approx(0.025) and s.loss(across) == pytest.approx(2.0)
        assert s.loss(s.start) == pytest.approx(surfaces.ravine().loss(surfaces.ravine().start))


def test_quadratic_rejects_a_curvature_without_a_minimum():
    with pytest.raises(ValueError, match="curvatures must be > 0"):
        surfaces.quadratic("flat", (1.0, 0.0))


def test_sgd_with_a_stable_step_reaches_the_minimum_of_each_quadratic():
    for s in (surfaces.bowl(), surfaces.ravine()):
        w, config = np.array(s.start), {"learning_rate": 0.45}
        for _ in range(2000):
            w, config = optim.sgd(w, s.grad(w), config)
        assert np.allclose(w, s.minimum, atol=1e-6), f"{s.name}: sgd ended at {w}"


def test_panels_draw_each_surface_on_one_scale():
    import matplotlib.pyplot as plt

    fig, axes = surfaces.panels(surfaces.surfaces().values())
    assert [ax.get_title() for ax in axes] == ["ravine", "saddle", "bowl"]
    for ax, s in zip(axes, surfaces.surfaces().values()):
        assert ax.get_xlim() == pytest.approx(s.extent[:2]) and ax.get_ylim() == pytest.approx(s.extent[2:])
        assert len(ax.lines) == (3 if s.name == "saddle" else 2)  # start, minimum (and saddle point)
    plt.close(fig)
    assert "ravine" in repr(surfaces.ravine()) and "start=(-4.5, 0.8)" in repr(surfaces.ravine())
