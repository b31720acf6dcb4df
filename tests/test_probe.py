import numpy as np
import pytest
from sklearn.svm import SVC

from regutils.probe import (NotEnoughSynchronized, binary_probe, fit_predict, probe_training_sets,
                            sync_svm_experiment, table1_training_sets)


def test_training_sets_replace_and_add():
    rng = np.random.default_rng(0)
    synced = np.zeros(50, dtype=bool)
    synced[[3, 9, 20]] = True
    sets = probe_training_sets(synced, 10, rng, mode="replace")
    with_set, without = sets["with_synced"], sets["without_synced"]
    assert set(sets) == {"with_synced", "without_synced"}
    assert with_set.size == without.size == 10
    assert not synced[without].any()
    assert set(with_set) == set(without[:7]) | {3, 9, 20}
    sets = probe_training_sets(synced, 10, rng, mode="add")
    with_set, without = sets["with_synced"], sets["without_synced"]
    assert without.size == 10 and with_set.size == 13
    assert set(with_set) == set(without) | {3, 9, 20}
    # more synchronized samples than n_random: a random n_random of them only
    with_set = probe_training_sets(synced, 2, rng)["with_synced"]
    assert with_set.size == 2 and synced[with_set].all() and np.unique(with_set).size == 2


def test_training_sets_control():
    rng = np.random.default_rng(4)
    synced = np.zeros(60, dtype=bool)
    synced[[1, 2, 3]] = True
    pool = np.zeros(60, dtype=bool)
    pool[2] = True  # synchronized: never a stand-in
    pool[30:] = True
    for mode, size in (("replace", 10), ("add", 13)):
        sets = probe_training_sets(synced, 10, rng, mode=mode, control_pool=pool)
        control, without = sets["control"], sets["without_synced"]
        assert control.size == size and np.unique(control).size == size
        stand_ins = set(control) - set(without)
        assert len(stand_ins) == 3 and stand_ins <= set(range(30, 60))
        assert set(control) - stand_ins == set(without[:7] if mode == "replace" else without)
    # a pool smaller than S_j: all of it that the draw does not hold
    small = np.zeros(60, dtype=bool)
    small[[50, 51]] = True
    for _ in range(5):
        sets = probe_training_sets(synced, 10, rng, control_pool=small)
        stand_ins = {50, 51} - set(sets["without_synced"])
        kept = set(sets["without_synced"][:10 - len(stand_ins)])  # replace keeps the size N
        assert set(sets["control"]) == kept | stand_ins and sets["control"].size == 10


def test_training_sets_without_synchronized_samples():
    rng = np.random.default_rng(1)
    sets = probe_training_sets(np.zeros(30, dtype=bool), 30, rng)
    np.testing.assert_array_equal(np.sort(sets["with_synced"]), np.arange(30))
    np.testing.assert_array_equal(sets["with_synced"], sets["without_synced"])


def test_fit_predict_one_class_and_svc():
    assert fit_predict(np.zeros((3, 2)), np.array([4, 4, 4]), np.ones((2, 2))).tolist() == [4, 4]
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    q = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(fit_predict(x, y, q, {"C": 3.0}), SVC(C=3.0).fit(x, y).predict(q))


def synthetic_case(synced_class):
    """Class 0 around (0, 0) (200 samples), class 1 around (10, 10) (5 samples, synchronized).

    The test sample sits at (10, 10) with label 1. With synced_class=0 the 5 synchronized
    samples are relabelled 0 (they sit near the test sample but carry the wrong class).
    """
    rng = np.random.default_rng(3)
    x_train = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(10, 0.5, (5, 2))])
    y_train = np.concatenate([np.zeros(200, int), np.full(5, synced_class)])
    synced = np.zeros((1, 205), dtype=bool)
    synced[0, 200:] = True
    return x_train, y_train, np.array([[10.0, 10.0]]), np.array([1]), synced


def test_experiment_synchronized_samples_carry_the_class():
    x_train, y_train, x_test, y_test, synced = synthetic_case(synced_class=1)
    pool = np.ones(205, dtype=bool)  # the control stands in samples of class 0 for the 5
    result = sync_svm_experiment(x_train, y_train, x_test, y_test, synced, [0], n_random=20,
                                 repeats=3, control_pool=pool)
    # without: 20 samples of class 0 only -> predicts 0; with: 15 + the 5 of class 1 -> 1
    assert result.loc[0, "with_synced"] == 1.0
    assert result.loc[0, "without_synced"] == 0.0 and result.loc[0, "control"] == 0.0
    assert result.loc[0, "n_synced"] == 5 and result.loc[0, "label"] == 1


def test_experiment_wrong_class_synchronized_samples():
    x_train, y_train, x_test, y_test, synced = synthetic_case(synced_class=0)
    result = sync_svm_experiment(x_train, y_train, x_test, y_test, synced, [0], n_random=20,
                                 mode="add")
    assert result.loc[0, "with_synced"] == 0.0 and result.loc[0, "without_synced"] == 0.0


def test_experiment_matches_manual_protocol():
    rng = np.random.default_rng(5)
    x_train, y_train = rng.normal(size=(80, 4)), rng.integers(0, 3, 80)
    x_test, y_test = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    picks = np.array([4, 1, 5])
    synced = rng.random((3, 80)) < 0.1
    pool = rng.random(80) < 0.3
    result = sync_svm_experiment(x_train, y_train, x_test, y_test, synced, picks, n_random=25,
                                 repeats=2, seed=9, control_pool=pool)
    replay = np.random.default_rng(9)
    expected = np.zeros((3, 3))
    for k, j in enumerate(picks):
        for _ in range(2):
            sets = probe_training_sets(synced[k], 25, replay, control_pool=pool)
            for column, name in enumerate(("with_synced", "without_synced", "control")):
                model = SVC().fit(x_train[sets[name]], y_train[sets[name]])
                expected[k, column] += model.predict(x_test[j:j + 1])[0] == y_test[j]
    np.testing.assert_allclose(result[["with_synced", "without_synced", "control"]].to_numpy(),
                               expected / 2)
    np.testing.assert_array_equal(result["test_index"], picks)
    np.testing.assert_array_equal(result["n_synced"], synced.sum(axis=1))


def test_bad_inputs():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="mode"):
        probe_training_sets(np.zeros(5, bool), 2, rng, mode="swap")
    with pytest.raises(ValueError, match="n_random"):
        probe_training_sets(np.array([True, False, False]), 3, rng)
    with pytest.raises(ValueError, match="control_pool"):
        probe_training_sets(np.zeros(5, bool), 2, rng, control_pool=np.zeros(4, bool))
    x, y = np.zeros((4, 2)), np.zeros(4, int)
    with pytest.raises(ValueError, match="synced"):
        sync_svm_experiment(x, y, x, y, np.zeros((2, 4), bool), [0], 2)
    with pytest.raises(ValueError, match="train_features"):
        sync_svm_experiment(x[:3], y, x, y, np.zeros((1, 4), bool), [0], 2)
    with pytest.raises(ValueError, match="repeats"):
        sync_svm_experiment(x, y, x, y, np.zeros((1, 4), bool), [0], 2, repeats=0)


def table1_case(n_train=1500, n_synced_same=30, n_synced_other=40, seed=0):
    """Labels 0..4; the first n_synced_same samples of class 2 and the first n_synced_other of
    other classes are synchronized with a test sample of class 2."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n_train)
    synced = np.zeros(n_train, dtype=bool)
    synced[np.flatnonzero(labels == 2)[:n_synced_same]] = True
    synced[np.flatnonzero(labels != 2)[:n_synced_other]] = True
    return labels, synced


@pytest.mark.parametrize("n", [46, 100, 460])
def test_table1_sets_hold_23_plus_23(n):
    labels, synced = table1_case()
    rng = np.random.default_rng(1)
    for _ in range(5):
        sets = table1_training_sets(synced, labels, 2, n, rng)
        for name, rows in sets.items():
            assert rows.size == n and np.unique(rows).size == n, name
        with_set = sets["with_synced"]
        assert np.count_nonzero(synced[with_set] & (labels[with_set] == 2)) == 23
        assert np.count_nonzero(synced[with_set] & (labels[with_set] != 2)) == 23
        assert not synced[sets["without_synced"]].any() and not synced[sets["control"]].any()
        # the control differs from "with" only in its 46 stand-ins, of the same class mix
        shared = np.intersect1d(with_set, sets["control"])
        assert shared.size == n - 46
        stand_ins = np.setdiff1d(sets["control"], shared)
        assert np.count_nonzero(labels[stand_ins] == 2) == 23


def test_table1_sets_refuse_too_few_synchronized():
    labels, synced = table1_case(n_synced_same=22)
    with pytest.raises(NotEnoughSynchronized, match="22 synchronized samples of its class"):
        table1_training_sets(synced, labels, 2, 100, np.random.default_rng(0))
    labels, synced = table1_case(n_synced_other=5)
    with pytest.raises(NotEnoughSynchronized, match="5 synchronized samples of other classes"):
        table1_training_sets(synced, labels, 2, 100, np.random.default_rng(0))
    labels, synced = table1_case()
    with pytest.raises(ValueError, match="n must be"):
        table1_training_sets(synced, labels, 2, 40, np.random.default_rng(0))


def test_binary_probe_synchronized_samples_carry_the_class():
    # class 1 lives near (10, 10) and only its synchronized samples sit there; the others are
    # far away near (-10, -10), so only "with" sees positives next to the test sample
    rng = np.random.default_rng(3)
    labels = np.concatenate([np.ones(23, int), np.zeros(23, int), np.zeros(300, int), np.ones(300, int)])
    x = np.concatenate([rng.normal(10, 0.5, (23, 2)), rng.normal(10, 0.5, (23, 2)) + [0, 3],
                        rng.normal(0, 1, (300, 2)), rng.normal(-10, 0.5, (300, 2))])
    synced = np.zeros(labels.size, dtype=bool)
    synced[:46] = True
    acc = binary_probe(x, labels, np.array([[10.0, 10.0]]), np.array([1]), synced, 0, n=100, repeats=5)
    assert acc["with_synced"] == 1.0
    assert acc["without_synced"] == 0.0 and acc["control"] == 0.0
    with pytest.raises(ValueError, match="j must"):
        binary_probe(x, labels, np.array([[10.0, 10.0]]), np.array([1]), synced, 1, n=100)
