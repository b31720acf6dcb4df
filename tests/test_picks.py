import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regutils import picks


# --- same measure, contrasting events ----------------------------------------


def test_contrast_by_hand():
    cbtl = np.array([10.0, 10.2, 9.9, 10.4, 20.0, 19.6, 20.3, 15.0])
    events = np.array([0.0, 3.0, 1.0, 2.0, 5.0, 0.5, 2.0, 9.0])
    fewest, most = picks.pick_same_measure_contrast(cbtl, events, [10, 20], k=1)
    assert fewest.tolist() == [[0], [5]]
    assert most.tolist() == [[1], [4]]
    fewest, most = picks.pick_same_measure_contrast(cbtl, events, [10], k=2)
    assert fewest.tolist() == [[0, 2]] and most.tolist() == [[1, 3]]
    assert fewest.dtype == np.int64


def test_contrast_respects_tolerance():
    cbtl = np.array([10.0, 10.6, 11.0, 9.4])
    events = np.array([1.0, 9.0, 0.0, 8.0])
    # 10.6 and 9.4 are outside tol=0.5 of 10; with tol=0.6 they are in
    with pytest.raises(ValueError, match="needs at least"):
        picks.pick_same_measure_contrast(cbtl, events, 10, k=1)
    fewest, most = picks.pick_same_measure_contrast(cbtl, events, 10, k=1, tol=0.6)
    assert (fewest[0, 0], most[0, 0]) == (0, 1)


def test_contrast_ties_follow_the_seed():
    cbtl = np.full(30, 5.0)
    events = np.zeros(30)
    draws = {tuple(picks.pick_same_measure_contrast(cbtl, events, 5, k=3, seed=s)[0][0]) for s in range(6)}
    assert len(draws) > 1
    a = picks.pick_same_measure_contrast(cbtl, events, 5, k=3, seed=1)
    b = picks.pick_same_measure_contrast(cbtl, events, 5, k=3, seed=1)
    np.testing.assert_array_equal(a[0], b[0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4)), min_size=8, max_size=60),
       st.integers(1, 3), st.integers(0, 99))
def test_contrast_properties(pairs, k, seed):
    cbtl, events = np.array(pairs, dtype=float).T
    values = [v for v in range(7) if np.count_nonzero(cbtl == v) >= 2 * k]
    if not values:
        return
    fewest, most = picks.pick_same_measure_contrast(cbtl, events, values, k=k, seed=seed)
    for j, v in enumerate(values):
        members = np.flatnonzero(cbtl == v)
        assert set(fewest[j]) <= set(members) and set(most[j]) <= set(members)
        assert not set(fewest[j]) & set(most[j])
        # the k smallest / largest event counts of the group, in order
        np.testing.assert_array_equal(events[fewest[j]], np.sort(events[members])[:k])
        np.testing.assert_array_equal(events[most[j]], np.sort(events[members])[::-1][:k])


def test_contrast_bad_inputs():
    with pytest.raises(ValueError, match="k=0 must be a positive integer"):
        picks.pick_same_measure_contrast([1, 1], [0, 1], 1, k=0)
    with pytest.raises(ValueError, match="tol"):
        picks.pick_same_measure_contrast([1, 1], [0, 1], 1, tol=-1)
    with pytest.raises(ValueError, match="1-D"):
        picks.pick_same_measure_contrast([1, 1], [0, 1, 2], 1)


# --- values with the widest contrast ----------------------------------------


def test_widest_contrast_values_by_hand():
    cbtl = np.array([1, 1, 2, 2, 2, 3, 3, 5, 5], dtype=float)
    events = np.array([0, 1, 0, 4, 2, 0, 3, 1, 1], dtype=float)
    # spreads: 1 -> 1, 2 -> 4, 3 -> 3, 5 -> 0 (4 has no samples)
    assert picks.widest_contrast_values(cbtl, events, 1).tolist() == [2.0]
    assert picks.widest_contrast_values(cbtl, events, 2).tolist() == [2.0, 3.0]
    assert picks.widest_contrast_values(cbtl, events, 2, min_gap=2).tolist() == [2.0, 5.0]  # 1 and 3 too close
    assert picks.widest_contrast_values(cbtl, events, 9).tolist() == [1.0, 2.0, 3.0, 5.0]
    assert picks.widest_contrast_values(cbtl, events, 9, min_count=3).tolist() == [2.0]


def test_widest_contrast_values_feed_the_contrast():
    rng = np.random.default_rng(0)
    cbtl = rng.integers(0, 30, 500) + rng.choice([0.0, 0.1, -0.1], 500)
    events = rng.integers(0, 6, 500).astype(float)
    values = picks.widest_contrast_values(cbtl, events, 3, min_count=2, min_gap=5)
    assert values.size == 3 and np.all(np.diff(values) >= 5)
    fewest, most = picks.pick_same_measure_contrast(cbtl, events, values)
    assert np.all(events[most[:, 0]] > events[fewest[:, 0]])


# --- spread over the plane ------------------------------------------------------


def test_spread_picks_the_corners_of_a_square():
    # a centre point and four corners, on axes of different units
    x = np.array([5.0, 0.0, 10.0, 0.0, 10.0, 5.0])
    y = np.array([50.0, 0.0, 0.0, 100.0, 100.0, 50.0])
    chosen = picks.spread_over_plane(x, y, 5)
    assert chosen[0] == 0  # nearest the centre, lowest index among the two
    assert sorted(chosen[1:].tolist()) == [1, 2, 3, 4]


def test_spread_against_a_loop_reference():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=200), rng.exponential(size=200) * 40
    chosen = picks.spread_over_plane(x, y, 7, start=11)
    px, py = (x - x.min()) / np.ptp(x), (y - y.min()) / np.ptp(y)
    ref = [11]
    for _ in range(6):
        dist = [min(np.hypot(px[i] - px[j], py[i] - py[j]) for j in ref) for i in range(200)]
        ref.append(int(np.argmax(dist)))
    assert chosen.tolist() == ref


def test_spread_stops_at_distinct_points():
    chosen = picks.spread_over_plane([1, 1, 2, 2], [0, 0, 3, 3], 4)
    assert len(chosen) == 2
    assert {(1, 0), (2, 3)} == {((1, 1, 2, 2)[i], (0, 0, 3, 3)[i]) for i in chosen}
    with pytest.raises(ValueError, match="start"):
        picks.spread_over_plane([1, 2], [0, 1], 2, start=5)


# --- quantiles of a score -------------------------------------------------------


def test_quantile_picks_by_hand():
    score = np.array([0.3, 0.9, 0.1, 0.5, 0.7])
    assert picks.pick_by_quantile(score, [0, 0.5, 1]).tolist() == [2, 3, 1]
    among = np.array([True, False, True, False, True])
    # candidates 0.3, 0.1, 0.7 -> sorted 2, 0, 4
    assert picks.pick_by_quantile(score, [1, 0.5, 0], among=among).tolist() == [4, 0, 2]


def test_quantile_bad_inputs():
    with pytest.raises(ValueError, match="quantiles"):
        picks.pick_by_quantile([1, 2, 3], [1.5])
    with pytest.raises(ValueError, match="among"):
        picks.pick_by_quantile([1, 2, 3], [0.5], among=[1, 0, 1])
    with pytest.raises(ValueError, match="no candidate"):
        picks.pick_by_quantile([1, 2, 3], [0.5], among=np.zeros(3, bool))


def test_pick_sync_examples_paper_samples_when_present():
    regularity = np.arange(10.0)
    eligible = np.zeros(10, dtype=bool)  # the paper's samples are taken whatever qualifies
    source = np.array([5, 889, 7, 521, 0, 5695, 1, 2, 3, 4])
    chosen, rule = picks.pick_sync_examples(regularity, eligible, source, wanted=(521, 5695, 889))
    np.testing.assert_array_equal(chosen, [3, 5, 1])
    assert "521, 5695, 889" in rule


def test_pick_sync_examples_by_regularity_otherwise():
    regularity = np.array([0.5, 9.0, 3.0, 7.0, 1.0, 4.0, 8.0])
    eligible = np.array([True, False, True, True, True, True, False])
    source = np.arange(7)  # 889 is missing: the rule picks by regularity
    chosen, rule = picks.pick_sync_examples(regularity, eligible, source, wanted=(521, 5, 889))
    # eligible regularities 0.5, 3, 7, 1, 4 -> highest 7 (index 3), middle 3 (index 2), lowest 0.5 (0)
    np.testing.assert_array_equal(chosen, [3, 2, 0])
    assert "highest, middle and lowest" in rule
    chosen, _ = picks.pick_sync_examples(regularity, np.eye(7, dtype=bool)[1] | np.eye(7, dtype=bool)[4])
    np.testing.assert_array_equal(chosen, [1, 4])
    chosen, rule = picks.pick_sync_examples(regularity, np.zeros(7, dtype=bool))
    assert chosen.size == 0 and "no test sample" in rule
    with pytest.raises(ValueError, match="eligible"):
        picks.pick_sync_examples(regularity, np.ones(6, dtype=bool))
