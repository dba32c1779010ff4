"""The checks of a single number or list at a boundary (command-line options, configurations, the Python API):
:func:`check_real` (a finite number in a range), :func:`check_whole` (a whole number in a range; a bool is not
one), :func:`check_unique` (no value twice). Each message names the parameter and the value. Free of torch and
NumPy, so the command line's parser can use them (`fooling --help` imports neither); core.checks re-exports
them beside the checks of tensors."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any


def describe_range(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> str:
    """A range in words, as the messages give it: "in [0, 1]", "in (0, 1]", "> 0", ">= 1", "<= 5" ("" for any)."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def in_range(
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> bool:
    """Whether `value` lies in the range (NaN lies in none)."""
    if math.isnan(value):
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or not (value >= high if high_open else value > high)


def check_real(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """`value` as a float: a finite real number (not a bool) in the range given; a ValueError naming `name` and
    the value otherwise."""
    try:  # NumPy's scalars are Real, its bool not
        real = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int beyond any float
        real = math.nan
    if not math.isfinite(real) or not in_range(real, low, high, low_open=low_open, high_open=high_open):
        within = describe_range(low, high, low_open=low_open, high_open=high_open)
        raise ValueError(f"{name} must be a finite number{' ' + within if within else ''}, got {value!r}")
    return real


def check_whole(name: str, value: object, low: int, high: int | None = None) -> int:
    """`value` as an int: a whole number (an int, not a bool nor a float) in [low, high] (high None: no upper
    bound); a ValueError naming `name` and the value otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not low <= int(value)
        or (high is not None and int(value) > high)
    ):
        raise ValueError(f"{name} must be a whole number {describe_range(low, high)}, got {value!r}")
    return int(value)


def check_unique(name: str, values: Iterable[Any]) -> None:
    """A ValueError naming `name` and the first value that comes twice."""
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{name} lists {value!r} twice")
        seen.add(value)
