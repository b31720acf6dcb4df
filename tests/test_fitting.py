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
