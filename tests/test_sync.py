import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from regutils.measures import event_mask
from regutils.sync import (long_term_counts, long_term_sync, split_by_class, sync_counts,
                           synchronized)


def events_from_sets(epoch_sets, n_epochs):
    """(T, len(epoch_sets)) bool mask with True at the listed 1-based epochs."""
    mask = np.zeros((n_epochs, len(epoch_sets)), dtype=bool)
    for i, epochs in enumerate(epoch_sets):
        for t in epochs:
            mask[t - 1, i] = True
    return mask


# Tiny trace, T = 4. Forgetting epochs of 4 training samples, mal-generalizing epochs of 5 tests.
TRAIN_SETS = [{2, 4}, {3}, {2}, set()]
TEST_SETS = [{2}, {4}, set(), {2, 4}, {3}]
# by hand: E_j ⊆ F_i and E_j non-empty
SYNCED_BY_HAND = [{0, 2}, {0}, set(), {0}, {1}]


def reference_synchronized(train, test_j):
    """Plain-loop reference: train sample i synced with j when j's event epochs ⊆ i's."""
    e_j = {t for t in range(test_j.size) if test_j[t]}
    out = np.zeros(train.shape[1], dtype=bool)
    for i in range(train.shape[1]):
        f_i = {t for t in range(train.shape[0]) if train[t, i]}
        out[i] = bool(e_j) and e_j <= f_i
    return out


def random_events(rng, shape, p=0.3):
    return rng.random(shape) < p


def test_synchronized_hand_trace():
    train = events_from_sets(TRAIN_SETS, 4)
    test = events_from_sets(TEST_SETS, 4)
    for j, expected in enumerate(SYNCED_BY_HAND):
        assert set(np.flatnonzero(synchronized(train, test[:, j]))) == expected


def test_hand_trace_from_correctness():
    # the same trace as eval-mode correctness sequences (rows: samples, columns: epochs 1..4)
    train_correct = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [1, 0, 0, 1], [1, 1, 1, 1]], bool).T
    test_correct = np.array([[1, 0, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0],
                             [1, 1, 0, 1]], bool).T
    counts = sync_counts(event_mask(train_correct), event_mask(test_correct))
    np.testing.assert_array_equal(counts, [len(s) for s in SYNCED_BY_HAND])


def test_sync_counts_hand_trace():
    train = events_from_sets(TRAIN_SETS, 4)
    test = events_from_sets(TEST_SETS, 4)
    np.testing.assert_array_equal(sync_counts(train, test), [len(s) for s in SYNCED_BY_HAND])


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_sync_counts_matches_loop_reference(chunk):
    rng = np.random.default_rng(0)
    train = random_events(rng, (6, 80), p=0.4)
    test = random_events(rng, (6, 50), p=0.2)
    expected = [reference_synchronized(train, test[:, j]).sum() for j in range(test.shape[1])]
    counts = sync_counts(train, test, chunk=chunk)
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() > 0  # the random case exercises non-trivial synchronization


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6).flatmap(lambda t: st.tuples(
    arrays(bool, (t, 9)), arrays(bool, (t,)))))
def test_synchronized_matches_reference_property(case):
    train, test_j = case
    np.testing.assert_array_equal(synchronized(train, test_j),
                                  reference_synchronized(train, test_j))


def test_no_events_means_no_sync():
    train = np.ones((3, 5), dtype=bool)
    assert not synchronized(train, np.zeros(3, dtype=bool)).any()


def test_long_term_sync_and_counts():
    rng = np.random.default_rng(1)
    n_runs, n_epochs = 5, 4
    train = random_events(rng, (n_runs, n_epochs, 200), p=0.5)
    test = random_events(rng, (n_runs, n_epochs, 10), p=0.25)
    for j in range(test.shape[2]):
        per_run = np.array([reference_synchronized(train[r], test[r, :, j]) for r in range(n_runs)])
        runs = long_term_sync(train, test, j)
        np.testing.assert_array_equal(runs, per_run.sum(axis=0))
        for m in (1, 3, n_runs):
            np.testing.assert_array_equal(long_term_sync(train, test, j, min_runs=m),
                                          per_run.sum(axis=0) >= m)
        curve = long_term_counts(train, test, j)
        assert curve.shape == (n_runs,)
        assert np.all(np.diff(curve) <= 0)
        expected = [per_run[:k].all(axis=0).sum() for k in range(1, n_runs + 1)]
        np.testing.assert_array_equal(curve, expected)
        assert curve[-1] == (runs == n_runs).sum()


def test_long_term_counts_hand_case():
    # two runs: run 1 is the hand trace; in run 2 only train sample 2 keeps test 0's epoch
    run1 = events_from_sets(TRAIN_SETS, 4)
    run2 = events_from_sets([{1}, {3}, {2, 3}, set()], 4)
    train = np.stack([run1, run2])
    test = np.stack([events_from_sets(TEST_SETS, 4)] * 2)
    np.testing.assert_array_equal(long_term_counts(train, test, 0), [2, 1])
    np.testing.assert_array_equal(long_term_sync(train, test, 0), [1, 0, 2, 0])


def test_split_by_class():
    rng = np.random.default_rng(2)
    mask = rng.random(300) < 0.3
    labels = rng.integers(0, 10, 300)
    same, different = split_by_class(mask, labels, 4)
    assert same + different == mask.sum()
    assert same == sum(1 for m, y in zip(mask, labels) if m and y == 4)
    assert split_by_class(np.array([True, True, False]), np.array([1, 2, 1]), 1) == (1, 1)


def test_bad_inputs():
    train = np.zeros((4, 3), dtype=bool)
    with pytest.raises(ValueError, match="epochs"):
        synchronized(train, np.zeros(5, dtype=bool))
    with pytest.raises(ValueError, match="bool"):
        sync_counts(train.astype(int), np.zeros((4, 2), dtype=bool))
    with pytest.raises(ValueError, match="chunk"):
        sync_counts(train, np.zeros((4, 2), dtype=bool), chunk=0)
    runs = np.zeros((2, 4, 3), dtype=bool)
    with pytest.raises(ValueError, match="min_runs"):
        long_term_sync(runs, runs, 0, min_runs=3)
    with pytest.raises(ValueError, match="j must"):
        long_term_counts(runs, runs, 3)
    with pytest.raises(ValueError, match="train_labels"):
        split_by_class(np.zeros(3, dtype=bool), np.zeros(4), 0)
