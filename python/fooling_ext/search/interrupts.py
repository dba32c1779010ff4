"""Ctrl-C at a generation's boundary: what evolve() uses so that an interrupted run saves one consistent state."""

from __future__ import annotations

import signal
import threading


class GenerationBoundaryInterrupts:
    """Ctrl-C (SIGINT) during a generation takes effect when that generation's bookkeeping is done (archive
    updated, metrics row written, checkpoint if due), so that what Ctrl-C saves is one consistent state: a
    checkpoint whose generation, archive and metrics agree. A second Ctrl-C interrupts at once. Only in the main
    thread, and only while SIGINT has Python's default handler (a host that handles SIGINT itself keeps it)."""

    def __init__(self) -> None:
        self.pending = False
        self._previous = None

    def generations(self, start: int, stop: int):
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._hold)
        for g in range(start, stop):
            if self.pending:
                self.pending = False
                raise KeyboardInterrupt
            yield g
        if self.pending:  # after the last generation: the run is complete, and ends as it would have
            self.pending = False

    def _hold(self, signum, frame) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
