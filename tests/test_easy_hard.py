import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regutils import easy_hard


# 2 runs, 4 epochs, 5 samples
RECORD = np.array([
    [[1, 1, 0, 0, 1], [1, 1, 0, 0, 1], [1, 0, 1, 0, 0], [1, 1, 1, 0, 1]],
    [[1, 1, 0, 0, 0], [1, 1, 0, 1, 1], [0, 1, 0, 0, 1], [1, 1, 1, 1, 1]],
], dtype=bool)


def test_easy_is_right_at_every_early_epoch_of_every_run():
    # window 1: samples right at epoch 1 in both runs: 0, 1 (4 is right in run 0 only)
    assert easy_hard.easy(RECORD, 1).tolist() == [0, 1]
    assert easy_hard.easy(RECORD, 2).tolist() == [0, 1]
    # epoch 3: sample 0 is wrong in run 1, sample 1 in run 0
    assert easy_hard.easy(RECORD, 3).tolist() == []
    assert easy_hard.easy(RECORD[0], 3).tolist() == [0]
    assert easy_hard.easy(RECORD[1], 4).tolist() == [1]


def test_a_late_forgetting_event_leaves_a_sample_easy():
    # learned at epoch 1, forgotten at the last epoch: easy for the early stage, not for "every epoch"
    record = np.array([[1, 0], [1, 0], [1, 1], [0, 1]], dtype=bool)
    assert easy_hard.easy(record, 3).tolist() == [0]
    assert easy_hard.easy(record, 4).tolist() == []


def test_hard_early_and_final():
    # early, window 1: wrong at epoch 1 in both runs: 2, 3
    assert easy_hard.hard(RECORD, 1).tolist() == [2, 3]
    # window 2: sample 3 is right at epoch 2 of run 1
    assert easy_hard.hard(RECORD, 2).tolist() == [2]
    # final: wrong after epoch 4 in both runs: none; in run 0 alone: sample 3
    assert easy_hard.hard(RECORD, stage="final").tolist() == []
    assert easy_hard.hard(RECORD[0], stage="final").tolist() == [3]


def test_easy_and_hard_are_disjoint():
    rng = np.random.default_rng(0)
    record = rng.random((3, 8, 200)) < 0.6
    for w in range(1, 9):
        assert np.intersect1d(easy_hard.easy(record, w), easy_hard.hard(record, w)).size == 0


def test_early_window():
    assert [easy_hard.early_window(t) for t in (1, 6, 10, 30, 200)] == [1, 1, 1, 3, 20]
    assert easy_hard.early_window(30, share=0.5) == 15


@pytest.mark.parametrize("call, message", [
    (lambda: easy_hard.easy(RECORD, 0), "window"),
    (lambda: easy_hard.easy(RECORD, 5), "window"),
    (lambda: easy_hard.easy(RECORD, 2.0), "window"),
    (lambda: easy_hard.hard(RECORD), "window"),
    (lambda: easy_hard.hard(RECORD, 2, stage="final"), "window"),
    (lambda: easy_hard.hard(RECORD, 2, stage="late"), "stage"),
    (lambda: easy_hard.early_window(0), "epochs"),
    (lambda: easy_hard.early_window(10, share=0), "share"),
])
def test_bad_arguments_name_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_hardest_and_easiest_by_hand():
    # mean CBTL over two runs: [3, 1, 2, 0, 2.5, 0.5]
    cbtl = np.array([[3, 1, 2, 0, 3, 1], [3, 1, 2, 0, 2, 0]])
    correct = np.arange(3)[None, :, None] < cbtl[:, None, :]  # (runs, T=3, N): correct at the first cbtl epochs
    assert easy_hard.hardest(correct, 0.5).tolist() == [1, 3, 5]
    assert easy_hard.easiest(correct, 0.5).tolist() == [0, 2, 4]
    assert easy_hard.easiest(correct, 1 / 6).tolist() == [0]


def test_hardest_per_class():
    cbtl = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    correct = np.arange(4)[:, None] < cbtl[None, :]
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert easy_hard.hardest(correct, 0.25, labels=labels).tolist() == [0, 4]


def test_complement():
    assert easy_hard.complement([1, 3], 5).tolist() == [0, 2, 4]


@given(st.sets(st.integers(0, 30)), st.sets(st.integers(0, 30)))
def test_jaccard_matches_python_sets(a, b):
    expected = len(a & b) / len(a | b) if a | b else 1.0
    assert easy_hard.jaccard(sorted(a), sorted(b)) == pytest.approx(expected)


def test_jaccard_matrix_is_symmetric_with_unit_diagonal():
    sets = [[0, 1, 2], [1, 2, 3], [7]]
    m = easy_hard.jaccard_matrix(sets)
    np.testing.assert_allclose(m, [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]])


def test_overlap_coefficient_by_hand():
    assert easy_hard.overlap_coefficient([1, 2], [0, 1, 2, 3, 4]) == 1.0  # nested
    assert easy_hard.overlap_coefficient([1, 2, 9], [0, 1, 2, 3]) == pytest.approx(2 / 3)
    assert easy_hard.overlap_coefficient([], [1]) == 1.0
    np.testing.assert_allclose(easy_hard.overlap_matrix([[0, 1], [1, 2, 3], [7]]),
                               [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]])


def test_chance_overlap_matches_simulation():
    rng = np.random.default_rng(1)
    n, n_a, n_b = 1000, 100, 600
    sims = [easy_hard.overlap_coefficient(rng.choice(n, n_a, replace=False), rng.choice(n, n_b, replace=False))
            for _ in range(300)]
    assert easy_hard.chance_overlap(n_a, n_b, n) == pytest.approx(np.mean(sims), abs=0.01)
    with pytest.raises(ValueError):
        easy_hard.chance_overlap(5, 2, 3)


def test_chance_jaccard_matches_simulation():
    rng = np.random.default_rng(0)
    n, n_a, n_b = 1000, 300, 500
    sims = [easy_hard.jaccard(rng.choice(n, n_a, replace=False), rng.choice(n, n_b, replace=False))
            for _ in range(300)]
    assert easy_hard.chance_jaccard(n_a, n_b, n) == pytest.approx(np.mean(sims), abs=0.005)
    assert easy_hard.chance_jaccard(n, n, n) == 1.0
    with pytest.raises(ValueError):
        easy_hard.chance_jaccard(5, 2, 3)


def loop_mean_distance(f):
    d = [np.sqrt(((f[i] - f[j]) ** 2).sum()) for i, j in itertools.combinations(range(len(f)), 2)]
    return np.mean(d)


def test_mean_pairwise_distance_matches_loop_reference():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(12, 2, 3))  # images are flattened
    assert easy_hard.mean_pairwise_distance(f) == pytest.approx(loop_mean_distance(f.reshape(12, -1)))
    labels = np.array([0] * 5 + [1] * 6 + [2])  # class 2 has no pair and is skipped
    flat = f.reshape(12, -1)
    expected = np.mean([loop_mean_distance(flat[:5]), loop_mean_distance(flat[5:11])])
    assert easy_hard.mean_pairwise_distance(f, labels) == pytest.approx(expected)
    assert easy_hard.mean_pairwise_distance([[1.0, 2.0], [4.0, 6.0]]) == pytest.approx(5.0)
    assert np.isnan(easy_hard.mean_pairwise_distance(f[:1]))


def test_mean_pairwise_distance_of_an_empty_or_single_set_is_nan():
    assert np.isnan(easy_hard.mean_pairwise_distance(np.zeros((0, 8, 8))))
    assert np.isnan(easy_hard.mean_pairwise_distance(np.zeros((0, 8, 8)), labels=np.zeros(0, int)))
    assert np.isnan(easy_hard.mean_pairwise_distance(np.ones((1, 4))))
