from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from regutils import fitting
from regutils.data import DataConfig
from regutils.train import RunConfig, train


def test_epochs_to_fit_by_hand():
    acc = np.array([[0.2, 0.9, 1.0, 1.0], [0.5, 0.99, 0.98, 1.0], [0.1, 0.2, 0.3, 0.4]])
    assert fitting.epochs_to_fit(acc, 1.0).tolist() == [3, 4, 5]  # never reached: T + 1
    assert fitting.epochs_to_fit(acc, 0.95).tolist() == [3, 2, 5]
    assert fitting.epochs_to_fit(acc[0], 0.9) == 2


@given(arrays(np.float64, (3, 7), elements=st.floats(0, 1)), st.floats(0.01, 1))
def test_epochs_to_fit_matches_loop_reference(acc, threshold):
    expected = []
    for row in acc:
        hits = [t + 1 for t, a in enumerate(row) if a >= threshold]
        expected.append(hits[0] if hits else len(row) + 1)
    assert fitting.epochs_to_fit(acc, threshold).tolist() == expected


def test_epochs_to_fit_rejects_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        fitting.epochs_to_fit([0.5, 1.0], 0.0)


def test_config_at_epoch_pins_the_full_schedule():
    config = RunConfig(epochs=30)
    early = fitting.config_at_epoch(config, 5)
    assert early.epochs == 5 and early.lr_milestones == config.lr_milestones == [12, 18]
    assert fitting.config_at_epoch(config, 30) is config
    with pytest.raises(ValueError, match="epoch"):
        fitting.config_at_epoch(config, 31)
    with pytest.raises(ValueError, match="cosine"):
        fitting.config_at_epoch(replace(config, schedule="cosine"), 3)


def test_config_at_epoch_repeats_the_first_epochs_of_the_full_run():
    # milestones at epoch 1 of 3: a shortened run without pinned milestones would never decay
    full = RunConfig(DataConfig("digits", train_size=120, test_size=40), arch="mlp", epochs=3, batch_size=32, seed=3)
    assert full.lr_milestones == [1, 2]
    part = train(fitting.config_at_epoch(full, 2), progress=False)
    whole = train(full, progress=False)
    np.testing.assert_array_equal(part.train_prob, whole.train_prob[:2])
    np.testing.assert_array_equal(part.history["lr"], whole.history["lr"][:2])


def test_peak_epoch_and_drop_by_hand():
    acc = np.array([[0.5, 0.8, 0.7, 0.6], [0.2, 0.3, 0.4, 0.9], [0.6, 0.9, 0.9, 0.5]])
    assert fitting.peak_epoch(acc).tolist() == [2, 4, 2]  # a tie goes to the earliest epoch
    np.testing.assert_allclose(fitting.drop_after_peak(acc), [0.2, 0.0, 0.4])
    assert fitting.peak_epoch([0.1]) == 1 and fitting.drop_after_peak([0.1]) == 0.0


@pytest.mark.parametrize("function", [fitting.peak_epoch, fitting.drop_after_peak])
def test_peak_functions_reject_empty_curves(function):
    with pytest.raises(ValueError, match=r"acc must have shape \(..., T\)"):
        function(np.zeros((2, 0)))


# --- judgements on times to fit (T = 10 epochs: 11 means "never reached")


def test_growth_bounds_by_hand():
    assert fitting.growth_bounds([3, 4, 7], 10) == (4.0, 4.0)
    assert fitting.growth_bounds([3, 11], 10) == (8.0, np.inf)  # the largest set never fitted
    assert fitting.growth_bounds([11, 5], 10) == (-np.inf, -6.0)  # the smallest never fitted
    assert fitting.growth_bounds([11, 11], 10) == (-np.inf, np.inf)


@pytest.mark.parametrize("times, expected", [
    ([2, 3, 6], True), ([4, 4], False), ([5, 3], False),  # reached at both ends
    ([2, 11], True),  # censored at the largest size: grows by at least 9
    ([11, 6], False), ([11, 11], None),
])
def test_fit_time_grows_on_both_sides(times, expected):
    assert fitting.fit_time_grows(np.array(times), 10) is expected


@pytest.mark.parametrize("times, reference, expected", [
    ([3, 8], [2, 3], True), ([3, 4], [2, 3], False), ([3, 3], [2, 4], False),  # growth 5 vs 1, 1 vs 1, 0 vs 2
    ([3, 11], [2, 5], True),  # at least 8 against 3
    ([3, 11], [2, 11], None),  # at least 8 against at least 9: open
    ([2, 3], [3, 11], False),  # 1 against at least 8
    ([11, 11], [2, 3], None),
])
def test_fit_time_grows_faster_on_both_sides(times, reference, expected):
    assert fitting.fit_time_grows_faster(np.array(times), np.array(reference), 10) is expected


@pytest.mark.parametrize("peak, fitted, expected", [(3, 7, True), (7, 7, False), (9, 4, False), (3, 11, None)])
def test_peak_before_fit_on_both_sides(peak, fitted, expected):
    assert fitting.peak_before_fit(peak, fitted, 10) is expected


@pytest.mark.parametrize("call, message", [
    (lambda: fitting.growth_bounds([3], 10), "S >= 2"),
    (lambda: fitting.growth_bounds([0.5, 3.0], 10), "integer array"),
    (lambda: fitting.growth_bounds([3, 12], 10), r"1\.\.11"),
    (lambda: fitting.growth_bounds([3, 4], 0), "epochs=0"),
    (lambda: fitting.fit_time_grows_faster([3, 4, 5], [3, 4], 10), "same sizes"),
    (lambda: fitting.peak_before_fit(11, 4, 10), "peak=11"),
    (lambda: fitting.peak_before_fit(3, 12, 10), r"1\.\.11"),
])
def test_judgements_reject_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_difficulty_dispersion_by_hand():
    # 4 runs: two samples always right, two always wrong: rates 0, 0, 1, 1, mean 0.5
    correct = np.array([[True, True, False, False]] * 4)
    assert fitting.difficulty_dispersion(correct) == pytest.approx((1 / 3) / (0.25 / 4))
    # rates 0.25, 0.25, 0.75, 0.75 (mean 0.5): variance 1/12 against 1/16
    correct = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=bool)
    assert fitting.difficulty_dispersion(correct) == pytest.approx((1 / 12) / (1 / 16))


def test_difficulty_dispersion_separates_equally_hard_from_mixed_samples():
    rng = np.random.default_rng(0)
    runs, n = 10, 4000
    same = rng.random((runs, n)) < 0.6  # every sample right with probability 0.6
    mixed = rng.random((runs, n)) < np.where(np.arange(n) % 2 == 0, 0.95, 0.25)  # easy and hard halves
    assert fitting.difficulty_dispersion(same) == pytest.approx(1.0, abs=0.1)
    assert fitting.difficulty_dispersion(mixed) > 3


def test_difficulty_dispersion_undefined_cases_and_bad_input():
    assert np.isnan(fitting.difficulty_dispersion(np.array([[True, False, True]])))  # one run
    assert np.isnan(fitting.difficulty_dispersion(np.ones((3, 4), dtype=bool)))  # nothing ever wrong
    with pytest.raises(ValueError, match="bool array of shape"):
        fitting.difficulty_dispersion(np.ones((3, 4)))
