import numpy as np
import pytest
import scipy.stats

from regutils import measures, stability
from regutils.trace import Trace


def make_trace(train_correct, test_correct, batch_correct=None, seconds=(1.0, 2.0)):
    runs, epochs, n = train_correct.shape
    m = test_correct.shape[-1]
    meta = {"runs": [{"train_seconds": s, "eval_seconds": 0.5} for s in np.resize(seconds, runs)]}
    return Trace(train_correct=train_correct, test_correct=test_correct,
                 train_prob=np.zeros((runs, epochs, n), np.float16), test_prob=np.zeros((runs, epochs, m), np.float16),
                 batch_correct=train_correct if batch_correct is None else batch_correct,
                 batch_step=np.zeros((runs, epochs, n), np.int32), y_train=np.zeros(n, np.int64),
                 y_test=np.zeros(m, np.int64), index_train=np.arange(n), index_test=np.arange(m),
                 noisy_train=np.zeros(n, bool), meta=meta)


def sample_records(rng, p_sample, runs, epochs):
    """Bool ``(runs, epochs, N)``: sample i right with probability p_sample[i] at every epoch, independently."""
    return rng.random((runs, epochs, p_sample.size)) < p_sample


def test_identical_runs_agree_perfectly():
    rng = np.random.default_rng(0)
    one_train = sample_records(rng, rng.random(400), 1, 12)
    one_test = sample_records(rng, rng.random(150), 1, 12)
    trace = make_trace(np.repeat(one_train, 4, axis=0), np.repeat(one_test, 4, axis=0))
    row = stability.summary(trace)
    for name in ("density_train", "density_test", "split_half_cbtl", "split_half_events", "split_half_cbgl",
                 "split_half_mg_events", "record_cbtl", "record_events", "single_run_cbtl"):
        assert row[name] == pytest.approx(1.0), name
    assert row["runs_for_cbtl"] == 2 and row["runs"] == 4 and row["epochs"] == 12
    assert all(stability.targets_met(row).values())


def test_independent_runs_agree_near_zero():
    # every sample has the same chance to be right: nothing but noise is shared between runs
    rng = np.random.default_rng(1)
    trace = make_trace(sample_records(rng, np.full(3000, 0.5), 6, 10), sample_records(rng, np.full(2000, 0.5), 6, 10))
    row = stability.summary(trace)
    for name in ("density_train", "density_test", "split_half_cbtl", "split_half_events", "split_half_cbgl",
                 "single_run_cbtl", "single_run_events"):
        assert abs(row[name]) < 0.08, name
    assert not stability.targets_met(row)["split_half_cbtl"]


def test_summary_by_hand():
    rng = np.random.default_rng(2)
    train = sample_records(rng, rng.random(300), 4, 8)
    test = sample_records(rng, rng.random(100), 4, 8)
    batch = train.copy()
    batch[:, :, :50] = ~batch[:, :, :50]  # the two records differ on some samples
    row = stability.summary(make_trace(train, test, batch, seconds=(1.0, 3.0)))
    assert row["test_acc"] == pytest.approx(test[:, -1].mean())
    assert row["seconds_per_run"] == pytest.approx(2.5)  # train 1, 3, 1, 3 plus eval 0.5 each
    expected = scipy.stats.pearsonr(measures.cbtl(train).ravel(), measures.cbtl(batch).ravel()).statistic
    assert row["record_cbtl"] == pytest.approx(expected)
    assert row["record_cbtl"] < 1


def test_split_half_of_two_runs_is_their_pearson():
    rng = np.random.default_rng(3)
    a, b = rng.random(50), rng.random(50)
    assert stability.split_half(np.stack([a, b])) == pytest.approx(scipy.stats.pearsonr(a, b).statistic)


def test_half_splits_are_disjoint_and_seeded():
    splits = stability.half_splits(7, 3, n_splits=10, seed=4)
    assert splits.shape == (10, 2, 3)
    for first, second in splits:
        assert not set(first) & set(second) and set(first) | set(second) <= set(range(7))
    np.testing.assert_array_equal(splits, stability.half_splits(7, 3, n_splits=10, seed=4))
    with pytest.raises(ValueError, match="per_half"):
        stability.half_splits(7, 4)
    with pytest.raises(ValueError, match="n_splits"):
        stability.half_splits(7, 3, n_splits=0)
    with pytest.raises(ValueError, match="R >= 2"):
        stability.split_half(np.zeros((1, 5)))


def test_spearman_brown_by_hand():
    assert stability.spearman_brown(0.5, 2) == pytest.approx(2 / 3)
    assert stability.spearman_brown(0.5, 1) == pytest.approx(0.5)
    assert stability.runs_needed(0.5, 0.95) == 38  # k = 0.95 * 0.5 / (0.5 * 0.05) = 19 per half
    assert stability.runs_needed(0.9, 0.95) == 6  # k = 2.11 -> 3 per half
    assert stability.runs_needed(0.0, 0.95) == float("inf") and stability.runs_needed(1.0, 0.95) == 2
    assert stability.spearman_brown(0.9, 3) >= 0.95 > stability.spearman_brown(0.9, 2)


def test_grows_with_runs_follows_spearman_brown():
    # per-run measure = shared signal + independent noise of equal variance: single-run reliability 0.5
    rng = np.random.default_rng(5)
    per_run = rng.standard_normal(20000) + rng.standard_normal((12, 20000))
    curve = stability.grows_with_runs(per_run, n_splits=5)
    assert list(curve["per_half"]) == [1, 2, 3, 4, 5, 6] and list(curve["runs"]) == [2, 4, 6, 8, 10, 12]
    np.testing.assert_allclose(curve["observed"], [k / (k + 1) for k in range(1, 7)], atol=0.02)
    np.testing.assert_allclose(curve["spearman_brown"], curve["observed"], atol=0.02)
    assert np.all(np.diff(curve["observed"]) > 0)


def test_smallest_between_configs():
    rng = np.random.default_rng(6)
    train = sample_records(rng, rng.random(500), 2, 10)
    test = sample_records(rng, rng.random(50), 2, 10)
    same = stability.smallest_between_configs({"a": make_trace(train, test), "b": make_trace(train, test)})
    assert same == pytest.approx(1.0)
    noise = sample_records(rng, np.full(500, 0.5), 2, 10)
    mixed = {"a": make_trace(train, test), "b": make_trace(train, test), "c": make_trace(noise, test)}
    assert stability.smallest_between_configs(mixed) < 0.5
    with pytest.raises(ValueError, match="at least 2"):
        stability.smallest_between_configs({"a": make_trace(train, test)})
