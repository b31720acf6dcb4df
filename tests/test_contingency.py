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


def test_counts_hand_computed_in_the_sources_orientation():
    # T_ab: a = D correct (rows), b = M correct (columns)
    table = contingency.contingency_counts(M, D)
    assert list(table.columns) == ["epoch", "T00", "T01", "T10", "T11"]
    assert table["epoch"].tolist() == [1, 2, 3]
    # epoch 1: both right {0}; M right, D wrong {1,2} (T01); D right, M wrong {} (T10); neither {3,4}
    # epoch 2: both right {0,1}; T01 {2}; T10 {}; neither {3,4}
    # epoch 3: both right {0,1}; T01 {2}; T10 {3}; neither {4}
    assert table[["T00", "T01", "T10", "T11"]].to_numpy().tolist() == [
        [2, 2, 0, 1],
        [2, 1, 0, 2],
        [1, 1, 1, 2],
    ]


def test_accuracies_are_the_sources_margins():
    # Accuracy(M) = (T01 + T11) / N, Accuracy(D) = (T10 + T11) / N
    table = contingency.contingency_counts(M, D)
    n = table[list(contingency.COUNTS)].sum(axis=1)
    np.testing.assert_allclose((table["T01"] + table["T11"]) / n, M.mean())
    np.testing.assert_allclose((table["T10"] + table["T11"]) / n, D.mean(axis=1))


def test_ratios_hand_computed():
    table = contingency.ratios(contingency.contingency_counts(M, D))
    np.testing.assert_allclose(table["R_plus"], [1 / 3, 2 / 3, 2 / 3])  # T11 / (T11 + T01)
    np.testing.assert_allclose(table["R_minus"], [0, 0, 1 / 2])  # T10 / (T10 + T00)
    np.testing.assert_allclose(table["R_pm"], [np.inf, np.inf, 4 / 3])  # R_plus / R_minus


def test_ratio_of_a_hand_written_table():
    # 10 samples: M right on 0..5; D right on 0..3 (M right) and on 6 (M wrong)
    m = np.arange(10) < 6
    d = np.isin(np.arange(10), [0, 1, 2, 3, 6])[None]
    row = contingency.ratios(contingency.contingency_counts(m, d)).iloc[0]
    assert (row.T00, row.T01, row.T10, row.T11) == (3, 2, 1, 4)
    assert row.R_plus == pytest.approx(4 / 6) and row.R_minus == pytest.approx(1 / 4)
    assert row.R_pm == pytest.approx((4 / 6) / (1 / 4))


@pytest.mark.parametrize("d_share", [0.25, 0.5, 0.75, 1.0])
def test_r_pm_is_one_when_d_and_m_are_independent(d_share):
    # D gets the same share right among the M-right and among the M-wrong samples: T11 T00 = T10 T01
    m = np.repeat([True, False], [40, 20])
    d = np.concatenate([np.arange(40) < d_share * 40, np.arange(20) < d_share * 20])
    row = contingency.ratios(contingency.contingency_counts(m, d[None])).iloc[0]
    assert row.R_pm == pytest.approx(1.0)
    assert row.T11 * row.T00 == row.T10 * row.T01


def test_r_pm_is_near_one_for_independent_random_d_and_m():
    rng = np.random.default_rng(0)
    m = rng.random(200_000) < 0.7
    d = rng.random((3, 200_000)) < [[0.2], [0.5], [0.9]]
    r_pm = contingency.ratios(contingency.contingency_counts(m, d))["R_pm"]
    np.testing.assert_allclose(r_pm, 1.0, atol=0.03)


def test_r_pm_above_one_when_d_favours_the_shallow_learnable_samples():
    m = np.repeat([True, False], [50, 50])
    d = np.concatenate([np.arange(50) < 40, np.arange(50) < 10])[None]  # 80 % vs 20 %
    assert contingency.ratios(contingency.contingency_counts(m, d))["R_pm"].iloc[0] == pytest.approx(4.0)


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
        counts[f"T{int(b)}{int(a)}"] += 1  # first index D, second M
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
