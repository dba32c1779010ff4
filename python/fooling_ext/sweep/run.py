"""A sweep: every run of a grid as a Ray task, each writing its evolve run folder under the sweep folder.

The process that calls :func:`run_sweep` is the head: it checks the specification and the folder, submits one
task per unfinished run, and records each run's status in ``sweep.json`` as the tasks start and end. The runs
write their own folders; on a cluster every host must see the sweep folder at the same path (a shared
filesystem; a task that cannot see it fails with a message saying so).

Resuming: runs whose folder holds the finished run are skipped; the others continue from their checkpoint (or
start over when they had not written one), and end in the same archive as an uninterrupted run. A worker that
dies mid-run is replaced by Ray (up to ``resources.max_retries`` times) and the run resumes in the same way.

Stopping: a head that stops early (Ctrl-C, an error of its own) never cancels a Ray task (sweep/ray_runner.py says
why). It writes ``stop`` in the sweep folder with its own token; each run reads it at every generation's end and
stops there as Ctrl-C stops evolve (checkpoint, readable outputs), and a run not yet started returns at once. The
head waits for them, so a resume finds the run folders free; a local Ray it started is shut down after that.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fooling_ext import _core
from fooling_ext._files import atomic_write_text
from fooling_ext.classifiers.loading import check_folder_model
from fooling_ext.runs.folder import RunFolder, RunFolderError, config_differences
from fooling_ext.search.config import EvolveConfig
from fooling_ext.search.evolve import RunInterrupted, evolve
from fooling_ext.sweep.folder import SweepFolder, record_attempt, run_is_complete, run_progress
from fooling_ext.sweep.ray_runner import (
    RayWorkerLost,
    limit_threads,
    ray_session,
    require_ray,
    task_options,
    task_result,
    task_threads,
)
from fooling_ext.sweep.spec import RunPoint, SweepSpec, SweepSpecError
from fooling_ext.sweep.summary import sweep_summary, write_summary

RATE_WINDOW_SECONDS = 30.0  # the evaluations per second shown are those of the last half minute
STOP_WAIT_SECONDS = 120.0  # how long a stopping head waits for its runs to reach the end of their generation


@dataclass(frozen=True)
class SweepProgress:
    """The whole sweep at one moment, as the head reports it."""

    total: int
    done: int
    running: int
    failed: int
    pending: int
    evaluations_per_second: float  # over all runs, in the last RATE_WINDOW_SECONDS

    def line(self) -> str:
        return (
            f"{self.done}/{self.total} done, {self.running} running, {self.failed} failed, "
            f"{self.pending} pending; {self.evaluations_per_second:,.0f} evaluations/s"
        )


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns: the sweep folder, each run's record from sweep.json and the summary over
    runs from summary.json."""

    folder: Path
    runs: list[dict[str, Any]]  # sweep.json's run records
    summary: dict[str, Any]  # summary.json's content

    def __repr__(self) -> str:
        counts = collections.Counter(run["status"] for run in self.runs)
        return (
            f"SweepResult({len(self.runs)} runs ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}), "
            f"folder {self.folder})"
        )

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [run for run in self.runs if run["status"] == "failed"]


def stop_requested(stop_path: str | None, token: str | None) -> bool:
    """Whether the head that submitted this run asked it to stop (its token in the sweep folder's stop file)."""
    if stop_path is None or not os.path.exists(stop_path):
        return False
    try:
        return Path(stop_path).read_text().strip() == token
    except OSError:
        return False


def run_point(
    config: EvolveConfig,
    run_dir: str,
    attempts_path: str,
    sweep_json: str,
    threads: int,
    stop_path: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """One run of a sweep, in a Ray worker: resume it from its checkpoint when it has one, else start it. Returns
    ``{"generation": reached, "stopped": whether the head asked it to stop first}``."""
    if not Path(sweep_json).is_file():
        import socket

        raise SweepSpecError(
            f"{sweep_json} cannot be seen from host {socket.gethostname()}: every host of a sweep "
            "must see the sweep folder at the same path (a shared filesystem)"
        )
    if stop_requested(stop_path, token):  # the head stopped before this run started
        return {"generation": run_progress(Path(run_dir))[0], "stopped": True}
    limit_threads(threads)
    path = Path(run_dir)
    folder = RunFolder(path)
    resume = folder.checkpoint_path.is_file()
    record_attempt(Path(attempts_path), resumed=resume, node=require_ray().get_runtime_context().get_node_id())

    def stop_at_generation_end(row: dict[str, Any]) -> None:
        if stop_requested(stop_path, token):
            raise KeyboardInterrupt  # evolve keeps the generations that finished, as on Ctrl-C

    try:
        if not run_is_complete(path, config.generations):
            evolve(
                config, path, resume=resume, overwrite=not resume, progress=False, on_generation=stop_at_generation_end
            )
    except RunInterrupted as exc:
        return {"generation": exc.generation, "stopped": True}
    finally:
        folder.release()  # this worker may live on to run other tasks: the run folder is free for the next one
    return {"generation": config.generations, "stopped": False}


def run_sweep(
    spec: SweepSpec | None,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    on_progress: Callable[[SweepProgress], None] | None = None,
    poll_seconds: float = 2.0,
    on_ray_start: Callable[[], None] | None = None,
) -> SweepResult:
    """Run (or resume) the sweep `spec` into folder `out` on Ray and write its summary.

    spec: None with ``resume`` continues the recorded sweep; given with ``resume``, its grid must be the recorded
    one (its resources may differ). address: a Ray cluster to join ("auto": the one ``ray start`` made here);
    None starts a local Ray with ``num_cpus`` CPUs (default all), unless Ray is already initialised in this
    process. on_progress: called with the sweep's progress every `poll_seconds` and when a run ends.
    """
    folder = SweepFolder(out)
    if spec is None and not resume:
        raise SweepSpecError("a sweep needs a specification (models, encodings, seeds, options)")
    try:
        if spec is None:
            folder.prepare(resume=True, overwrite=False)  # says when there is nothing to resume
            spec = SweepSpec.from_dict(folder.read_state()["spec"], source=str(folder.sweep_path))
            spec.check()
            for model in spec.models:  # the folder chose these: it may come from elsewhere
                check_folder_model(model, folder.path, "pass a spec that names it to run it")
        spec.check()
        _core.num_threads()  # a bad FOOLING_NUM_THREADS, which the local workers inherit, is refused here
        require_ray()
        return _run(
            folder, spec, resume, overwrite, address, num_cpus, progress, on_progress, poll_seconds, on_ray_start
        )
    except BaseException:
        folder.abandon()  # a sweep that failed before any run started leaves nothing
        raise
    finally:
        folder.release()  # the head is done with the sweep folder


def _run(
    folder: SweepFolder,
    spec: SweepSpec,
    resume: bool,
    overwrite: bool,
    address: str | None,
    num_cpus: int | None,
    progress: bool,
    on_progress,
    poll_seconds: float,
    on_ray_start,
) -> SweepResult:
    folder.prepare(resume=resume, overwrite=overwrite)
    if resume:
        recorded = folder.read_state()["spec"]
        differences = config_differences({k: v for k, v in recorded.items() if k != "resources"}, spec.grid())
        if differences:
            raise RunFolderError("cannot resume with a different grid: " + "; ".join(differences))
    points = spec.points()
    head = _Head(folder, spec, points)
    head.write()
    todo = [p for p in points if head.records[p.name]["status"] != "done"]
    try:
        if todo:
            if on_ray_start is not None:
                on_ray_start()
            with ray_session(address, num_cpus=num_cpus) as ray:
                head.run(ray, todo, progress, on_progress, poll_seconds)
    except BaseException:
        head.stop()
        raise
    done = {name for name, record in head.records.items() if record["status"] == "done"}
    summary = sweep_summary(folder.path, points, done)
    write_summary(folder.path, summary, spec.varying())
    return SweepResult(folder.path, list(head.records.values()), summary)


class _Head:
    """The head's view of the runs: their records in sweep.json, the tasks it waits on, the progress."""

    def __init__(self, folder: SweepFolder, spec: SweepSpec, points: list[RunPoint]):
        self.folder, self.spec, self.points = folder, spec, points
        self.records: dict[str, dict[str, Any]] = {}
        for point in points:
            config = point.config()
            complete = run_is_complete(folder.path / point.folder, config.generations)
            self.records[point.name] = {
                "name": point.name,
                "folder": point.folder,
                "status": "done" if complete else "pending",
                "model": point.model,
                "encoding": point.encoding,
                "seed": point.seed,
                "options": dict(point.options),
                "attempts": len(folder.attempts(point.name)),
            }
        self.evaluations = {p.name: run_progress(folder.path / p.folder)[1] for p in points}
        self.history = collections.deque([(time.perf_counter(), sum(self.evaluations.values()))])

    def write(self) -> None:
        self.folder.write_state(self.spec.to_dict(), list(self.records.values()))

    def counts(self) -> SweepProgress:
        statuses = [record["status"] for record in self.records.values()]
        now, total = time.perf_counter(), sum(self.evaluations.values())
        while len(self.history) > 1 and now - self.history[1][0] >= RATE_WINDOW_SECONDS:
            self.history.popleft()
        self.history.append((now, total))
        then, before = self.history[0]
        rate = max(0.0, total - before) / max(now - then, 1e-9)  # a resumed run steps back to its checkpoint
        return SweepProgress(
            len(statuses),
            statuses.count("done"),
            statuses.count("running"),
            statuses.count("failed"),
            statuses.count("pending"),
            rate,
        )

    def run(self, ray, todo: list[RunPoint], progress: bool, on_progress, poll_seconds: float) -> None:
        resources = self.spec.resources
        remote = ray.remote(run_point)
        threads = task_threads(resources["cpus"])
        token = uuid.uuid4().hex  # this head's: a stop file left by an earlier head stops none of these runs
        self.folder.stop_path.unlink(missing_ok=True)
        refs = {}
        for point in todo:
            options = task_options(
                resources["cpus"], resources["gpus"], resources["max_retries"], name=f"sweep {point.name}"
            )
            ref = remote.options(**options).remote(
                point.config(),
                str(self.folder.path / point.folder),
                str(self.folder.attempts_path(point.name)),
                str(self.folder.sweep_path),
                threads,
                str(self.folder.stop_path),
                token,
            )
            refs[ref] = point
        submitted_attempts = {p.name: self.records[p.name]["attempts"] for p in todo}
        bar = _progress_bar(len(self.points), self.counts().done, progress)
        try:
            while refs:
                ready, rest = ray.wait(list(refs), num_returns=1, timeout=poll_seconds)
                if ready and rest:
                    ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
                changed = False
                for ref in ready:
                    point = refs.pop(ref)
                    record = self.records[point.name]
                    try:
                        outcome = task_result(ray, ref, resources["max_retries"])
                        record["status"] = "pending" if outcome["stopped"] else "done"
                        record.pop("error", None)
                    except Exception as exc:  # the run raised, or its worker died more often than allowed
                        record["status"] = "failed"
                        record["error"] = _error_text(exc)
                    record["attempts"] = len(self.folder.attempts(point.name))
                    self.evaluations[point.name] = run_progress(self.folder.path / point.folder)[1]
                    changed = True
                    if bar is not None:
                        bar.update(1)
                # Ray starts tasks of one shape in about the order they were submitted: the runs that can be running
                # are among the first unfinished ones, so the head reads the files of those only.
                window = 2 * _slots(ray, resources["cpus"], resources["gpus"])  # a cluster may grow or shrink
                for point in itertools.islice(refs.values(), window):
                    record = self.records[point.name]
                    attempts = len(self.folder.attempts(point.name))
                    status = "running" if attempts > submitted_attempts[point.name] else "pending"
                    if (status, attempts) != (record["status"], record["attempts"]):
                        record["status"], record["attempts"] = status, attempts
                        changed = True
                    if status == "running":
                        self.evaluations[point.name] = run_progress(self.folder.path / point.folder)[1]
                if changed:
                    self.write()
                counts = self.counts()
                if bar is not None:
                    bar.set_postfix_str(counts.line().split(", ", 1)[1], refresh=True)
                if on_progress is not None:
                    on_progress(counts)
        except BaseException:
            # The head stops: so do its runs, at the end of their generation (each resumes from its checkpoint next
            # time); the head waits for them so that a resume finds their folders free. A second Ctrl-C ends the wait.
            atomic_write_text(self.folder.stop_path, token + "\n")
            with contextlib.suppress(Exception):
                ray.wait(list(refs), num_returns=len(refs), timeout=STOP_WAIT_SECONDS)
            raise
        finally:
            if bar is not None:
                bar.close()

    def stop(self) -> None:
        """The head stops (interrupted, or an error of its own): unfinished runs are pending again."""
        for record in self.records.values():
            if record["status"] == "running":
                record["status"] = "pending"
        self.write()


def _slots(ray, cpus: float, gpus: float) -> int:
    """How many runs the cluster can hold at once (at least 1)."""
    available = ray.cluster_resources()
    slots = available.get("CPU", 0) / cpus
    if gpus:
        slots = min(slots, available.get("GPU", 0) / gpus)
    return max(1, int(slots))


def _error_text(exc: BaseException) -> str:
    """The run's error in one line (task_result raised the run's own exception, or RayWorkerLost)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, RayWorkerLost):
        return text.replace("max_retries=", "resources.max_retries=")
    return f"{type(exc).__name__}: {text}"


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="run", desc="sweep", dynamic_ncols=True, file=sys.stderr)
