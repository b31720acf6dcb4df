"""Every claim predicate on both sides of its threshold, and the verdict it gives."""
import math

import numpy as np
import pytest

from regutils.claims import (CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED, Tally, above, at_least,
                             at_most, below, between, greater_than, holds, less_than, verdict, within)
from regutils.stats import Corr


@pytest.mark.parametrize("test, passing, failing", [
    (at_least(0.88), 0.88, 0.8799),
    (above(1.0), 1.0001, 1.0),
    (at_most(0.5), 0.5, 0.5001),
    (below(0.0), -1e-9, 0.0),
    (between(0.2, 0.4), 0.4, 0.41),
    (between(0.2, 0.4), 0.2, 0.19),
    (within(0.8634, 0.05), 0.9133, 0.9135),
    (within(0.8634, 0.05), 0.8135, 0.8133),
    (greater_than(0.61, "the random subset"), 0.62, 0.61),
    (less_than(Corr(0.3, 0.2, 0.4, 10), "the other row"), 0.29, 0.3),
    (holds(), True, False),
    (holds(), np.bool_(True), np.bool_(False)),
])
def test_each_predicate_on_both_sides_of_its_threshold(test, passing, failing):
    assert test(passing) is True
    assert test(failing) is False
    assert verdict(test, passing) == REPRODUCED
    assert verdict(test, failing) == NOT_REPRODUCED


def test_correlations_are_tested_by_r_and_within_without_tolerance_by_their_interval():
    assert at_least(0.88)(Corr(0.9, 0.1, 0.95, 100))
    assert not at_least(0.88)(Corr(0.87, 0.86, 0.99, 100))
    inside, outside = Corr(0.97, 0.96, 0.99, 100), Corr(0.97, 0.95, 0.98, 100)
    assert within(0.9835)(inside) and not within(0.9835)(outside)
    assert within(0.9835)(Corr(0.97, math.nan, math.nan, 5)) is None   # no interval: undecided


def test_undecidable_values_and_declared_profiles_are_not_comparable():
    assert verdict(at_least(0.5), math.nan) == NOT_COMPARABLE
    assert verdict(at_least(0.5), None) == NOT_COMPARABLE
    assert verdict(at_least(0.5), Corr(math.nan, math.nan, math.nan, 0)) == NOT_COMPARABLE
    assert verdict(at_least(0.5), 0.9, comparable="needs 50,000 samples") == NOT_COMPARABLE
    assert verdict(at_least(0.5), 0.9, comparable=False) == NOT_COMPARABLE
    assert verdict(greater_than(math.nan, "x"), 0.9) == NOT_COMPARABLE
    assert verdict(None, 0.9) == CONTEXT


def test_texts_read_as_conditions():
    assert at_least(0.88).text == "≥ 0.88"
    assert above(1).text == "> 1"
    assert within(0.8634, 0.05).text == "within 0.8634 ± 0.05"
    assert within(0.9835).text == "interval contains 0.9835"
    assert greater_than(Corr(0.61, 0, 1, 3), "the random subset").text == "> the random subset (0.61)"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="tolerance"):
        within(0.5, -0.1)
    with pytest.raises(ValueError, match="low <= high"):
        between(1, 0)
    with pytest.raises(TypeError, match="boolean"):
        holds()(0.7)


def test_tally_counts_claims_but_not_context():
    tally = Tally.of([REPRODUCED, REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, CONTEXT])
    assert tally.claims == 4 and tally.counts[REPRODUCED] == 2
    assert tally.sentence("default").startswith("**2 of 4 claims reproduced** at the **default** profile")
    with pytest.raises(ValueError, match="unknown verdict"):
        Tally.of(["maybe"])
