import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regutils import sampling
from regutils.sampling import FIRST_SECTOR, LEFT_AXIS, RIGHT_AXIS


def n_removed(fraction, n):
    return math.floor(fraction * n + 0.5)


# --- pruning ---------------------------------------------------------------


def test_density_strategy_removes_densest_first():
    d = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 2.0])
    kept = sampling.prune(0.5, "density", density=d)
    assert kept.tolist() == [1, 3, 5]  # 9, 7, 5 removed
    assert kept.dtype == np.int64


def test_cbtl_and_forgetting_strategies_by_hand():
    cbtl = np.array([10, 200, 50, 150])
    events = np.array([4, 0, 7, 1])
    assert sampling.prune(0.5, "cbtl", cbtl=cbtl).tolist() == [0, 2]
    assert sampling.prune(0.5, "forgetting", events=events).tolist() == [0, 2]
    assert sampling.prune(0.25, "forgetting", events=events).tolist() == [0, 2, 3]


def test_ties_are_broken_by_the_seed():
    events = np.zeros(40, dtype=int)
    events[:5] = 3  # the five most forgotten are always kept
    runs = [sampling.prune(0.5, "forgetting", events=events, seed=s) for s in range(5)]
    for kept in runs:
        assert len(kept) == 20
        assert set(range(5)) <= set(kept.tolist())
    np.testing.assert_array_equal(runs[0], sampling.prune(0.5, "forgetting", events=events, seed=0))
    assert len({tuple(k) for k in runs}) > 1


def test_random_strategy_deterministic_under_seed():
    labels = np.repeat(np.arange(4), 25)
    a = sampling.prune(0.3, "random", labels=labels, seed=7)
    b = sampling.prune(0.3, "random", labels=labels, seed=7)
    c = sampling.prune(0.3, "random", labels=labels, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(np.diff(a) > 0)


def test_stratified_density_removes_densest_within_each_class():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    d = np.array([1.0, 4.0, 3.0, 2.0, 40.0, 10.0, 30.0, 20.0])
    kept = sampling.prune(0.5, "density", density=d, labels=labels)
    assert kept.tolist() == [0, 3, 5, 7]
    # unstratified, class 1 alone would be removed
    assert sampling.prune(0.5, "density", density=d).tolist() == [0, 1, 2, 3]


def test_half_counts_round_up():
    # 0.5 * 5 = 2.5 -> 3 removed; per class: 0.5 * 5 -> 3, 0.5 * 3 = 1.5 -> 2
    assert len(sampling.prune(0.5, "random", labels=np.zeros(5))) == 2
    labels = np.array([0] * 5 + [1] * 3)
    kept = sampling.prune(0.5, "random", labels=labels)
    assert np.bincount(labels[kept]).tolist() == [2, 1]


@settings(max_examples=50, deadline=None)
@given(
    st.floats(0, 1),
    st.integers(1, 300),
    st.sampled_from(sampling.PRUNING_STRATEGIES),
    st.integers(0, 1000),
)
def test_pruning_sizes_exact(fraction, n, strategy, seed):
    rng = np.random.default_rng(seed)
    scores = dict(
        density=rng.random(n),
        cbtl=rng.integers(0, 5, n),
        events=rng.integers(0, 3, n),
        labels=rng.integers(0, 3, n),
    )
    kept = sampling.prune(fraction, strategy, seed=seed, **{k: v for k, v in scores.items() if k != "labels"})
    assert len(kept) == n - n_removed(fraction, n)
    assert len(np.unique(kept)) == len(kept) and kept.min(initial=0) >= 0 and kept.max(initial=0) < n

    labels = scores["labels"]
    kept_strat = sampling.prune(fraction, strategy, seed=seed, **scores)
    for c in np.unique(labels):
        size = np.count_nonzero(labels == c)
        assert np.count_nonzero(labels[kept_strat] == c) == size - n_removed(fraction, size)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        sampling.prune(fraction, "random", labels=np.zeros(5))


def test_missing_score_and_unknown_strategy():
    with pytest.raises(ValueError, match="density"):
        sampling.prune(0.1, "density", cbtl=np.zeros(5))
    with pytest.raises(ValueError, match="events"):
        sampling.prune(0.1, "forgetting", cbtl=np.zeros(5))
    with pytest.raises(ValueError, match="cbtl"):
        sampling.prune(0.1, "cbtl")
    with pytest.raises(ValueError, match="random"):
        sampling.prune(0.1, "random")
    with pytest.raises(ValueError, match="strategy must be one of"):
        sampling.prune(0.1, "el2n", density=np.zeros(5))
    with pytest.raises(ValueError, match="same length"):
        sampling.prune(0.1, "density", density=np.zeros(5), labels=np.zeros(4))


def test_score_orders_remove_the_lowest_or_the_highest_first():
    score = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2])
    assert sampling.prune(0.5, "lowest", score=score).tolist() == [0, 2, 4]  # 0.1, 0.2, 0.3 removed
    assert sampling.prune(0.5, "highest", score=score).tolist() == [1, 3, 5]  # 0.9, 0.7, 0.5 removed
    # per class: the lowest of each class goes first
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert sampling.prune(1 / 3, "lowest", score=score, labels=labels).tolist() == [0, 2, 3, 4]
    # the other scores given alongside do not change the ranking
    assert sampling.prune(0.5, "highest", score=score, cbtl=-score, events=score).tolist() == [1, 3, 5]


def test_score_orders_break_ties_by_the_seed_and_refuse_what_they_cannot_rank():
    score = np.zeros(40)
    score[:5] = -1.0  # the five lowest always go first
    runs = [sampling.prune(0.5, "lowest", score=score, seed=s) for s in range(5)]
    assert all(not set(range(5)) & set(k.tolist()) for k in runs)
    assert len({tuple(k) for k in runs}) > 1
    with pytest.raises(ValueError, match="needs the score score"):
        sampling.prune(0.5, "lowest", cbtl=score)
    with pytest.raises(ValueError, match="nan"):
        sampling.prune(0.5, "highest", score=np.array([0.1, np.nan, 0.2]))
    with pytest.raises(ValueError, match="same length"):
        sampling.prune(0.5, "highest", score=np.zeros(3), labels=np.zeros(4))


# --- angular bins and balanced subsets ----------------------------------------


def test_angular_bins_by_hand_raw_units():
    # x range [0, 100] -> centre (50, 0)
    x = np.array([0.0, 100.0, 20.0, 50.0, 60.0, 95.0, 45.0, 60.0])
    y = np.array([0.0, 0.0, 0.0, 0.0, 10.0, 5.0, 10.0, 0.0])
    bins = sampling.angular_bins(x, y, step_deg=18.0, scale=None)
    # (60,10): 45 deg -> sector 2; (95,5): ~6.3 deg -> sector 0; (45,10): ~116.6 deg -> sector 6
    assert bins.tolist() == [
        LEFT_AXIS, RIGHT_AXIS, LEFT_AXIS, RIGHT_AXIS,
        FIRST_SECTOR + 2, FIRST_SECTOR + 0, FIRST_SECTOR + 6, RIGHT_AXIS,
    ]


def test_angular_bins_scale_changes_angles():
    x = np.array([0.0, 100.0, 60.0])
    y = np.array([0.0, 100.0, 1.0])
    # scale="range": (60, 1) -> (0.1, 0.01) around centre 0.5 -> ~5.7 deg, sector 0
    assert sampling.angular_bins(x, y)[2] == FIRST_SECTOR + 0
    # (sx, sy) = (1, 0.01): (10, 100) -> ~84.3 deg, sector 4
    assert sampling.angular_bins(x, y, scale=(1.0, 0.01))[2] == FIRST_SECTOR + 4
    np.testing.assert_array_equal(
        sampling.angular_bins(x, y), sampling.angular_bins(x, y, scale=(100.0, 100.0))
    )


def test_angle_of_exact_multiple_and_180_degrees():
    x = np.array([-1.0, 1.0, 0.0, -1.0])
    y = np.array([0.0, 0.0, 1.0, 1e-300])  # centre 0; 90 deg, and ~180 deg
    bins = sampling.angular_bins(x, y, step_deg=45.0, scale=None)
    assert bins[2] == FIRST_SECTOR + 2  # 90 / 45 = 2 exactly
    assert bins[3] == FIRST_SECTOR + 3  # the last sector
    assert len(sampling.bin_names(45.0)) == 2 + 4


@pytest.mark.parametrize("step", [7.0, 0.0, -18.0, 200.0])
def test_bad_step(step):
    with pytest.raises(ValueError, match="step_deg"):
        sampling.angular_bins([0.0, 1.0], [0.0, 1.0], step_deg=step)


def test_bad_scale_and_negative_events():
    with pytest.raises(ValueError, match="scale"):
        sampling.angular_bins([0.0, 1.0], [0.0, 1.0], scale="log")
    with pytest.raises(ValueError, match="scale"):
        sampling.angular_bins([0.0, 1.0], [0.0, 1.0], scale=(1.0, 0.0))
    with pytest.raises(ValueError, match="y"):
        sampling.angular_bins([0.0, 1.0], [0.0, -1.0])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 200),
    st.sampled_from([18.0, 30.0, 45.0, 90.0, 180.0]),
    st.sampled_from(["range", None, (2.0, 0.5)]),
    st.integers(0, 10_000),
)
def test_angular_bins_partition(n, step, scale, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 200, n).astype(float)
    y = rng.integers(0, 4, n) * rng.random(n) * 30
    bins = sampling.angular_bins(x, y, step_deg=step, scale=scale)
    n_labels = len(sampling.bin_names(step))
    assert bins.shape == (n,)
    assert ((bins >= 0) & (bins < n_labels)).all()
    centre = (x.max() + x.min()) / 2
    np.testing.assert_array_equal(bins == LEFT_AXIS, (y == 0) & (x < centre))
    np.testing.assert_array_equal(bins == RIGHT_AXIS, (y == 0) & (x >= centre))
    # sectors against a per-point reference
    sx, sy = {"range": (np.ptp(x) or 1.0, np.ptp(y) or 1.0), None: (1.0, 1.0)}.get(scale, scale)
    for i in np.flatnonzero(y > 0):
        angle = math.degrees(math.atan2(y[i] / sy, (x[i] - centre) / sx))
        assert bins[i] == FIRST_SECTOR + min(int(angle // step), int(180 / step) - 1)


def test_balanced_subset_sizes_and_take_all():
    bins = np.array([LEFT_AXIS] * 3 + [RIGHT_AXIS] * 50 + [2] * 4 + [3] * 40)
    subset = sampling.balanced_subset(bins, n=30, seed=0)
    counts = np.bincount(bins[subset], minlength=4)
    assert counts.tolist() == [3, 30, 4, 30]
    assert np.all(np.diff(subset) > 0) and subset.dtype == np.int64
    np.testing.assert_array_equal(subset, sampling.balanced_subset(bins, n=30, seed=0))
    assert not np.array_equal(subset, sampling.balanced_subset(bins, n=30, seed=1))
    # with no take_all bins, the left axis is sampled like the others
    capped = sampling.balanced_subset(bins, n=2, seed=0, take_all=())
    assert np.bincount(bins[capped], minlength=4).tolist() == [2, 2, 2, 2]


def test_paper_scheme_11n_plus_3():
    # 40 points in the middle of each 18 degree sector, 50 on the right axis, 3 on the left
    rng = np.random.default_rng(0)
    angles = np.radians(np.repeat(np.arange(10) * 18.0 + 9.0, 40))
    radius = rng.uniform(0.1, 0.4, angles.size)
    x = np.concatenate([[-0.5, 0.5], np.cos(angles) * radius, rng.uniform(0, 0.5, 50), [-0.3, -0.2, -0.1]])
    y = np.concatenate([[0.0, 0.0], np.sin(angles) * radius, np.zeros(50), np.zeros(3)])
    bins = sampling.angular_bins(x, y, scale=None)
    counts = np.bincount(bins, minlength=12)
    assert counts.tolist() == [4, 51] + [40] * 10
    subset = sampling.balanced_subset(bins, n=30, seed=0)
    assert len(subset) == 11 * 30 + 4
    assert np.bincount(bins[subset], minlength=12).tolist() == [4] + [30] * 11


def plane(per_sector, step, right=0, left=0, seed=0):
    """x, y with per_sector[k] points in the middle of sector k of `step` degrees (raw units, centre 0),
    `right` points on the right half-axis and `left` on the left; the x range is fixed to [-1, 1]."""
    rng = np.random.default_rng(seed)
    angles = np.radians(np.repeat((np.arange(len(per_sector)) + 0.5) * step, per_sector))
    radius = rng.uniform(0.1, 0.9, angles.size)
    x = np.concatenate([[-1.0, 1.0], np.cos(angles) * radius, rng.uniform(0.05, 0.9, right),
                        -rng.uniform(0.05, 0.9, left)])
    y = np.concatenate([[0.0, 0.0], np.sin(angles) * radius, np.zeros(right + left)])
    return x, y


@pytest.mark.parametrize("step, per_bin", [(45.0, 100), (18.0, 40)])
def test_table3_subsets_have_400_samples_equally_from_the_sectors(step, per_bin):
    n_sectors = int(180 / step)
    x, y = plane([per_bin + 20 + 7 * k for k in range(n_sectors)], step, right=500, left=3)
    for axes in sampling.SECTOR_AXES:
        sectors = sampling.sector_bins(x, y, step_deg=step, scale=None, axes=axes)
        subset = sampling.equal_share_subset(sectors, size=400, n_bins=n_sectors, seed=3)
        assert subset.size == 400 and np.all(np.diff(subset) > 0)
        assert np.bincount(sectors[subset], minlength=n_sectors).tolist() == [per_bin] * n_sectors
        np.testing.assert_array_equal(subset, sampling.equal_share_subset(sectors, 400, n_sectors, seed=3))
        assert not np.array_equal(subset, sampling.equal_share_subset(sectors, 400, n_sectors, seed=4))


def test_sector_bins_put_the_half_axes_into_the_end_sectors_or_leave_them_out():
    x, y = plane([5, 5, 5, 5], 45.0, right=7, left=2)  # the two range-fixing points lie on the axes too
    bins = sampling.angular_bins(x, y, step_deg=45.0, scale=None)
    merged = sampling.sector_bins(x, y, step_deg=45.0, scale=None)
    excluded = sampling.sector_bins(x, y, step_deg=45.0, scale=None, axes="exclude")
    np.testing.assert_array_equal(merged[bins >= FIRST_SECTOR], bins[bins >= FIRST_SECTOR] - FIRST_SECTOR)
    assert set(merged[bins == RIGHT_AXIS]) == {0} and set(merged[bins == LEFT_AXIS]) == {3}
    assert np.bincount(merged).tolist() == [5 + 8, 5, 5, 5 + 3]
    assert (excluded[bins < FIRST_SECTOR] == -1).all()
    np.testing.assert_array_equal(excluded[bins >= FIRST_SECTOR], merged[bins >= FIRST_SECTOR])
    # the excluded half-axes are never drawn, even when every sector is short
    subset = sampling.equal_share_subset(excluded, size=400, n_bins=4, seed=0)
    np.testing.assert_array_equal(subset, np.flatnonzero(excluded >= 0))


def test_a_short_bin_gives_all_it_has_and_the_subset_shrinks():
    # 18 degree sectors holding 60, 60, 12, 60, ... samples, one sector empty: 40 from each full sector,
    # all 12 of the short one, nothing from the empty one; no other sector makes up the shortfall
    per_sector = [60, 60, 12, 60, 60, 60, 0, 60, 60, 60]
    x, y = plane(per_sector, 18.0)
    sectors = sampling.sector_bins(x, y, scale=None, axes="exclude")
    subset = sampling.equal_share_subset(sectors, size=400, n_bins=10, seed=0)
    assert np.bincount(sectors[subset], minlength=10).tolist() == [40, 40, 12, 40, 40, 40, 0, 40, 40, 40]
    assert subset.size == 400 - 28 - 40


def test_equal_share_subset_bad_inputs():
    with pytest.raises(ValueError, match="multiple"):
        sampling.equal_share_subset(np.zeros(10, dtype=int), size=400, n_bins=3)
    with pytest.raises(ValueError, match="n_bins"):
        sampling.equal_share_subset(np.array([0, 4]), size=400, n_bins=4)
    with pytest.raises(ValueError, match="size"):
        sampling.equal_share_subset(np.zeros(10, dtype=int), size=0, n_bins=4)
    with pytest.raises(ValueError, match="axes"):
        sampling.sector_bins([0.0, 1.0], [0.0, 1.0], axes="drop")


def test_export_round_trip(tmp_path):
    dataset_index = np.arange(100) * 10 + 3
    indices = np.array([2, 5, 7, 99])
    npy_path, csv_path = sampling.export_subset(indices, dataset_index, tmp_path / "sub" / "cifar10_333")
    assert npy_path.name == "cifar10_333.npy" and csv_path.name == "cifar10_333.csv"
    np.testing.assert_array_equal(np.load(npy_path), dataset_index[indices])
    table = pd.read_csv(csv_path)
    assert list(table.columns) == ["position", "dataset_index"]
    np.testing.assert_array_equal(table["position"], indices)
    np.testing.assert_array_equal(table["dataset_index"], dataset_index[indices])


# --- rays of the angular sectors ----------------------------------------------


@pytest.mark.parametrize("scale", ["range", None, (4.0, 0.5)])
def test_sector_rays_bound_the_angular_bins(scale):
    rng = np.random.default_rng(12)
    x = rng.uniform(0, 30, 300)
    y = rng.uniform(0, 6, 300)
    x[:2], y[:2] = (0.0, 30.0), (0.0, 6.0)  # fix the ranges and the centre (15, 0)
    centre, ends = sampling.sector_rays(x, y, step_deg=18.0, scale=scale, length=1.0)
    assert centre.tolist() == [15.0, 0.0] and ends.shape == (11, 2)
    # a point between rays k and k + 1 (the midpoint of their ends, scaled short enough to stay
    # inside the box of the data) falls in sector k
    between = centre + 0.2 * ((ends[:-1] + ends[1:]) / 2 - centre) / (1.0 if scale == "range" else 6.0)
    bins = sampling.angular_bins(np.r_[x, between[:, 0]], np.r_[y, between[:, 1]], step_deg=18.0, scale=scale)
    assert bins[300:].tolist() == list(range(FIRST_SECTOR, FIRST_SECTOR + 10))
    # the first and last rays lie on the zero-events axis
    assert ends[0, 1] == 0.0 and ends[-1, 1] == pytest.approx(0.0, abs=1e-12)
    assert ends[0, 0] > 15.0 > ends[-1, 0]


def test_sector_rays_bad_inputs():
    with pytest.raises(ValueError, match="step_deg"):
        sampling.sector_rays([0, 1], [0, 1], step_deg=7.0)
    with pytest.raises(ValueError, match="scale"):
        sampling.sector_rays([0, 1], [0, 1], scale="log")
    with pytest.raises(ValueError, match="1-D"):
        sampling.sector_rays([], [])
