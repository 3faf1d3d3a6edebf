"""Two-dimensional loss surfaces to watch update rules on: a ravine, a saddle and a bowl.

    surface = ravine()
    surface.loss(w), surface.grad(w)      # w: float array (2,)
    draw(surface, ax)                     # contour lines, start and minimum
    fig, axes = panels(surfaces().values())   # a row of drawn surfaces on one scale

Each surface knows a start point, where its minimum lies and the loss there, and the window
of the plane worth drawing, so every update rule can be run from the same place.
"""
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Surface:
    """A loss f(x, y) with its gradient, a start point and a drawing window.

    - f(x, y): the loss; x, y floats or arrays of one shape (broadcasting).
    - df(x, y): the gradient as a pair (df/dx, df/dy), shaped like x and y.
    - start: (x, y) where every rule starts.
    - minimum: (x, y) of a lowest point (the saddle's surface has two; this is one).
    - min_loss: f at the minimum, so f - min_loss >= 0 can go on a log scale.
    - extent: (xmin, xmax, ymin, ymax), the window to draw.
    """

    name: str
    f: Callable
    df: Callable
    start: tuple
    minimum: tuple
    min_loss: float
    extent: tuple

    def loss(self, w):
        """The loss at w (array (2,)), a float."""
        return float(self.f(w[0], w[1]))

    def grad(self, w):
        """The gradient at w (array (2,)): float64 array (2,)."""
        return np.array(self.df(w[0], w[1]), dtype=np.float64)

    def grid(self, n=200):
        """X, Y, Z arrays (n, n): the loss on an n x n grid over the extent, for contour plots."""
        xmin, xmax, ymin, ymax = self.extent
        X, Y = np.meshgrid(np.linspace(xmin, xmax, n), np.linspace(ymin, ymax, n))
        return X, Y, self.f(X, Y)

    def __repr__(self):
        def point(p):
            return "(" + ", ".join(f"{v:.3g}" for v in p) + ")"

        return (f"Surface({self.name!r}, start={point(self.start)}, "
                f"minimum={point(self.minimum)}, min_loss={self.min_loss:g})")


def quadratic(name, curvatures, angle=0.0, start=(-2.0, 1.5), extent=(-2.5, 2.5, -2.0, 2.0)):
    """f(w) = 1/2 w^T H w, minimum 0 at the origin, H with the given curvatures (eigenvalues).

    The first curvature acts along the direction `angle` degrees from the x axis, the second at
    right angles to it: angle=0 puts the surface's axes on the coordinate axes.
    """
    a, b = (float(c) for c in curvatures)
    if a <= 0 or b <= 0:
        raise ValueError(f"{name}: curvatures must be > 0 for a minimum, got {curvatures}")
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))

    def along(x, y):  # coordinates along the surface's own axes
        return c * x + s * y, -s * x + c * y

    def f(x, y):
        u, v = along(x, y)
        return 0.5 * (a * u * u + b * v * v)

    def df(x, y):
        u, v = along(x, y)
        gu, gv = a * u, b * v
        return c * gu - s * gv, s * gu + c * gv

    return Surface(name, f, df, tuple(start), (0.0, 0.0), 0.0, tuple(extent))


def bowl():
    """A round bowl, f = (x^2 + y^2) / 2: every direction equally curved (condition number 1)."""
    return quadratic("bowl", (1.0, 1.0), start=(-2.0, 1.5), extent=(-2.5, 1.5, -1.2, 2.0))


def ravine(angle=0.0):
    """A long narrow valley, f = (x^2 / 20 + 4 y^2) / 2 when angle=0: curvature 0.05 along the
    valley floor and 4 across it (condition number 80).

    angle (degrees) turns the valley away from the x axis, start point and window with it, so
    rules that rescale each coordinate separately lose their advantage.
    """
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))

    def turn(x, y):
        return c * x - s * y, s * x + c * y

    start = turn(-4.5, 0.8)
    corners = np.array([turn(x, y) for x in (-5.0, 1.0) for y in (-1.5, 1.5)])
    low, high = corners.min(axis=0), corners.max(axis=0)
    extent = (float(low[0]), float(high[0]), float(low[1]), float(high[1]))
    name = "ravine" if angle == 0 else f"ravine turned {angle:g} degrees"
    return quadratic(name, (0.05, 4.0), angle=angle, start=start, extent=extent)


def saddle():
    """f = x^2/2 - y^2/2 + y^4/4: a saddle point at the origin (curving up along x, down along y),
    and two minima at (0, +1) and (0, -1) where f = -1/4, so descent has somewhere to go.

    The start lies almost exactly on the ridge y = 0, where the gradient barely points away.
    """
    def f(x, y):
        return 0.5 * x * x - 0.5 * y * y + 0.25 * y ** 4

    def df(x, y):
        return x, y ** 3 - y

    return Surface("saddle", f, df, (-2.0, 1e-3), (0.0, 1.0), -0.25, (-2.5, 1.5, -1.5, 1.5))


def surfaces():
    """The three surfaces of the notebook, by name: {'ravine': ..., 'saddle': ..., 'bowl': ...}."""
    return {s.name: s for s in (ravine(), saddle(), bowl())}


def draw(surface, ax=None, levels=12):
    """Contour lines of `surface` on ax (default: the current axes), with its start (a black
    circle) and minimum (a star). Levels are spaced evenly in log(f - min_loss), so the flat
    floor of a valley shows as well as its steep walls. Returns ax.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    X, Y, Z = surface.grid()
    height = Z - surface.min_loss
    top = height.max()
    ax.contour(X, Y, height, levels=np.geomspace(top * 1e-4, top, levels), colors="0.75",
               linewidths=0.8)
    if surface.min_loss < surface.f(0.0, 0.0):  # a saddle: mark the saddle point too
        ax.plot(0, 0, "x", color="0.4", markersize=8)
    ax.plot(*surface.start, "o", color="k", markersize=6)
    ax.plot(*surface.minimum, "*", color="k", markersize=12)
    ax.set_xlim(surface.extent[:2])
    ax.set_ylim(surface.extent[2:])
    ax.set_aspect("equal")
    ax.set_title(surface.name)
    return ax


def panels(surface_list, width=None):
    """A figure with one drawn surface (see `draw`) per axes, side by side, each axes as wide as
    its surface's window needs so that all share one scale. width: of the figure in inches;
    None means about 4 inches of height, but no wider than 14. Returns fig and the list of axes.
    """
    import matplotlib.pyplot as plt

    surface_list = list(surface_list)
    ratios = [(s.extent[1] - s.extent[0]) / (s.extent[3] - s.extent[2]) for s in surface_list]
    width = width or min(14.0, 4.0 * sum(ratios))
    height = width / sum(ratios) + 0.7  # room for the titles
    fig, axes = plt.subplots(1, len(surface_list), figsize=(width, height), squeeze=False,
                             gridspec_kw={"width_ratios": ratios}, layout="constrained")
    axes = list(axes[0])
    for surface, ax in zip(surface_list, axes):
        draw(surface, ax)
    return fig, axes
