import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from regutils import density, robustness
from regutils.stats import pairwise_measure_correlations
from regutils.trace import Trace


# --- stats.pairwise_measure_correlations ----------------------------------


def test_pairs_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    groups = {"a": {"m": x, "n": x}, "b": {"m": 2 * x + 1, "n": -x}, "c": {"m": x[::-1], "n": x ** 2}}
    table = pairwise_measure_correlations(groups)
    assert table.index.tolist() == [("a", "b"), ("a", "c"), ("b", "c")]
    assert table.index.names == ["a", "b"]
    assert list(table.columns) == ["m", "n"]
    assert table["m"].to_numpy() == pytest.approx([1.0, -1.0, -1.0])
    r = scipy.stats.pearsonr(x, x ** 2).statistic
    assert table["n"].to_numpy() == pytest.approx([-1.0, r, -r])
    assert pairwise_measure_correlations(groups, method="spearman")["n"].to_numpy() == pytest.approx([-1, 1, -1])


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (3, 2, 12), elements=st.floats(-100, 100, allow_nan=False)))
def test_against_a_loop_over_pairs(values):
    names = ["g0", "g1", "g2"]
    groups = {g: {"u": values[k, 0], "v": values[k, 1]} for k, g in enumerate(names)}
    table = pairwise_measure_correlations(groups)
    for (a, b), row in table.iterrows():
        for m in ("u", "v"):
            x, y = groups[a][m], groups[b][m]
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                assert np.isnan(row[m])
            elif np.std(x) > 1e-3 and np.std(y) > 1e-3:
                assert row[m] == pytest.approx(scipy.stats.pearsonr(x, y).statistic, abs=1e-9)


def test_bad_input():
    x = np.arange(5.0)
    with pytest.raises(ValueError, match="at least 2 groups"):
        pairwise_measure_correlations({"a": {"m": x}})
    with pytest.raises(ValueError, match="must match"):
        pairwise_measure_correlations({"a": {"m": x}, "b": {"n": x}})
    with pytest.raises(ValueError, match="one length"):
        pairwise_measure_correlations({"a": {"m": x}, "b": {"m": x[:4]}})
    with pytest.raises(ValueError, match="method"):
        pairwise_measure_correlations({"a": {"m": x}, "b": {"m": x}}, method="kendall")


# --- robustness.sample_measures --------------------------------------------


def make_trace(train_correct, test_correct):
    runs, epochs, n = train_correct.shape
    m = test_correct.shape[-1]
    return Trace(train_correct=train_correct, test_correct=test_correct,
                 train_prob=np.zeros((runs, epochs, n), np.float16), test_prob=np.zeros((runs, epochs, m), np.float16),
                 batch_correct=train_correct, batch_step=np.zeros((runs, epochs, n), np.int32),
                 y_train=np.zeros(n, np.int64), y_test=np.zeros(m, np.int64), index_train=np.arange(n),
                 index_test=np.arange(m), noisy_train=np.zeros(n, bool))


def test_sample_measures_by_hand():
    # 2 runs, 4 epochs; train samples: always right / right-wrong-right-wrong / never right
    train = np.array([[[1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 0]],
                      [[1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]]], bool)
    test = np.array([[[0, 1], [1, 0], [1, 1], [1, 0]],
                     [[0, 1], [0, 1], [1, 1], [1, 1]]], bool)
    got = robustness.sample_measures(make_trace(train, test))
    assert list(got) == list(robustness.MEASURES)
    assert got["CBTL"].tolist() == [4.0, 2.0, 0.0]  # (4 + 4) / 2, (2 + 2) / 2, 0
    assert got["forgetting"].tolist() == [0.0, 1.0, 0.0]  # run 1: 2 events, run 2: 0
    assert got["CBGL"].tolist() == [2.5, 3.0]
    assert got["mal-generalizing"].tolist() == [0.0, 1.0]
    assert got["train density"] == pytest.approx(density.density([4.0, 2.0, 0.0], [0.0, 1.0, 0.0]))
    assert got["test density"] == pytest.approx(density.density([2.5, 3.0], [0.0, 1.0]))
    # a radius of 3 holds sample 1's two neighbours, not the other pair (distance 4)
    at_3 = robustness.sample_measures(make_trace(train, test), radius=3.0)["train density"]
    assert at_3 * np.pi * 9 == pytest.approx([2, 3, 2])


# --- density correlations of pairs, paper values ------------------------------


def test_density_correlations_of_identical_planes_are_one():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 20, 60) / 2.0, rng.integers(0, 4, 60) / 1.0
    got = robustness.density_correlations({"a": (x, y), "b": (x.copy(), y.copy()), "c": (3 * x, 3 * y)}, n_boot=50)
    assert list(got) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert got["a", "b"].r == pytest.approx(1.0)
    # scaling the plane scales the default radius with it: the same neighbours, the same normalized density
    assert got["a", "c"].r == pytest.approx(1.0)


def test_density_correlations_follow_a_permutation_of_the_samples():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 10, 40) / 1.0, rng.integers(0, 3, 40) / 1.0
    perm = rng.permutation(40)
    got = robustness.density_correlations({"a": (x, y), "b": (x[perm], y[perm])}, radius=1.5, n_boot=50)
    d = density.density(x, y, 1.5)
    assert got["a", "b"].r == pytest.approx(scipy.stats.pearsonr(d, d[perm]).statistic)
    assert got["a", "b"].low <= got["a", "b"].r <= got["a", "b"].high


def test_density_correlations_by_hand():
    # group a: three points together and one apart -> densities (3, 3, 3, 1) / (pi r^2);
    # group b moves sample 0 away from the others -> (1, 2, 2, 1): Pearson of the two by hand
    a = (np.array([0.0, 0.5, 1.0, 10.0]), np.zeros(4))
    b = (np.array([-5.0, 0.5, 1.0, 10.0]), np.zeros(4))
    got = robustness.density_correlations({"a": a, "b": b}, radius=1.0, n_boot=20)["a", "b"].r
    assert got == pytest.approx(np.corrcoef([3, 3, 3, 1], [1, 2, 2, 1])[0, 1])


def test_density_correlations_bad_input():
    x = np.arange(5.0)
    with pytest.raises(ValueError, match="at least 2 groups"):
        robustness.density_correlations({"a": (x, x)})
    with pytest.raises(ValueError, match="same samples"):
        robustness.density_correlations({"a": (x, x), "b": (x[:4], x[:4])})


def test_planes_pick_each_splits_measures():
    m = {name: np.full(3, k, float) for k, name in enumerate(robustness.MEASURES)}
    train = robustness.planes({"g": m}, "train")["g"]
    test = robustness.planes({"g": m}, "test")["g"]
    assert (train[0] is m["CBTL"]) and (train[1] is m["forgetting"])
    assert (test[0] is m["CBGL"]) and (test[1] is m["mal-generalizing"])
    with pytest.raises(ValueError, match="split"):
        robustness.planes({"g": m}, "validation")


def test_paper_values_in_either_order():
    assert robustness.paper_table2_value("CBTL", "resnet20", "resnet110") == 0.9935
    assert robustness.paper_table2_value("test density", "densenet_bc_100_12", "resnet20") == 0.8846
    assert robustness.paper_table2_value("CBTL", "mlp", "lenet") is None
    assert min(min(v) for v in robustness.TABLE2.values()) > robustness.TABLE2_BOUND  # the paper's sentence
    assert robustness.paper_fig11_value("train", "adamax", "sgd") == 0.6877
    assert robustness.paper_fig11_value("test", "sgd", "adagrad") == 0.8877
    assert robustness.paper_fig11_value("test", "sgd", "adam") is None
    with pytest.raises(ValueError, match="measure"):
        robustness.paper_table2_value("loss", "resnet20", "resnet32")
