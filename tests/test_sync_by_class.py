import numpy as np
import pytest

from regutils.sync import (at_least_runs_by_class, long_term_counts, long_term_curves_by_class,
                           long_term_sync, split_by_class, sync_counts, sync_matrix, synchronized)


def test_sync_matrix_rows_are_synchronized():
    rng = np.random.default_rng(0)
    train = rng.random((7, 60)) < 0.4
    test = rng.random((7, 20)) < 0.2
    picks = [3, 0, 19, 3]
    m = sync_matrix(train, test, picks)
    assert m.shape == (4, 60) and m.dtype == bool
    for row, j in zip(m, picks):
        np.testing.assert_array_equal(row, synchronized(train, test[:, j]))
    np.testing.assert_array_equal(sync_matrix(train, test).sum(axis=1), sync_counts(train, test))


def test_curves_hand_case():
    # T = 3, R = 2. Test sample 0 (label 1) has an event at epoch 2 in both runs.
    # run 1: train 0 (label 1) and train 1 (label 0) forget at 2; run 2: only train 1 does.
    train = np.zeros((2, 3, 3), dtype=bool)
    train[0, 1, [0, 1]] = True
    train[1, 1, 1] = True
    train[1, 2, 2] = True
    test = np.zeros((2, 3, 2), dtype=bool)
    test[:, 1, 0] = True  # test sample 1 never has an event: all zeros
    same, different = long_term_curves_by_class(train, test, np.array([1, 0, 1]), np.array([1, 0]))
    np.testing.assert_array_equal(same, [[1, 0], [0, 0]])
    np.testing.assert_array_equal(different, [[1, 1], [0, 0]])


@pytest.mark.parametrize("rule", ["any", "all"])
@pytest.mark.parametrize("chunk", [1, 5, 256])
def test_curves_match_loop_reference(chunk, rule):
    rng = np.random.default_rng(3)
    n_runs, n_epochs, n_train, n_test = 4, 5, 150, 12
    train = rng.random((n_runs, n_epochs, n_train)) < 0.5
    test = rng.random((n_runs, n_epochs, n_test)) < 0.2
    y_train, y_test = rng.integers(0, 3, n_train), rng.integers(0, 3, n_test)
    picks = np.array([0, 5, 11, 2, 7, 9])
    same, different = long_term_curves_by_class(train, test, y_train, y_test, picks, chunk=chunk, rule=rule)
    assert same.shape == different.shape == (picks.size, n_runs)
    for row, j in enumerate(picks):
        np.testing.assert_array_equal(same[row] + different[row], long_term_counts(train, test, j, rule=rule))
        for k in range(1, n_runs + 1):
            synced = np.all([synchronized(train[r], test[r, :, j], rule=rule) for r in range(k)], axis=0)
            assert (same[row, k - 1], different[row, k - 1]) == split_by_class(
                synced, y_train, y_test[j])
    assert same[:, 0].sum() > 0 and different[:, 0].sum() > 0  # a non-trivial case
    assert np.all(np.diff(same, axis=1) <= 0) and np.all(np.diff(different, axis=1) <= 0)


def test_curves_bad_inputs():
    runs = np.zeros((2, 4, 3), dtype=bool)
    with pytest.raises(ValueError, match="train_labels"):
        long_term_curves_by_class(runs, runs, np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="test_labels"):
        long_term_curves_by_class(runs, runs, np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="runs and epochs"):
        long_term_curves_by_class(runs, runs[:1], np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="chunk"):
        long_term_curves_by_class(runs, runs, np.zeros(3), np.zeros(3), chunk=0)
    with pytest.raises(ValueError, match="epochs"):
        sync_matrix(np.zeros((4, 3), bool), np.zeros((5, 2), bool))


@pytest.mark.parametrize("rule", ["any", "all"])
@pytest.mark.parametrize("chunk", [2, 256])
def test_at_least_runs_match_long_term_sync(chunk, rule):
    rng = np.random.default_rng(6)
    n_runs, n_epochs, n_train, n_test = 4, 4, 120, 9
    train = rng.random((n_runs, n_epochs, n_train)) < 0.5
    test = rng.random((n_runs, n_epochs, n_test)) < 0.25
    y_train, y_test = rng.integers(0, 2, n_train), rng.integers(0, 2, n_test)
    picks = np.array([8, 0, 3, 4])
    same, different = at_least_runs_by_class(train, test, y_train, y_test, picks, chunk=chunk, rule=rule)
    assert same.shape == different.shape == (picks.size, n_runs)
    for row, j in enumerate(picks):
        for m in range(1, n_runs + 1):
            synced = long_term_sync(train, test, j, min_runs=m, rule=rule)
            assert (same[row, m - 1], different[row, m - 1]) == split_by_class(
                synced, y_train, y_test[j])
    assert same[:, 1].sum() > 0  # some pairs are synchronized in two runs or more
    # all of the first R runs is the same as at least R runs
    all_same, all_different = long_term_curves_by_class(train, test, y_train, y_test, picks, rule=rule)
    np.testing.assert_array_equal(same[:, -1], all_same[:, -1])
    np.testing.assert_array_equal(different[:, -1], all_different[:, -1])
