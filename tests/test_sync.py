import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from regutils.measures import event_mask
from regutils.sync import (long_term_counts, long_term_sync, most_runs_with_sync, rise_with_events,
                           split_by_class, sync_counts, sync_matrix, synchronized)


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
# by hand, rule "all": E_j ⊆ F_i and E_j non-empty
SYNCED_BY_HAND = [{0, 2}, {0}, set(), {0}, {1}]
# by hand, rule "any": E_j ∩ F_i non-empty
SYNCED_ANY_BY_HAND = [{0, 2}, {0}, set(), {0, 2}, {1}]


def reference_synchronized(train, test_j, rule="any"):
    """Plain-loop reference: any: i shares an event epoch with j; all: j's event epochs ⊆ i's."""
    e_j = {t for t in range(test_j.size) if test_j[t]}
    out = np.zeros(train.shape[1], dtype=bool)
    for i in range(train.shape[1]):
        f_i = {t for t in range(train.shape[0]) if train[t, i]}
        out[i] = bool(e_j & f_i) if rule == "any" else bool(e_j) and e_j <= f_i
    return out


def random_events(rng, shape, p=0.3):
    return rng.random(shape) < p


@pytest.mark.parametrize("rule, by_hand", [("all", SYNCED_BY_HAND), ("any", SYNCED_ANY_BY_HAND)])
def test_synchronized_hand_trace(rule, by_hand):
    train = events_from_sets(TRAIN_SETS, 4)
    test = events_from_sets(TEST_SETS, 4)
    for j, expected in enumerate(by_hand):
        assert set(np.flatnonzero(synchronized(train, test[:, j], rule=rule))) == expected
    assert set(np.flatnonzero(synchronized(train, test[:, 0]))) == SYNCED_ANY_BY_HAND[0]  # any: default


# T = 6. Test samples with 1, 2 and 3 events; training samples sharing none, one or all of them.
RULE_TRAIN = [set(), {2}, {2, 4, 6}, {1, 3, 5}, {4}, {2, 4}]
RULE_TEST = [{2}, {2, 4}, {2, 4, 6}]
# by hand: any: {1, 2, 5}, {1, 2, 4, 5}, {1, 2, 4, 5}; all: {1, 2, 5}, {2, 5}, {2}
RULE_COUNTS = {"any": [3, 4, 4], "all": [3, 2, 1]}


@pytest.mark.parametrize("rule", ["any", "all"])
def test_rules_by_number_of_events(rule):
    train = events_from_sets(RULE_TRAIN, 6)
    test = events_from_sets(RULE_TEST, 6)
    np.testing.assert_array_equal(sync_counts(train, test, rule=rule), RULE_COUNTS[rule])
    np.testing.assert_array_equal(sync_matrix(train, test, rule=rule).sum(axis=1), RULE_COUNTS[rule])
    # a training sample sharing no epoch is never synchronized, one sharing all of them always
    for j in range(3):
        mask = synchronized(train, test[:, j], rule=rule)
        assert not mask[0] and not mask[3] and mask[2]


def test_count_rises_with_events_under_any():
    # synthetic record: every training sample forgets at random epochs; test sample j has k_j
    # events at random distinct epochs
    rng = np.random.default_rng(7)
    n_epochs, n_test = 30, 300
    train = rng.random((n_epochs, 2000)) < 0.05
    n_events = rng.integers(0, 8, n_test)
    test = np.zeros((n_epochs, n_test), dtype=bool)
    for j, k in enumerate(n_events):
        test[rng.choice(n_epochs, k, replace=False), j] = True
    any_counts = sync_counts(train, test, rule="any")
    all_counts = sync_counts(train, test, rule="all")
    means = [any_counts[n_events == k].mean() for k in range(1, 8)]
    assert np.all(np.diff(means) > 0)  # the union of forgotten sets grows with every event
    assert rise_with_events(n_events, any_counts) > 0.8
    assert rise_with_events(n_events, all_counts) < -0.5
    assert np.all(any_counts >= all_counts) and np.all(any_counts[n_events == 0] == 0)


def test_rise_with_events_edge_cases():
    assert rise_with_events([1, 2, 3, 0], [5, 7, 9, 100]) == pytest.approx(1.0)  # 0 events left out
    assert np.isnan(rise_with_events([0, 2, 2], [0, 3, 4]))  # one event count: undefined
    with pytest.raises(ValueError, match="events and counts"):
        rise_with_events([1, 2], [1, 2, 3])


def test_most_runs_with_sync():
    # three test samples, R = 3: synced in >= 1, 2, 3 runs
    counts = np.array([[5, 2, 0], [4, 1, 1], [3, 0, 0]])
    assert most_runs_with_sync(counts, k=1) == 3
    assert most_runs_with_sync(counts, k=2) == 2
    assert most_runs_with_sync(counts, k=3) == 1
    assert most_runs_with_sync(np.zeros((2, 3), int), k=1) == 0
    with pytest.raises(ValueError, match="k=0 must be a positive integer"):
        most_runs_with_sync(counts, k=0)


@pytest.mark.parametrize("rule, by_hand", [("all", SYNCED_BY_HAND), ("any", SYNCED_ANY_BY_HAND)])
def test_hand_trace_from_correctness(rule, by_hand):
    # the same trace as eval-mode correctness sequences (rows: samples, columns: epochs 1..4)
    train_correct = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [1, 0, 0, 1], [1, 1, 1, 1]], bool).T
    test_correct = np.array([[1, 0, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0],
                             [1, 1, 0, 1]], bool).T
    counts = sync_counts(event_mask(train_correct), event_mask(test_correct), rule=rule)
    np.testing.assert_array_equal(counts, [len(s) for s in by_hand])


@pytest.mark.parametrize("rule, by_hand", [("all", SYNCED_BY_HAND), ("any", SYNCED_ANY_BY_HAND)])
def test_sync_counts_hand_trace(rule, by_hand):
    train = events_from_sets(TRAIN_SETS, 4)
    test = events_from_sets(TEST_SETS, 4)
    np.testing.assert_array_equal(sync_counts(train, test, rule=rule), [len(s) for s in by_hand])


@pytest.mark.parametrize("rule", ["any", "all"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_sync_counts_matches_loop_reference(chunk, rule):
    rng = np.random.default_rng(0)
    train = random_events(rng, (6, 80), p=0.4)
    test = random_events(rng, (6, 50), p=0.2)
    expected = [reference_synchronized(train, test[:, j], rule).sum() for j in range(test.shape[1])]
    counts = sync_counts(train, test, chunk=chunk, rule=rule)
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() > 0  # the random case exercises non-trivial synchronization


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6).flatmap(lambda t: st.tuples(
    arrays(bool, (t, 9)), arrays(bool, (t,)))))
def test_synchronized_matches_reference_property(case):
    train, test_j = case
    for rule in ("any", "all"):
        np.testing.assert_array_equal(synchronized(train, test_j, rule=rule),
                                      reference_synchronized(train, test_j, rule))


def test_no_events_means_no_sync():
    train = np.ones((3, 5), dtype=bool)
    for rule in ("any", "all"):
        assert not synchronized(train, np.zeros(3, dtype=bool), rule=rule).any()


@pytest.mark.parametrize("rule", ["any", "all"])
def test_long_term_sync_and_counts(rule):
    rng = np.random.default_rng(1)
    n_runs, n_epochs = 5, 4
    train = random_events(rng, (n_runs, n_epochs, 200), p=0.5)
    test = random_events(rng, (n_runs, n_epochs, 10), p=0.25)
    for j in range(test.shape[2]):
        per_run = np.array([reference_synchronized(train[r], test[r, :, j], rule) for r in range(n_runs)])
        runs = long_term_sync(train, test, j, rule=rule)
        np.testing.assert_array_equal(runs, per_run.sum(axis=0))
        for m in (1, 3, n_runs):
            np.testing.assert_array_equal(long_term_sync(train, test, j, min_runs=m, rule=rule),
                                          per_run.sum(axis=0) >= m)
        curve = long_term_counts(train, test, j, rule=rule)
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
    with pytest.raises(ValueError, match="rule"):
        sync_counts(train, np.zeros((4, 2), dtype=bool), rule="some")
    with pytest.raises(ValueError, match="rule"):
        synchronized(train, np.zeros(4, dtype=bool), rule="some")
    with pytest.raises(ValueError, match="chunk"):
        sync_counts(train, np.zeros((4, 2), dtype=bool), chunk=0)
    runs = np.zeros((2, 4, 3), dtype=bool)
    with pytest.raises(ValueError, match="min_runs"):
        long_term_sync(runs, runs, 0, min_runs=3)
    with pytest.raises(ValueError, match="j must"):
        long_term_counts(runs, runs, 3)
    with pytest.raises(ValueError, match="train_labels"):
        split_by_class(np.zeros(3, dtype=bool), np.zeros(4), 0)
