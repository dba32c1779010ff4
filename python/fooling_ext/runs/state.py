"""Whether an evolve run folder is complete, was stopped, or is being written now: read from config.json,
metrics.csv and the folder's lock, without torch (``fooling report`` and the gallery describe a run by it)."""

from __future__ import annotations

import csv
import errno
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

COMPLETE, INTERRUPTED, IN_PROGRESS = "complete", "interrupted", "in progress"

# The lock file a writing process holds (runs.folder.LOCK_NAME; repeated so that this module needs no torch).
_LOCK_NAME = ".fooling.lock"


@dataclass(frozen=True)
class RunState:
    """An evolve run's state: `status` is COMPLETE, INTERRUPTED (stopped by Ctrl-C, a kill or an error, and
    ``--resume`` continues it) or IN_PROGRESS (a live process holds the folder's lock); `generation` is how many
    generations finished, `generations` how many the run asks for."""

    status: str
    generation: int
    generations: int

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    def describe(self) -> str:
        """A few words for a report's heading: "finished", "interrupted after 33 of 3000 generations"..."""
        if self.status == COMPLETE:
            return f"finished, {self.generations} generations"
        if self.status == INTERRUPTED:
            return f"interrupted after {self.generation} of {self.generations} generations"
        return f"in progress, {self.generation} of {self.generations} generations"


def run_state(path: str | os.PathLike[str]) -> RunState:
    """The state of the evolve run in `path` (a ValueError when config.json is missing or unreadable)."""
    folder = Path(path)
    try:
        config = json.loads((folder / "config.json").read_text())
        generations = int(config["run"]["generations"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{folder} holds no readable evolve run configuration (config.json): {exc}") from None
    generation = _finished_generations(folder / "metrics.csv")
    if _locked_by_another_process(folder / _LOCK_NAME):
        return RunState(IN_PROGRESS, generation, generations)
    done = generation >= generations and (folder / "archive.npz").is_file()
    return RunState(COMPLETE if done else INTERRUPTED, generation, generations)


def _finished_generations(metrics: Path) -> int:
    """Generations with a complete row in metrics.csv (a row cut short by a kill does not count)."""
    try:
        with open(metrics, newline="") as fh:
            rows = [row for row in csv.DictReader(fh) if None not in row.values() and row.get("generation")]
    except FileNotFoundError:
        return 0
    try:
        return int(rows[-1]["generation"]) + 1 if rows else 0
    except ValueError:
        return len(rows)


def _locked_by_another_process(lock: Path) -> bool:
    """Whether a live process holds the folder's lock (the kernel drops a flock when its process ends)."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False
