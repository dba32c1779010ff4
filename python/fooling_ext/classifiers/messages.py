"""How the classifier's errors name what went wrong: an exception's telling line, and a tensor shape."""

from __future__ import annotations

from collections.abc import Sequence


def first_line(exc: BaseException) -> str:
    """The line of an exception's message that says what went wrong: its first, except for TorchScript, which
    puts a traceback of the scripted code first and the error itself last."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    if len(lines) > 1 and "TorchScript interpreter" in lines[0]:
        name, sep, rest = lines[-1].partition(": ")
        return rest if sep and name == type(exc).__name__ else lines[-1]
    return lines[0]


def format_shape(shape: Sequence[int | None]) -> str:
    """``[N, 1, 28, 28]``: sizes that are free (symbolic, None) are shown as N."""
    return "[" + ", ".join("N" if size is None else str(size) for size in shape) + "]"
