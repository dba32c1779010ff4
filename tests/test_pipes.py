"""A reader of standard output that goes away (`fooling report RUN | head -c 1`, `| true`) ends a command quietly:
status 0 and nothing on stderr, for every command that prints. The reader's end is closed before the command
starts (every write fails, the case `| true` makes when `true` exits first) or after its first byte (`| head
-c 1`), so both paths run on every machine, whatever the timing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fooling_ext.search import EvolveConfig, evolve


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipes") / "run"
    evolve(EvolveConfig(encoding="cppn", generations=3, batch=8, seed=1, backend="cpu"), folder, progress=False)
    return folder


def commands(run, tmp_path):
    return {
        "report": ["report", str(run)],
        "help": ["--help"],
        "version": ["--version"],
        "evolve help": ["evolve", "--help"],
        "evolve": [
            "evolve",
            "--generations",
            "2",
            "--batch",
            "4",
            "--backend",
            "cpu",
            "--no-progress",
            "--out",
            str(tmp_path / "evolved"),
        ],
        "gradient": [
            "gradient",
            "--classes",
            "0",
            "--steps",
            "2",
            "--backend",
            "cpu",
            "--no-progress",
            "--out",
            str(tmp_path / "gradient"),
        ],
        "analyze": ["analyze", "structure", str(run), "--no-progress", "--out", str(tmp_path / "structure")],
        "gallery": ["gallery", str(run), "--out", str(tmp_path / "gallery")],
    }


def run_with_reader(argv, read_bytes):
    """The command with stdout a pipe whose reader reads `read_bytes` bytes (None: closed before it starts)."""
    read_end, write_end = os.pipe()
    if read_bytes is None:
        os.close(read_end)
    try:
        child = subprocess.Popen([sys.executable, "-m", "fooling_ext", *argv], stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    if read_bytes is not None:
        got = os.read(read_end, read_bytes)
        os.close(read_end)
        assert got, "the command printed nothing"
    err = child.stderr.read().decode()
    return child.wait(timeout=600), err


@pytest.mark.parametrize("read_bytes", [None, 1], ids=["reader-gone", "head-c-1"])
@pytest.mark.parametrize(
    "name", ["report", "help", "version", "evolve help", "evolve", "gradient", "analyze", "gallery"]
)
def test_a_reader_that_goes_away_ends_the_command_quietly(run, tmp_path, name, read_bytes):
    argv = commands(run, tmp_path)[name]
    code, err = run_with_reader(argv, read_bytes)
    assert (code, err) == (0, "")


def test_the_same_command_with_its_reader_prints_everything(run, tmp_path):
    # The quiet ending must not swallow output that has a reader: the whole report arrives.
    done = subprocess.run(
        [sys.executable, "-m", "fooling_ext", "report", str(run)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stderr == ""
    assert "median" in done.stdout and len(done.stdout.splitlines()) >= 10


def test_a_broken_pipe_that_is_not_stdout_is_still_an_error(monkeypatch, capsys, tmp_path, run):
    # A BrokenPipeError from elsewhere (a socket, a child process) while stdout still has its reader is an
    # error named on stderr with status 2, not a quiet success.
    from fooling_ext.cli import main

    def broken(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("fooling_ext.runs.report.load_report", broken)
    code = main(["report", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "fooling report: error: Broken pipe"
