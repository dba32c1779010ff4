"""Module-level functions for Ray tasks in tests (a worker imports them by name: tests/ must be on its
PYTHONPATH)."""

from __future__ import annotations

import os


def square(x: int) -> int:
    return x * x


def refuse_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd input {x}")
    return x


def lose_worker(x: int) -> int:
    os._exit(1)  # the worker process dies, as one killed by the OOM killer would
