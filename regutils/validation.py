"""Declared checks of argument values: one constraint type per kind of value, one message format.

    from regutils.validation import Bool, Each, Int, OneOf, Real, check, check_fields, validate_params

    check("epochs", 0, Int(1, 10_000))     # ValueError: epochs=0 must be a positive integer, at most 10,000

    @validate_params(k=Int(1), radius=Real(0, low_open=True), chunk=Int(1, none=True))
    def pick(x, k=3, radius=1.0, chunk=None): ...

    @dataclass(frozen=True)
    class Config:
        epochs: int = 30
        CONSTRAINTS: ClassVar[dict] = {"epochs": Int(1, 10_000)}
        def validate(self):
            return check_fields(self, self.CONSTRAINTS)

``is_int`` is the package's meaning of "an integer": a Python int, never a bool (and never a numpy
integer, which configs would carry into JSON cache keys).
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from numbers import Integral
from numbers import Real as RealNumber
from typing import Callable


def is_int(value) -> bool:
    """Whether ``value`` is an integer and not a bool (``True`` is an int to Python, never a count here)."""
    return isinstance(value, int) and not isinstance(value, bool)


class Constraint:
    """A set of allowed values: ``ok(value)`` says whether one belongs, ``str()`` names the set."""

    none: bool = False  # None is allowed too

    def ok(self, value) -> bool:
        return (value is None and self.none) or (value is not None and self.holds(value))

    def holds(self, value) -> bool:  # pragma: no cover - every constraint overrides it
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def __str__(self) -> str:
        return self.describe() + (" or None" if self.none else "")


def _bounds(low, high, low_open: bool, high_open: bool) -> str:
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


@dataclass(frozen=True)
class Int(Constraint):
    """An integer (not a bool) in ``[low, high]``; a None bound is no bound.

    ``strict``: a Python int only (config fields, which go into JSON cache keys); otherwise numpy
    integers count too.
    """

    low: int | None = None
    high: int | None = None
    none: bool = False
    strict: bool = False

    def holds(self, value) -> bool:
        kind = is_int(value) if self.strict else isinstance(value, Integral) and not isinstance(value, bool)
        return kind and (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        kind = {1: "a positive integer", 0: "a non-negative integer"}.get(
            self.low, "an integer" if self.low is None else f"an integer >= {self.low}")
        return kind + ("" if self.high is None else f", at most {self.high:,}")


@dataclass(frozen=True)
class Real(Constraint):
    """A finite real number (not a bool) between ``low`` and ``high``, each bound closed unless said open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    none: bool = False

    def holds(self, value) -> bool:
        if not isinstance(value, RealNumber) or isinstance(value, bool) or not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return "a finite number " + _bounds(self.low, self.high, self.low_open, self.high_open)
        if self.low == 0:
            return "a positive number" if self.low_open else "a non-negative finite number"
        if self.low is not None:
            return f"a number {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"a number {'<' if self.high_open else '<='} {self.high:g}"
        return "a finite number"


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of ``options``: a tuple, or a function returning them (for registries filled at import time)."""

    options: tuple | Callable[[], tuple]
    none: bool = False

    def allowed(self) -> tuple:
        return tuple(self.options()) if callable(self.options) else tuple(self.options)

    def holds(self, value) -> bool:
        return isinstance(value, str) and value in self.allowed()

    def describe(self) -> str:
        return "one of " + ", ".join(self.allowed())


@dataclass(frozen=True)
class Bool(Constraint):
    """True or False (not 0 or 1)."""

    none: bool = False

    def holds(self, value) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "True or False"


@dataclass(frozen=True)
class Each(Constraint):
    """A non-empty list or tuple whose every element satisfies ``element``."""

    element: Constraint
    none: bool = False

    def holds(self, value) -> bool:
        return isinstance(value, (list, tuple)) and len(value) > 0 and all(self.element.ok(v) for v in value)

    def describe(self) -> str:
        return f"a non-empty list, each {self.element}"


def check(name: str, value, constraint: Constraint, error: type[Exception] = ValueError):
    """``value`` if ``constraint`` allows it; ``error("name=value must be ...")`` otherwise."""
    if not constraint.ok(value):
        raise error(f"{name}={value!r} must be {constraint}")
    return value


def check_fields(obj, constraints: dict[str, Constraint], error: type[Exception] = ValueError):
    """Check every field of the dataclass instance ``obj`` named in ``constraints``; ``obj`` back."""
    for name, constraint in constraints.items():
        check(name, getattr(obj, name), constraint, error)
    return obj


def validate_params(**constraints: Constraint):
    """Decorator: check the named arguments of every call (defaults included) before the body runs."""

    def decorate(function):
        signature = inspect.signature(function)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{function.__qualname__} has no parameters {sorted(unknown)}")

        @functools.wraps(function)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, constraint in constraints.items():
                check(name, bound.arguments[name], constraint)
            return function(*args, **kwargs)

        return checked

    return decorate
