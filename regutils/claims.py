"""Claims as tested predicates: what the paper says, stated so that a build can check it.

    from regutils.claims import at_least, within, greater_than, holds
    at_least(0.88)(0.91)                      # True
    within(0.8634, 0.05)(Corr(0.84, ...))     # |r - 0.8634| <= 0.05
    within(0.9835)(Corr(0.97, 0.96, 0.99))    # the paper's value inside the build's interval
    greater_than(other_corr, "the SGD-Adam pair")(corr)
    verdict(at_least(0.88), value)            # "reproduced" | "not reproduced" | "not comparable"

A *test* is a small callable object with a ``text`` that reads as the claim's condition
("≥ 0.88", "> the random subset's 0.61", "holds"). It returns True, False, or None when the
value cannot decide it (NaN, missing). :func:`verdict` turns that into one of the
:data:`VERDICTS`; a row may also be declared *not comparable at this profile* with a reason
(for example a claim about 50,000 samples on a 1,000-sample profile), and a row without a
test is *context*: shown, never counted.

Values may be numbers, booleans, or anything with ``r, low, high`` (:class:`regutils.stats.Corr`);
a test reads ``r`` as the value and the interval where it needs one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, CONTEXT = "reproduced", "not reproduced", "not comparable", "context"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, CONTEXT)


def _number(value) -> float | None:
    """The scalar a test compares: ``value.r`` for a correlation; None when there is none."""
    value = getattr(value, "r", value)
    if value is None or isinstance(value, str):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _interval(value) -> tuple[float, float] | None:
    low, high = getattr(value, "low", math.nan), getattr(value, "high", math.nan)
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return None
    return float(low), float(high)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True)
class Test:
    """A predicate on a value; ``text`` says it in the scorecard's "test" column."""

    text: str

    def __call__(self, value) -> bool | None:  # pragma: no cover - every test overrides it
        raise NotImplementedError


@dataclass(frozen=True)
class _Compare(Test):
    bound: float = 0.0
    op: str = ">="

    def __call__(self, value):
        x, b = _number(value), _number(self.bound)
        if x is None or b is None:
            return None
        return {">=": x >= b, ">": x > b, "<=": x <= b, "<": x < b}[self.op]


def at_least(bound: float) -> Test:
    """value ≥ bound."""
    return _Compare(f"≥ {_fmt(bound)}", bound, ">=")


def above(bound: float) -> Test:
    """value > bound (e.g. ``above(1)`` for "the ratio exceeds 1", ``above(0)`` for "positive")."""
    return _Compare(f"> {_fmt(bound)}", bound, ">")


def at_most(bound: float) -> Test:
    """value ≤ bound."""
    return _Compare(f"≤ {_fmt(bound)}", bound, "<=")


def below(bound: float) -> Test:
    """value < bound."""
    return _Compare(f"< {_fmt(bound)}", bound, "<")


def greater_than(other, label: str) -> Test:
    """value > other, where ``other`` is another row's value (a number or a correlation) named by ``label``."""
    x = _number(other)
    return _Compare(f"> {label}" + (f" ({_fmt(x)})" if x is not None else ""), other, ">")


def less_than(other, label: str) -> Test:
    """value < other, where ``other`` is another row's value named by ``label``."""
    x = _number(other)
    return _Compare(f"< {label}" + (f" ({_fmt(x)})" if x is not None else ""), other, "<")


@dataclass(frozen=True)
class _Within(Test):
    target: float = 0.0
    tolerance: float | None = None

    def __call__(self, value):
        if self.tolerance is not None:
            x = _number(value)
            return None if x is None else abs(x - self.target) <= self.tolerance
        interval = _interval(value)
        return None if interval is None else interval[0] <= self.target <= interval[1]


def within(target: float, tolerance: float | None = None) -> Test:
    """|value − target| ≤ tolerance; without a tolerance, the target lies in the value's interval."""
    if tolerance is not None and not tolerance >= 0:
        raise ValueError(f"tolerance must be a non-negative number, got {tolerance!r}")
    text = (f"within {_fmt(target)} ± {_fmt(tolerance)}" if tolerance is not None
            else f"interval contains {_fmt(target)}")
    return _Within(text, float(target), tolerance)


@dataclass(frozen=True)
class _Between(Test):
    low: float = 0.0
    high: float = 0.0

    def __call__(self, value):
        x = _number(value)
        return None if x is None else self.low <= x <= self.high


def between(low: float, high: float) -> Test:
    """low ≤ value ≤ high."""
    if not low <= high:
        raise ValueError(f"between needs low <= high, got {low!r} > {high!r}")
    return _Between(f"in [{_fmt(low)}, {_fmt(high)}]", float(low), float(high))


@dataclass(frozen=True)
class _Holds(Test):
    def __call__(self, value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"holds() tests a boolean observation, got {type(value).__name__}")
        return bool(value)


def holds(text: str = "holds") -> Test:
    """The value is a boolean observation computed by the chapter (True: the claim holds)."""
    return _Holds(text)


def verdict(test: Test | None, value, comparable: bool | str = True) -> str:
    """One of :data:`VERDICTS` for ``value`` under ``test``.

    ``comparable`` False (or a string: the reason) marks a claim this profile cannot test;
    a row without a test is context.
    """
    if test is None:
        return CONTEXT
    if comparable is not True:
        return NOT_COMPARABLE
    outcome = test(value)
    if outcome is None:
        return NOT_COMPARABLE
    return REPRODUCED if outcome else NOT_REPRODUCED


@dataclass
class Tally:
    """How many claims a set of rows reproduces."""

    counts: dict = field(default_factory=dict)

    @classmethod
    def of(cls, verdicts) -> "Tally":
        counts = {v: 0 for v in VERDICTS}
        for v in verdicts:
            if v not in counts:
                raise ValueError(f"unknown verdict {v!r}; allowed: {', '.join(VERDICTS)}")
            counts[v] += 1
        return cls(counts)

    @property
    def claims(self) -> int:
        """Rows that state a claim of the paper (context rows are not claims)."""
        return sum(n for v, n in self.counts.items() if v != CONTEXT)

    def sentence(self, profile: str | None = None) -> str:
        where = f" at the **{profile}** profile" if profile else ""
        return (f"**{self.counts[REPRODUCED]} of {self.claims} claims reproduced**{where} "
                f"({self.counts[NOT_REPRODUCED]} not reproduced, {self.counts[NOT_COMPARABLE]} not comparable "
                f"at this profile; {self.counts[CONTEXT]} context rows are not counted).")
