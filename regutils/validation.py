"""Checks of argument values shared across the package.

    from regutils.validation import is_int
    is_int(3), is_int(True), is_int(3.0)     # True, False, False
"""
from __future__ import annotations


def is_int(value) -> bool:
    """Whether ``value`` is an integer and not a bool (``True`` is an int to Python, never a count here)."""
    return isinstance(value, int) and not isinstance(value, bool)
