"""The state of a run folder (complete, interrupted at N of M, in progress) as runs.state reads it, and as
``fooling report`` heads its table with it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fooling_ext.classifiers import load_classifier
from fooling_ext.runs.report import load_report
from fooling_ext.runs.state import COMPLETE, IN_PROGRESS, INTERRUPTED, RunState, run_state
from fooling_ext.search import EvolveConfig, RunInterrupted, evolve


def small(generations: int) -> EvolveConfig:
    return EvolveConfig(
        model="mnist", encoding="cppn", generations=generations, batch=16, seed=2, backend="cpu", checkpoint_every=2
    )


@pytest.fixture(scope="module")
def lenet():
    return load_classifier("mnist")


def test_a_finished_run_is_complete(tmp_path, lenet):
    evolve(small(4), tmp_path / "run", classifier=lenet, progress=False)
    assert run_state(tmp_path / "run") == RunState(COMPLETE, 4, 4)
    assert load_report(tmp_path / "run").splitlines()[0] == f"run {tmp_path / 'run'} (finished, 4 generations)"


def test_a_run_stopped_by_ctrl_c_is_interrupted_at_its_generation_not_finished(tmp_path, lenet):
    def ctrl_c_at_three(row):
        if row["generation"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        evolve(small(30), tmp_path / "run", classifier=lenet, progress=False, on_generation=ctrl_c_at_three)
    assert (tmp_path / "run" / "archive.npz").is_file()  # Ctrl-C writes the outputs, yet the run is not finished
    state = run_state(tmp_path / "run")
    assert state == RunState(INTERRUPTED, 3, 30) and not state.complete
    head = load_report(tmp_path / "run").splitlines()[0]
    assert head == f"run {tmp_path / 'run'} (interrupted after 3 of 30 generations)"


def test_a_run_whose_folder_another_live_process_locks_is_in_progress(tmp_path, lenet):
    def ctrl_c_at_two(row):
        if row["generation"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        evolve(small(10), tmp_path / "run", classifier=lenet, progress=False, on_generation=ctrl_c_at_two)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
            str(tmp_path / "run" / ".fooling.lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run_state(tmp_path / "run") == RunState(IN_PROGRESS, 2, 10)
    finally:
        holder.communicate("")
    assert run_state(tmp_path / "run") == RunState(INTERRUPTED, 2, 10)  # the lock went with its process


def test_a_folder_without_a_configuration_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        run_state(tmp_path)


def test_fooling_report_reads_a_finished_run_without_torch(tmp_path, lenet):
    evolve(small(2), tmp_path / "run", classifier=lenet, progress=False)
    code = (
        "import sys\nfrom fooling_ext.cli import main\nmain(['report', sys.argv[1]])\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'ray') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"run {tmp_path / 'run'} (finished, 2 generations)" and lines[-1] == "[]"
