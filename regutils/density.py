"""Local density of samples in the 2-D (CBTL, events) plane.

The density of a sample is the number of samples within distance r of it
(itself included) divided by the disc area pi r^2.

Usage::

    from regutils import density
    d = density.density(cbtl_mean, events_mean)          # paper's default radius
    d1 = density.density(cbtl_mean, events_mean, r=1.0)  # radius used for pruning
    v = density.normalized_density(d)                    # correlated across runs
    per_run = density.density_per_run(cbtl_runs, events_runs)   # (R, N)
"""
import numpy as np
from scipy.spatial import cKDTree

# The paper's default radius divides each axis range into 30 steps.
RADIUS_DIVISIONS = 30


def as_plane(x, y):
    """x and y as float64 1-D arrays of one length (ValueError otherwise)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
    return x, y


def default_radius(x, y):
    """sqrt((range(x) / 30)^2 + (range(y) / 30)^2) with range = max - min.

    Returns 1.0 when both ranges are 0 (all points coincide), so the density
    stays defined.
    """
    x, y = as_plane(x, y)
    if x.size == 0:
        raise ValueError("x and y must hold at least one point")
    dx = (x.max() - x.min()) / RADIUS_DIVISIONS
    dy = (y.max() - y.min()) / RADIUS_DIVISIONS
    r = float(np.hypot(dx, dy))
    return r if r > 0 else 1.0


def density(x, y, r=None):
    """Points within distance <= r of each point (itself included) divided by pi r^2.

    x, y: (N,) coordinates. r: radius > 0, or None for :func:`default_radius`.
    Returns float64 (N,).
    """
    x, y = as_plane(x, y)
    if r is None:
        r = default_radius(x, y)
    elif not r > 0:
        raise ValueError(f"r must be > 0 or None, got {r!r}")
    points = np.column_stack([x, y])
    # Run-averaged measures repeat a lot; the count cost grows with the number
    # of queries times the neighbours each, so query each distinct point once.
    distinct, inverse = np.unique(points, axis=0, return_inverse=True)
    counts = cKDTree(points).query_ball_point(distinct, r, return_length=True)
    return counts[inverse.ravel()] / (np.pi * r**2)


def normalized_density(d):
    """Density scaled to sum to 1: d / d.sum()."""
    d = np.asarray(d, dtype=np.float64)
    return d / d.sum()


def density_per_run(x_runs, y_runs, r=None):
    """Density in each run's own plane: (R, N) coordinates -> (R, N) densities.

    With r None each run uses its own :func:`default_radius`.
    """
    x_runs = np.asarray(x_runs)
    y_runs = np.asarray(y_runs)
    if x_runs.ndim != 2 or x_runs.shape != y_runs.shape:
        raise ValueError(
            f"x_runs and y_runs must be (R, N) of equal shape, got {x_runs.shape} and {y_runs.shape}"
        )
    return np.stack([density(x, y, r) for x, y in zip(x_runs, y_runs)])


QUADRANTS = ("lower left", "lower right", "upper left", "upper right")


def quadrant_means(x, y, d):
    """Mean density of the samples in each quadrant of the plane, split at the middle of each axis range.

    x, y, d: ``(N,)`` coordinates and densities. A sample on a middle line counts as right
    (upper). Returns ``{quadrant: mean density}`` for the :data:`QUADRANTS`, nan for an empty
    quadrant. The paper finds the densest samples in the lower right corner (high CBTL, few
    events) of both planes.
    """
    x, y = as_plane(x, y)
    d = np.asarray(d, dtype=np.float64)
    if d.shape != x.shape or x.size == 0:
        raise ValueError(f"d must have the shape of x and y, non-empty, got {d.shape} and {x.shape}")
    right = x >= (x.min() + x.max()) / 2
    upper = y >= (y.min() + y.max()) / 2
    code = 2 * upper + right  # index into QUADRANTS
    sums = np.bincount(code, weights=d, minlength=4)
    counts = np.bincount(code, minlength=4)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return dict(zip(QUADRANTS, means.tolist()))


def densest_quadrant(x, y, d):
    """The quadrant of :func:`quadrant_means` with the highest mean density (ties: first in QUADRANTS)."""
    means = quadrant_means(x, y, d)
    return max(QUADRANTS, key=lambda q: -np.inf if np.isnan(means[q]) else means[q])
