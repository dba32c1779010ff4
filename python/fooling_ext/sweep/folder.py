"""The sweep folder: ``sweep.json`` (the grid and every run's status, written only by the head), one evolve run
folder per run under ``runs/``, a log of each run's attempts under ``attempts/`` (written by the workers), and
the summaries over runs (docs/run-folder.md)::

    sweep.json               {"format": "fooling_ext.sweep", "version": 1, "spec": {...}, "runs": [...]}
    runs/<name>/             each run's evolve run folder
    attempts/<name>.jsonl    one line per start of the run: host, Ray node, pid, time, whether it resumed
    stop                     written by a head that stops early: the token its runs stop on
    summary.json             per run and per class: median, classes >= 99%, time (summary.py)
    summary.csv, summary_per_class.csv
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from fooling_ext._files import atomic_write_text
from fooling_ext.runs.folder import RunFolder, RunFolderError, folder_entries, read_json_object

SWEEP_FORMAT = "fooling_ext.sweep"
"""The "format" field of every sweep.json."""
SWEEP_VERSION = 1
"""The version of sweep.json this build writes and reads."""
STATUSES = ("pending", "running", "done", "failed")


class SweepFolder(RunFolder):
    """A sweep's folder; ``--overwrite`` removes the files and folders a sweep writes, and nothing else."""

    KIND = "sweep"
    FILES = ("sweep.json", "summary.json", "summary.csv", "summary_per_class.csv", "stop")
    DIRS = ("runs", "attempts")
    PATTERNS = ()
    DIR_ENTRIES = {"attempts": ("*.jsonl",)}
    SETUP_FILES = ("sweep.json",)

    sweep_path = property(lambda self: self.path / "sweep.json")
    config_path = sweep_path  # what marks the folder as holding a sweep
    runs_dir = property(lambda self: self.path / "runs")
    attempts_dir = property(lambda self: self.path / "attempts")
    stop_path = property(lambda self: self.path / "stop")  # a stopping head's token: its runs stop (sweep/run.py)

    @property
    def resume_path(self) -> Path:
        return self.sweep_path

    def _foreign_in_dir(self, folder: Path) -> list[Path]:
        if folder.name != "runs":
            return super()._foreign_in_dir(folder)
        found: list[Path] = []
        for run in folder_entries(folder):  # each a run folder the sweep started
            found += [run] if run.is_symlink() or not run.is_dir() else RunFolder.foreign_in(run)
        return found

    def run_path(self, name: str) -> Path:
        return self.runs_dir / name

    def attempts_path(self, name: str) -> Path:
        return self.attempts_dir / f"{name}.jsonl"

    # ----------------------------------------------------------------------------------------------
    def read_state(self) -> dict[str, Any]:
        """sweep.json, checked to be a sweep's."""
        state = read_json_object(self.sweep_path, "a fooling_ext sweep")
        if state.get("format") != SWEEP_FORMAT:
            raise RunFolderError(f"{self.sweep_path} is not a fooling_ext sweep")
        if state.get("version") != SWEEP_VERSION:
            raise RunFolderError(
                f"{self.sweep_path} has sweep version {state.get('version')}, this build reads {SWEEP_VERSION}"
            )
        if not isinstance(state.get("spec"), dict) or not isinstance(state.get("runs"), list):
            raise RunFolderError(f"{self.sweep_path} is incomplete: it needs spec and runs")
        return state

    def write_state(self, spec: dict[str, Any], runs: list[dict[str, Any]]) -> None:
        state = {"format": SWEEP_FORMAT, "version": SWEEP_VERSION, "spec": spec, "runs": runs}
        atomic_write_text(self.sweep_path, json.dumps(state, indent=2) + "\n")

    def attempts(self, name: str) -> list[dict[str, Any]]:
        """The recorded starts of a run (a line cut short by a kill is skipped)."""
        try:
            lines = self.attempts_path(name).read_text().splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records


def record_attempt(path: Path, *, resumed: bool, node: str | None = None) -> None:
    """Append one start of a run to its attempts log (called by the worker that runs it; `node` is its Ray
    node's id)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {
            "host": socket.gethostname(),
            "node": node,
            "pid": os.getpid(),
            "time": round(time.time(), 3),
            "resumed": resumed,
        }
    )
    with open(path, "a") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def run_progress(run_dir: Path) -> tuple[int, int]:
    """(generations, evaluations) a run has reached: summary.json when it finished, else the last row of
    metrics.csv; (0, 0) when it has not started."""
    summary = run_dir / "summary.json"
    if summary.is_file():
        try:
            data = json.loads(summary.read_text())
            return int(data["generations"]), int(data["evaluations"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            pass
    metrics = run_dir / "metrics.csv"
    try:
        with open(metrics, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return 0, 0
    for line in reversed(lines):
        fields = line.split(",")
        if len(fields) >= 12 and fields[0].isdigit():  # generation, ..., evaluations, seconds
            try:
                return int(fields[0]) + 1, int(fields[-2])
            except ValueError:
                return 0, 0
    return 0, 0


def run_is_complete(run_dir: Path, generations: int) -> bool:
    """Whether a run folder holds the finished run: its outputs written (summary.json last) at the full length."""
    if not (run_dir / "archive.npz").is_file():
        return False
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError, RecursionError):
        return False
    return isinstance(summary, dict) and summary.get("generations") == generations
