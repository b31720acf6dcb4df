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
    assert measures.malgeneralizing_events is measures.forgetting_events
    assert measures.cbgl is measures.cbtl


def test_toneva_forgetting_uses_the_same_count():
    c = np.column_stack([[0] * 6, SEQ])
    assert measures.toneva_forgetting(c).tolist() == [0, 2]
    assert measures.toneva_forgetting(c, never_learned="max").tolist() == [6, 2]


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


def test_summarize_averages_over_runs():
    runs = np.stack([column(SEQ), column([1, 1, 1, 1, 1, 1])])  # (2, 6, 1)
    prob = np.stack([np.full((6, 1), 0.25), np.full((6, 1), 0.75)])
    s = measures.summarize(runs, prob)
    assert s.cbtl.tolist() == [4.5]
    assert s.events.tolist() == [1.0]
    assert s.first_learned.tolist() == [1.5]
    assert s.learnability.tolist() == [0.5]
    assert measures.summarize(runs).learnability is None


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
    np.testing.assert_array_equal(measures.event_epochs(c).sum(axis=-2), ev)
