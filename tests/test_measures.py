import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from regutils import measures

SEQ = [0, 1, 1, 0, 1, 0]  # one run, one sample, T = 6


def column(seq):
    """(T,) sequence -> (T, 1) array: one sample."""
    return np.asarray(seq)[:, None]


def loop_events(seq):
    """Reference: 1 -> 0 transitions with acc^0 = 0, by a plain loop."""
    count, prev = 0, 0
    for acc in seq:
        count += prev == 1 and acc == 0
        prev = acc
    return count


def loop_first_learned(seq):
    for t, acc in enumerate(seq, start=1):
        if acc:
            return t
    return len(seq) + 1


# (R, T, N) traces of random shape
traces = st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 7)).flatmap(
    lambda shape: arrays(bool, shape)
)


def test_hand_sequence():
    c = column(SEQ)
    assert measures.cbtl(c).tolist() == [3]
    assert measures.forgetting_events(c).tolist() == [2]
    assert measures.event_epochs_of(SEQ).tolist() == [4, 6]
    assert measures.first_learned_epoch(c).tolist() == [2]
    assert measures.event_mask(c)[:, 0].tolist() == [False, False, False, True, False, True]


def test_bool_and_int_inputs_agree():
    as_bool = column(SEQ).astype(bool)
    as_int = column(SEQ).astype(np.int8)
    for f in (measures.cbtl, measures.forgetting_events, measures.first_learned_epoch):
        np.testing.assert_array_equal(f(as_bool), f(as_int))


def test_never_learned_and_always_correct():
    # samples: never learned, always correct, the hand sequence
    c = np.column_stack([[0] * 6, [1] * 6, SEQ])
    assert measures.forgetting_events(c).tolist() == [0, 0, 2]
    assert measures.forgetting_events(c, never_learned="max").tolist() == [6, 0, 2]
    assert measures.first_learned_epoch(c).tolist() == [7, 1, 2]
    assert measures.cbtl(c).tolist() == [0, 6, 3]


def test_learnability_and_data_maps_by_hand():
    prob = np.array([[0.2, 1.0], [0.4, 1.0], [0.9, 0.4]], dtype=np.float32)  # T=3, N=2
    np.testing.assert_allclose(measures.learnability(prob), [0.5, 0.8], rtol=1e-6)
    confidence, variability = measures.data_maps(prob)
    np.testing.assert_allclose(confidence, [0.5, 0.8], rtol=1e-6)
    # population std: sqrt(mean((p - mean)^2))
    expected_var = [math.sqrt((0.09 + 0.01 + 0.16) / 3), math.sqrt((0.04 + 0.04 + 0.16) / 3)]
    np.testing.assert_allclose(variability, expected_var, rtol=1e-6)


def test_learnability_rank_highest_is_one_and_ties_average():
    ranks = measures.learnability_rank([0.1, 0.9, 0.5, 0.5])
    assert ranks.tolist() == [4.0, 1.0, 2.5, 2.5]


def test_average_over_runs_all_leading_axes():
    per_run = np.arange(12).reshape(2, 3, 2)
    np.testing.assert_allclose(measures.average_over_runs(per_run), per_run.reshape(6, 2).mean(0))


@pytest.mark.parametrize("bad", ["none", "Max", None, 0])
def test_bad_never_learned(bad):
    with pytest.raises(ValueError, match="never_learned"):
        measures.forgetting_events(column(SEQ), never_learned=bad)


@pytest.mark.parametrize("f", [measures.cbtl, measures.forgetting_events, measures.first_learned_epoch])
def test_rejects_1d_and_non_binary(f):
    with pytest.raises(ValueError, match="ndim >= 2"):
        f(np.array(SEQ))
    with pytest.raises(ValueError, match="0 and 1"):
        f(np.array([[0, 2], [1, 1]]))
    with pytest.raises(ValueError, match="ndim >= 2"):
        measures.learnability(np.array([0.1, 0.2]))


@settings(max_examples=60, deadline=None)
@given(traces)
def test_properties_against_loop_reference(c):
    n_runs, n_epochs, n_samples = c.shape
    cb = measures.cbtl(c)
    ev = measures.forgetting_events(c)
    ev_max = measures.forgetting_events(c, never_learned="max")
    first = measures.first_learned_epoch(c)
    assert cb.shape == ev.shape == first.shape == (n_runs, n_samples)
    assert (cb <= n_epochs).all()
    assert (ev <= math.ceil(n_epochs / 2)).all()
    for r in range(n_runs):
        for i in range(n_samples):
            seq = c[r, :, i].astype(int).tolist()
            assert ev[r, i] == loop_events(seq)
            assert ev_max[r, i] == (n_epochs if sum(seq) == 0 else loop_events(seq))
            assert first[r, i] == loop_first_learned(seq)
            assert cb[r, i] == sum(seq)
            epochs = [t for t in range(1, n_epochs + 1) if t > 1 and seq[t - 2] == 1 and seq[t - 1] == 0]
            assert measures.event_epochs_of(seq).tolist() == epochs
    # per-run computation equals stacking the single runs
    for f in (measures.cbtl, measures.forgetting_events, measures.first_learned_epoch, measures.event_mask):
        np.testing.assert_array_equal(f(c), np.stack([f(run) for run in c]))
    np.testing.assert_array_equal(measures.event_mask(c).sum(axis=-2), ev)


def test_differs_between_runs_by_hand():
    counts = np.array([[2, 0, 1], [2, 0, 3], [2, 1, 1]])  # (R=3, N=3)
    np.testing.assert_array_equal(measures.differs_between_runs(counts), [False, True, True])
    # same number of events, different epochs: the masks differ, the counts do not
    a = [0, 1, 0, 1, 1, 1]
    b = [0, 1, 1, 1, 0, 1]
    correct = np.stack([column(a), column(b)])  # (R=2, T=6, N=1)
    assert not measures.differs_between_runs(measures.forgetting_events(correct))[0]
    assert measures.differs_between_runs(measures.event_mask(correct))[0]
    assert not measures.differs_between_runs(np.stack([column(a), column(a)]))[0]


@pytest.mark.parametrize("bad", [np.zeros(4), np.zeros((1, 4))])
def test_differs_between_runs_needs_two_runs(bad):
    with pytest.raises(ValueError, match="R >= 2"):
        measures.differs_between_runs(bad)


def test_events_peak_inside_and_at_the_ends():
    measure = np.array([0, 0, 5, 5, 5, 10, 10])
    events = np.array([0, 1, 3, 2, 4, 1, 0])  # means 0.5, 3, 0.5: an intermediate peak
    peak = measures.events_peak(measure, events, min_group=2)
    assert (peak.at, peak.low, peak.high) == (5.0, 0.0, 10.0) and peak.interior
    falling = measures.events_peak(measure, [3, 3, 1, 1, 1, 0, 0], min_group=2)
    assert falling.at == 0.0 and not falling.interior  # peak at the lowest value: events only fall


def test_events_peak_ignores_small_groups_unless_all_are_small():
    measure = np.array([0, 5, 5, 10, 10])
    events = np.array([9, 1, 2, 0, 0])  # value 0 has the highest mean but a single sample
    peak = measures.events_peak(measure, events, min_group=2)
    assert (peak.at, peak.low, peak.high) == (5.0, 5.0, 10.0) and not peak.interior
    assert measures.events_peak(measure, events, min_group=3).at == 0.0  # no value has 3: all count


@pytest.mark.parametrize("kwargs, match", [
    (dict(measure=[1, 2], events=[1]), "1-D"),
    (dict(measure=[1, 2], events=[1, 2], min_group=0), "min_group"),
])
def test_events_peak_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        measures.events_peak(**kwargs)
