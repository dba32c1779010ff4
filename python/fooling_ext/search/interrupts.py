"""Ctrl-C or SIGTERM at a generation's boundary: what evolve() uses so that a stopped run saves one consistent
state."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

# What signal.signal takes and returns (typeshed's signal._HANDLER).
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class GenerationBoundaryInterrupts:
    """Ctrl-C (SIGINT) or SIGTERM (`kill`, `timeout`, a batch scheduler's stop) during a generation takes effect
    when that generation's bookkeeping is done (archive updated, metrics row written, checkpoint if due), so that
    what the stop saves is one consistent state: a checkpoint whose generation, archive and metrics agree, and
    the outputs of the finished generations. A second signal interrupts at once. Only in the main thread, and
    only for a signal whose handler is the default one (Python's for SIGINT, the system's for SIGTERM): a host
    that handles a signal itself keeps it, and a SIGINT that the shell ignores (a background job) stays ignored,
    so that SIGTERM is the way to stop such a run."""

    def __init__(self) -> None:
        self.pending = False
        self._previous: dict[int, _Handler] = {}

    def generations(self, start: int, stop: int) -> Iterator[int]:
        if threading.current_thread() is threading.main_thread():
            defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
            for signum, default in defaults.items():
                if signal.getsignal(signum) is default:
                    self._previous[signum] = signal.signal(signum, self._hold)
        for g in range(start, stop):
            if self.pending:
                self.pending = False
                raise KeyboardInterrupt
            yield g
        if self.pending:  # after the last generation: the run is complete, and ends as it would have
            self.pending = False

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
