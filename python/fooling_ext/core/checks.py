"""The checks every value passes before it reaches the compiled core, which takes raw pointers and counts:
a wrong type, dtype, shape, layout, device or range is a ValueError naming the parameter, never a crash.

The same checks guard every other boundary (command-line options, configurations, the Python API), one
function per kind: :func:`check_real` (a finite number in a range), :func:`check_whole` (a whole number in a
range; a bool is not one), :func:`check_unique` (no value twice) and :func:`check_memory` (a size that can
exist). Each message names the parameter and the value."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

# Re-exported (`name as name`): the number checks live in fooling_ext._checks, shared with the classifiers.
from fooling_ext._checks import (
    check_real as check_real,
    check_unique as check_unique,
    check_whole as check_whole,
    describe_range as describe_range,
    in_range as in_range,
)


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
        raise ValueError(f"{what} would need {format_bytes(nbytes)}, more than {where} ({format_bytes(available)})")


def index_tensor(index: torch.Tensor | Sequence[int], device: torch.device) -> torch.Tensor:
    """A 1-D int64 index on `device`, from a tensor (checked as it is) or any sequence of ints."""
    if not isinstance(index, torch.Tensor):
        index = torch.as_tensor(np.asarray(index, dtype=np.int64).reshape(-1), device=device)
    return check_tensor(index, "index", torch.int64, (None,), device)
