import numpy as np
import pandas as pd
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
