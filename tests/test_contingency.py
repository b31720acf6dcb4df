import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from regutils import contingency

# M right on samples 0, 1, 2; wrong on 3, 4.
M = np.array([1, 1, 1, 0, 0], bool)
# D over three epochs: learns 0 at epoch 1, then 1, then 3; forgets nothing M knows
D = np.array([[1, 0, 0, 0, 0],
              [1, 1, 0, 0, 0],
              [1, 1, 0, 1, 0]], bool)


def test_counts_hand_computed():
    table = contingency.contingency_counts(M, D)
    assert list(table.columns) == ["epoch", "T00", "T01", "T10", "T11"]
    assert table["epoch"].tolist() == [1, 2, 3]
    # epoch 1: M&D {0}; M only {1,2}; D only {}; neither {3,4}
    # epoch 2: M&D {0,1}; M only {2}; D only {}; neither {3,4}
    # epoch 3: M&D {0,1}; M only {2}; D only {3}; neither {4}
    assert table[["T00", "T01", "T10", "T11"]].to_numpy().tolist() == [
        [2, 0, 2, 1],
        [2, 0, 1, 2],
        [1, 1, 1, 2],
    ]


def test_ratios_hand_computed():
    table = contingency.ratios(contingency.contingency_counts(M, D))
    np.testing.assert_allclose(table["R_plus"], [1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(table["R_minus"], [0, 0, 1 / 2])
    np.testing.assert_allclose(table["R_pm"], [1 / 3, 2 / 3, 1 / 6])


def test_ratio_with_empty_denominator_is_nan():
    m = np.ones(4, bool)  # M right everywhere: R_minus has no samples
    table = contingency.ratios(contingency.contingency_counts(m, np.eye(4, dtype=bool)))
    assert table["R_minus"].isna().all() and table["R_pm"].isna().all()
    np.testing.assert_allclose(table["R_plus"], 0.25)


def test_runs_axis_gives_one_row_per_run_and_epoch():
    stacked = np.stack([D, ~D])
    table = contingency.contingency_counts(M, stacked)
    assert table["run"].tolist() == [0, 0, 0, 1, 1, 1]
    assert table["epoch"].tolist() == [1, 2, 3, 1, 2, 3]
    first = contingency.contingency_counts(M, D)
    np.testing.assert_array_equal(table.iloc[:3][["T00", "T01", "T10", "T11"]], first[["T00", "T01", "T10", "T11"]])


def loop_counts(m, d_t):
    counts = {"T00": 0, "T01": 0, "T10": 0, "T11": 0}
    for a, b in zip(m, d_t):
        counts[f"T{int(a)}{int(b)}"] += 1
    return counts


@settings(max_examples=60, deadline=None)
@given(st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 9)).flatmap(
    lambda shape: st.tuples(arrays(bool, shape[2]), arrays(bool, shape))))
def test_counts_match_a_loop_reference(pair):
    m, d = pair
    table = contingency.contingency_counts(m, d)
    for row in table.itertuples():
        assert {k: getattr(row, k) for k in contingency.COUNTS} == loop_counts(m, d[row.run, row.epoch - 1])
    sums = table[list(contingency.COUNTS)].sum(axis=1)
    assert (sums == m.size).all()


def test_shallow_only_sorted_by_fraction_of_runs_wrong():
    m = np.array([1, 1, 1, 0, 1], bool)
    final = np.array([[0, 1, 0, 0, 1],
                      [0, 1, 1, 0, 1],
                      [1, 1, 0, 0, 1]], bool)
    idx, wrong = contingency.shallow_only(m, final)
    # sample 3 is wrong for D but M is wrong too: excluded; 1 and 4 are never wrong for D
    assert idx.tolist() == [0, 2]
    np.testing.assert_allclose(wrong, [2 / 3, 2 / 3])
    idx1, wrong1 = contingency.shallow_only(m, final[1])
    assert idx1.tolist() == [0] and wrong1.tolist() == [1.0]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="deep_correct"):
        contingency.contingency_counts(M, D[:, :4])
    with pytest.raises(ValueError, match="0/1"):
        contingency.contingency_counts(M, D * 2)
    with pytest.raises(ValueError, match="contingency_counts"):
        contingency.ratios(contingency.contingency_counts(M, D).drop(columns="T00"))
    with pytest.raises(ValueError, match="shallow_correct"):
        contingency.contingency_counts(np.stack([M, M]), D)
    with pytest.raises(ValueError, match="deep_final_correct"):
        contingency.shallow_only(M, D[:, :4])


def test_first_learned_by_group_hand_computed():
    # D learns 0 at epoch 1, 1 at epoch 2, 3 at epoch 3; 2 and 4 are never right at the end
    got = contingency.first_learned_by_group(M, D)
    assert got == {"M right": 1.5, "M wrong": 3.0}
    # a second run in which D forgets sample 0 at the end and learns sample 2 at epoch 3
    d2 = np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 1, 1, 0, 0]], bool)
    got = contingency.first_learned_by_group(M, np.stack([D, d2]))
    assert got["M right"] == pytest.approx((1 + 2 + 2 + 3) / 4)  # run 1: samples 0, 1; run 2: samples 1, 2
    assert got["M wrong"] == 3.0
    assert np.isnan(contingency.first_learned_by_group(np.ones(5, bool), D)["M wrong"])
