"""The checks every value passes before it reaches the compiled core, which takes raw pointers and counts:
a wrong type, dtype, shape, layout, device or range is a ValueError naming the parameter, never a crash.

The same checks guard every other boundary (command-line options, configurations, the Python API), one
function per kind: :func:`check_real` (a finite number in a range), :func:`check_whole` (a whole number in a
range; a bool is not one), :func:`check_unique` (no value twice) and :func:`check_memory` (a size that can
exist). Each message names the parameter and the value."""

from __future__ import annotations

import math
import os
from typing import Any, Iterable, Sequence

import numpy as np
import torch


def check_tensor(
    t: Any,
    name: str,
    dtype: torch.dtype,
    shape: Sequence[int | None] | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Checks that t is a contiguous tensor of the given dtype, shape (None = any size on that axis) and
    device, and returns it. Raises ValueError naming the field and what was expected."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {t.dtype}")
    if shape is not None:
        if t.dim() != len(shape) or any(s is not None and s != n for s, n in zip(shape, t.shape)):
            want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            raise ValueError(f"{name} must have shape {want}, got {list(t.shape)}")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device}, expected {device}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous")
    return t


def check_int(name: str, value: object, low: int, high: int) -> int:
    """`value` as an int in [low, high); a ValueError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value < high:
        raise ValueError(f"{name} must be an int in [{low}, {high}), got {value!r}")
    return int(value)


def check_number(name: str, value: object) -> float:
    """`value` as a float; a ValueError naming `name` when it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def describe_range(low: float | None = None, high: float | None = None, *, low_open: bool = False,
                   high_open: bool = False) -> str:
    """A range in words, as the messages give it: "in [0, 1]", "in (0, 1]", "> 0", ">= 1", "<= 5" ("" for any)."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def in_range(value: float, low: float | None = None, high: float | None = None, *, low_open: bool = False,
             high_open: bool = False) -> bool:
    """Whether `value` lies in the range (NaN lies in none)."""
    if math.isnan(value):
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or not (value >= high if high_open else value > high)


def check_real(name: str, value: object, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """`value` as a float: a finite real number (not a bool) in the range given; a ValueError naming `name` and
    the value otherwise."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    try:
        real = float(value) if number else math.nan
    except OverflowError:  # an int beyond any float
        real = math.nan
    if not math.isfinite(real) or not in_range(real, low, high, low_open=low_open, high_open=high_open):
        within = describe_range(low, high, low_open=low_open, high_open=high_open)
        raise ValueError(f"{name} must be a finite number{' ' + within if within else ''}, got {value!r}")
    return real


def check_whole(name: str, value: object, low: int, high: int | None = None) -> int:
    """`value` as an int: a whole number (an int, not a bool nor a float) in [low, high] (high None: no upper
    bound); a ValueError naming `name` and the value otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not low <= value or (
            high is not None and value > high):
        raise ValueError(f"{name} must be a whole number {describe_range(low, high)}, got {value!r}")
    return int(value)


def check_unique(name: str, values: Iterable[Any]) -> None:
    """A ValueError naming `name` and the first value that comes twice."""
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{name} lists {value!r} twice")
        seen.add(value)


def physical_memory(device: Any = "cpu") -> int | None:
    """Bytes of memory on `device`: the machine's physical memory for the CPU, the GPU's for CUDA (None when
    it cannot be told)."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.get_device_properties(device).total_memory)
        except (RuntimeError, AssertionError):
            return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def check_memory(what: str, nbytes: int, device: Any = "cpu") -> None:
    """Refuse, before anything is allocated, `what` whose `nbytes` exceed the memory of `device`
    (:func:`physical_memory`): a ValueError saying the size it would need and the memory there is."""
    available = physical_memory(device)
    if available is not None and nbytes > available:
        where = "this machine's memory" if torch.device(device).type == "cpu" else f"the memory of {device}"
        raise ValueError(f"{what} would need {format_bytes(nbytes)}, more than {where} "
                         f"({format_bytes(available)})")


def index_tensor(index: torch.Tensor | Sequence[int], device: torch.device) -> torch.Tensor:
    """A 1-D int64 index on `device`, from a tensor (checked as it is) or any sequence of ints."""
    if not isinstance(index, torch.Tensor):
        index = torch.as_tensor(np.asarray(index, dtype=np.int64).reshape(-1), device=device)
    return check_tensor(index, "index", torch.int64, (None,), device)
