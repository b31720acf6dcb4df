import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regutils import density as dens


def reference_density(x, y, r):
    """O(N^2) reference: neighbours with squared distance <= r^2, itself included."""
    dx = x[:, None] - x[None, :]
    dy = y[:, None] - y[None, :]
    return np.count_nonzero(dx**2 + dy**2 <= r**2, axis=1) / (math.pi * r**2)


def test_default_radius_by_hand():
    x = np.array([0.0, 30.0, 15.0])
    y = np.array([0.0, 0.0, 40.0])
    assert dens.default_radius(x, y) == pytest.approx(math.sqrt(1.0**2 + (40 / 30) ** 2))
    assert dens.default_radius([2.0, 2.0], [5.0, 5.0]) == 1.0


def test_density_by_hand_counts_itself_and_boundary():
    # points at distance exactly 1 count; the lone point counts only itself
    x = np.array([0.0, 1.0, 0.0, 5.0])
    y = np.array([0.0, 0.0, 1.0, 5.0])
    expected = np.array([3, 2, 2, 1]) / math.pi
    np.testing.assert_allclose(dens.density(x, y, r=1.0), expected)


@pytest.mark.parametrize("seed", range(4))
def test_density_matches_reference_on_random_points(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=300) * 5
    y = rng.exponential(size=300) * 3
    x[:50] = x[50:100]  # duplicates
    y[:50] = y[50:100]
    r = dens.default_radius(x, y)
    np.testing.assert_allclose(dens.density(x, y), reference_density(x, y, r))
    np.testing.assert_allclose(dens.density(x, y, r=0.7), reference_density(x, y, 0.7))


@pytest.mark.parametrize("r", [1.0, 2.0, 5.0])
def test_density_matches_reference_on_integer_grid(r):
    # integer (CBTL, events) pairs with many duplicates and distances exactly r
    rng = np.random.default_rng(1)
    x = rng.integers(0, 12, size=400).astype(float)
    y = rng.integers(0, 6, size=400).astype(float)
    np.testing.assert_allclose(dens.density(x, y, r=r), reference_density(x, y, r))


def test_normalized_density_sums_to_one():
    d = np.array([1.0, 3.0, 4.0])
    np.testing.assert_allclose(dens.normalized_density(d), [0.125, 0.375, 0.5])


def test_density_per_run_uses_each_runs_radius():
    rng = np.random.default_rng(2)
    x_runs = rng.integers(0, 50, size=(3, 200)).astype(float)
    y_runs = rng.integers(0, 10, size=(3, 200)).astype(float)
    x_runs[1] *= 3  # a different range -> a different default radius
    out = dens.density_per_run(x_runs, y_runs)
    assert out.shape == (3, 200)
    for run in range(3):
        r = dens.default_radius(x_runs[run], y_runs[run])
        np.testing.assert_allclose(out[run], reference_density(x_runs[run], y_runs[run], r))
    fixed = dens.density_per_run(x_runs, y_runs, r=1.0)
    np.testing.assert_allclose(fixed[1], reference_density(x_runs[1], y_runs[1], 1.0))


@pytest.mark.parametrize("r", [0.0, -1.0])
def test_bad_radius(r):
    with pytest.raises(ValueError, match="r must be > 0"):
        dens.density([0.0, 1.0], [0.0, 1.0], r=r)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 80), st.integers(0, 2**32 - 1))
def test_density_independent_of_order(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 20, size=n).astype(float)
    y = rng.integers(0, 8, size=n).astype(float)
    perm = rng.permutation(n)
    d = dens.density(x, y)
    d_perm = dens.density(x[perm], y[perm])
    unpermuted = np.empty_like(d_perm)
    unpermuted[perm] = d_perm
    np.testing.assert_array_equal(unpermuted, d)


def test_default_radius_of_the_papers_axis_ranges():
    # 200 epochs of CBTL and an events axis spanning 39: the paper's 6.8 to one decimal
    x, y = np.array([0.0, 200.0]), np.array([0.0, 39.0])
    assert dens.default_radius(x, y) == pytest.approx(6.792, abs=1e-3)


def test_quadrant_means_by_hand():
    # x range 0..10 (middle 5), y range 0..4 (middle 2); a point on a middle line counts right / upper
    x = np.array([0.0, 10.0, 10.0, 5.0, 0.0, 1.0])
    y = np.array([0.0, 0.0, 1.0, 2.0, 4.0, 4.0])
    d = np.array([1.0, 8.0, 6.0, 2.0, 3.0, 5.0])
    means = dens.quadrant_means(x, y, d)
    assert means == {"lower left": 1.0, "lower right": 7.0, "upper left": 4.0, "upper right": 2.0}
    assert dens.densest_quadrant(x, y, d) == "lower right"
    d_upper = np.array([1.0, 1.0, 1.0, 2.0, 3.0, 5.0])
    assert dens.densest_quadrant(x, y, d_upper) == "upper left"


def test_quadrant_means_empty_quadrant_is_nan_and_never_densest():
    x, y, d = np.array([0.0, 10.0]), np.array([0.0, 4.0]), np.array([1.0, 2.0])
    means = dens.quadrant_means(x, y, d)
    assert math.isnan(means["lower right"]) and math.isnan(means["upper left"])
    assert dens.densest_quadrant(x, y, d) == "upper right"


def test_quadrant_means_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        dens.quadrant_means([0.0, 1.0], [0.0, 1.0], [1.0])
