import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regutils import easy_hard


def test_easy_needs_every_epoch_of_every_run():
    # 2 runs, 3 epochs, 4 samples
    correct = np.array([
        [[1, 1, 0, 1], [1, 1, 1, 1], [1, 1, 1, 0]],
        [[1, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]],
    ], dtype=bool)
    assert easy_hard.easy(correct).tolist() == [0]
    assert easy_hard.easy(correct[1]).tolist() == [0, 2, 3]


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
