"""``fooling sweep``'s command line around the sweep itself: --generations, the line before Ray starts, the
command Ctrl-C prints, and Ray starting without its authentication warning."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

import fooling_ext.sweep
from fooling_ext.cli import main

TINY = [
    "--models",
    "mnist",
    "--encodings",
    "cppn",
    "--seeds",
    "1",
    "--option",
    "batch=10",
    "--option",
    "backend=cpu",
    "--no-progress",
]


@pytest.fixture
def specs(monkeypatch):
    """run_sweep replaced by a stand-in that records the specification it is given and stops as Ctrl-C would."""
    given = []

    def interrupted(spec, out, **options):
        given.append(spec)
        options["on_ray_start"]()  # the folder is checked: Ray starts
        raise KeyboardInterrupt

    monkeypatch.setattr(fooling_ext.sweep, "run_sweep", interrupted)
    return given


def test_generations_is_the_option_of_every_run_and_ctrl_c_prints_the_command_that_resumes(tmp_path, specs, capsys):
    out = tmp_path / "my sweep"
    assert main(["sweep", "--out", str(out), "--generations", "7", *TINY]) == 130
    assert specs[0].options["generations"] == [7] and specs[0].options["batch"] == [10]
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"fooling sweep: starting a local Ray with {os.cpu_count()} CPUs (this takes a while)..."
    assert err[1].endswith(f"continue with: fooling sweep --out '{out}' --resume")
    assert len(err) == 2


def test_rays_token_notice_is_dropped_and_its_other_warnings_are_not():
    from fooling_ext.sweep.ray_runner import drop_token_auth_notice

    drop_token_auth_notice()  # as ray_session does before it starts Ray
    ray_logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    notice = ray_logger.makeRecord(
        ray_logger.name,
        logging.WARNING,
        __file__,
        1,
        "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out.",
        (),
        None,
    )
    other = ray_logger.makeRecord(
        ray_logger.name,
        logging.WARNING,
        __file__,
        1,
        "Token authentication is disabled for this Ray cluster.",
        (),
        None,
    )
    assert (ray_logger.filter(notice), bool(ray_logger.filter(other))) == (False, True)


def test_joining_a_cluster_says_so(tmp_path, specs, capsys):
    assert main(["sweep", "--out", str(tmp_path / "s"), "--address", "auto", "--num-cpus", "1", *TINY]) == 130
    assert capsys.readouterr().err.splitlines()[0] == "fooling sweep: joining the Ray cluster at auto..."


def test_generations_given_twice_is_refused_in_one_line(tmp_path, specs, capsys):
    argv = ["sweep", "--out", str(tmp_path / "s"), "--generations", "7", "--option", "generations=3,5", *TINY]
    assert main(argv) == 2 and not specs
    assert capsys.readouterr().err == (
        "fooling sweep: error: --generations 7 and --option generations=3,5 both give "
        "the generations; give one of them\n"
    )


def test_a_tiny_sweep_on_a_local_ray_prints_no_ray_warning(tmp_path):
    pytest.importorskip("ray", reason='needs the [ray] extra: pip install "fooling-ext[ray]"')
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # Ray's default: token authentication
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fooling_ext",
            "sweep",
            "--out",
            str(tmp_path / "s"),
            "--generations",
            "2",
            "--num-cpus",
            "1",
            *TINY,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["fooling sweep: starting a local Ray with 1 CPU (this takes a while)..."]
