"""No command deletes or overwrites a file it did not write: --overwrite removes only the files of its own kind of
folder and refuses a folder holding anything else (naming the first such file), a command never writes into
another command's folder or into its own inputs, an empty --out is an error, and a refused command leaves
nothing behind. Each case asserts the one-line error and the exact files that remain."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fooling_ext.analyses import repetition
from fooling_ext.cli import main
from fooling_ext.runs.folder import RunFolder, RunFolderError, folder_kind
from fooling_ext.sweep.folder import SweepFolder

EVOLVE = ["evolve", "--generations", "1", "--batch", "8", "--backend", "cpu", "--no-progress"]
GRADIENT = ["gradient", "--classes", "1", "--steps", "1", "--backend", "cpu", "--no-progress"]


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    return code, err


def snapshot(path: Path) -> dict[str, bytes | str]:
    """Every entry under `path` (not following symlinks): a file's bytes, a folder as "dir", a link's target."""
    found: dict[str, bytes | str] = {}
    for entry in sorted(path.rglob("*")):
        key = str(entry.relative_to(path))
        if entry.is_symlink():
            found[key] = "-> " + os.readlink(entry)
        elif entry.is_dir():
            found[key] = "dir"
        else:
            found[key] = entry.read_bytes()
    return found


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One folder of each kind, written by the commands (tests copy them before changing anything)."""
    d = tmp_path_factory.mktemp("made")
    assert main(EVOLVE + ["--out", str(d / "run")]) == 0
    assert main(GRADIENT + ["--out", str(d / "grad")]) == 0
    assert main(["analyze", "repetition", str(d / "run"), "--out", str(d / "analysis"), "--backend", "cpu"]) == 0
    sweep = d / "sweep"
    (sweep / "runs").mkdir(parents=True)
    shutil.copytree(d / "run", sweep / "runs" / "mnist-cppn-seed0")
    (sweep / "attempts").mkdir()
    (sweep / "attempts" / "mnist-cppn-seed0.jsonl").write_text("{}\n")
    (sweep / "sweep.json").write_text(json.dumps({"format": "fooling_ext.sweep", "version": 1, "spec": {}, "runs": []}))
    (d / "experiment").mkdir()
    (d / "experiment" / "config.json").write_text(json.dumps({"fooling_ext": "0", "experiment": {"rounds": 1}}))
    return d


def copy(made: Path, name: str, to: Path) -> Path:
    shutil.copytree(made / name, to / name, symlinks=True)
    return to / name


def user_folder(path: Path) -> Path:
    """A user's folder: a config.json of another program, photos, notes."""
    (path / "images").mkdir(parents=True)
    (path / "config.json").write_text('{"camera": "x100"}\n')
    (path / "images" / "holiday.jpg").write_bytes(b"\xff\xd8photo")
    (path / "notes.txt").write_text("mine\n")
    return path


def test_the_kinds_are_told_by_content(made, tmp_path):
    assert [folder_kind(made / n) for n in ("run", "grad", "analysis", "sweep", "experiment")] == [
        "run",
        "gradient run",
        "analysis",
        "sweep",
        "experiment",
    ]
    assert folder_kind(user_folder(tmp_path / "user")) is None
    (tmp_path / "user" / "config.json").write_text('{"run": {}}')  # the right keys, but not the project's file
    assert folder_kind(tmp_path / "user") is None


def test_evolve_overwrite_refuses_a_users_folder_and_deletes_nothing(tmp_path, capsys):
    user = user_folder(tmp_path / "user")
    before = snapshot(user)
    code, err = run(EVOLVE + ["--out", user, "--overwrite"], capsys)
    assert code == 2
    assert err == (
        f"fooling evolve: error: {user} holds config.json, which fooling evolve did not write: --overwrite "
        "replaces only a run's own files; move it or choose another folder"
    )
    assert snapshot(user) == before


def test_a_users_config_json_alone_is_kept(tmp_path, capsys):
    out = tmp_path / "target"
    out.mkdir()
    (out / "config.json").write_text("{}")
    code, err = run(EVOLVE + ["--out", out], capsys)
    assert (code, err) == (2, f"fooling evolve: error: {out} is not empty; choose an empty folder or pass --overwrite")
    code, err = run(GRADIENT + ["--out", out, "--overwrite"], capsys)
    assert code == 2 and "holds config.json, which fooling gradient did not write" in err
    assert snapshot(out) == {"config.json": b"{}"}


@pytest.mark.parametrize(
    "extra, named",
    [
        ("notes.txt", "notes.txt"),
        ("images/holiday.jpg", "images/holiday.jpg"),
        ("grid_mine.png", "grid_mine.png"),  # named like the grids, but no grid is named so
        ("plots/a.png", "plots"),
    ],
)
def test_evolve_overwrite_refuses_a_run_holding_a_users_file(made, tmp_path, capsys, extra, named):
    out = copy(made, "run", tmp_path)
    (out / extra).parent.mkdir(exist_ok=True)
    (out / extra).write_text("mine")
    before = snapshot(out)
    code, err = run(EVOLVE + ["--out", out, "--overwrite"], capsys)
    assert code == 2
    assert err.startswith(f"fooling evolve: error: {out} holds {named}, which fooling evolve did not write")
    assert snapshot(out) == before


def test_evolve_overwrite_replaces_its_own_run_entirely(made, tmp_path, capsys):
    out = copy(made, "run", tmp_path)
    (out / "images" / "class_99_stale.png").write_bytes(b"old")  # as an earlier run with more classes left it
    code, _ = run(EVOLVE + ["--out", out, "--overwrite", "--seed", "3"], capsys)
    assert code == 0
    assert sorted(snapshot(out)) == sorted(k for k in snapshot(made / "run"))  # the stale image went
    assert json.loads((out / "config.json").read_text())["run"]["seed"] == 3


def test_a_symlink_inside_a_run_is_never_followed_or_removed(made, tmp_path, capsys):
    photos = user_folder(tmp_path / "user") / "images"
    out = copy(made, "run", tmp_path)
    shutil.rmtree(out / "images")
    (out / "images").symlink_to(photos)
    before, photos_before = snapshot(out), snapshot(photos)
    code, err = run(EVOLVE + ["--out", out, "--overwrite"], capsys)
    assert code == 2 and err.startswith(f"fooling evolve: error: {out} holds images, which fooling evolve did not")
    assert snapshot(out) == before and snapshot(photos) == photos_before


def test_a_file_named_like_a_project_file_is_not_the_projects(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.txt").write_text("my report")
    code, err = run(EVOLVE + ["--out", out, "--overwrite"], capsys)
    assert code == 2 and "holds report.txt, which fooling evolve did not write" in err
    assert snapshot(out) == {"report.txt": b"my report"}


def test_analyze_never_writes_into_its_own_input(made, tmp_path, capsys):
    source = copy(made, "run", tmp_path)
    before = snapshot(source)
    (tmp_path / "link").symlink_to(source)
    for out, how in (
        (source, "is the input"),
        (tmp_path / "link", "is the input"),
        (source / "analysis", "is inside the input"),
    ):
        code, err = run(["analyze", "repetition", source, "--out", out, "--overwrite"], capsys)
        assert code == 2
        assert err == (
            f"fooling analyze: error: the output folder {out} {how} {source}: a command never writes "
            "into what it reads; choose another folder"
        )
    assert snapshot(source) == before


@pytest.mark.parametrize(
    "command, out, holds",
    [
        (["analyze", "repetition", "{run}"], "grad", "a gradient run (written by fooling gradient), not an analysis"),
        (["analyze", "repetition", "{run}"], "sweep", "a sweep (written by fooling sweep), not an analysis"),
        (
            ["analyze", "repetition", "{run}"],
            "experiment",
            "an experiment (written by fooling retrain), not an analysis",
        ),
        (GRADIENT, "run", "a run (written by fooling evolve), not a gradient run"),
        (GRADIENT, "analysis", "an analysis (written by fooling analyze), not a gradient run"),
        (EVOLVE, "grad", "a gradient run (written by fooling gradient), not a run"),
        (EVOLVE, "analysis", "an analysis (written by fooling analyze), not a run"),
        (EVOLVE, "sweep", "a sweep (written by fooling sweep), not a run"),
    ],
)
def test_a_command_never_takes_over_another_commands_folder(made, tmp_path, capsys, command, out, holds):
    target = copy(made, out, tmp_path)
    before = snapshot(target)
    argv = [str(made / "run") if a == "{run}" else a for a in command]
    code, err = run(argv + ["--out", target, "--overwrite"], capsys)
    name = argv[0]
    assert code == 2
    assert err == (
        f"fooling {name}: error: {target} holds {holds}: fooling {name} never writes into another "
        "command's folder; choose another folder"
    )
    assert snapshot(target) == before


def test_analyze_overwrite_replaces_an_analysis_and_refuses_a_users_file_in_it(made, tmp_path, capsys):
    out = copy(made, "analysis", tmp_path)
    (out / "examples").mkdir(exist_ok=True)
    (out / "examples" / "mine.png").write_bytes(b"mine")
    code, err = run(["analyze", "repetition", made / "run", "--out", out, "--overwrite"], capsys)
    assert code == 2 and err.startswith(
        f"fooling analyze: error: {out} holds examples/mine.png, which fooling analyze did not write"
    )
    (out / "examples" / "mine.png").unlink()
    assert run(["analyze", "repetition", made / "run", "--out", out, "--overwrite"], capsys)[0] == 0
    assert sorted(snapshot(out)) == sorted(snapshot(made / "analysis"))


def test_a_sweep_is_replaced_only_when_everything_in_it_is_the_sweeps(made, tmp_path):
    sweep = copy(made, "sweep", tmp_path)
    (sweep / "runs" / "mnist-cppn-seed0" / "notes.txt").write_text("mine")
    before = snapshot(sweep)
    with pytest.raises(RunFolderError, match="holds runs/mnist-cppn-seed0/notes.txt, which fooling sweep did not"):
        SweepFolder(sweep).prepare(resume=False, overwrite=True)
    assert snapshot(sweep) == before
    (sweep / "runs" / "mnist-cppn-seed0" / "notes.txt").unlink()
    (sweep / "runs" / "pending").mkdir()  # a run not started yet
    SweepFolder(sweep).prepare(resume=False, overwrite=True)
    SweepFolder(sweep).release()
    assert snapshot(sweep) == {}


@pytest.mark.parametrize(
    "argv",
    [
        EVOLVE,
        GRADIENT,
        ["analyze", "repetition", "run"],
        ["analyze", "structure", "run"],
        ["analyze", "diversity", "run", "run2"],
        ["retrain", "--runner", "local"],
        ["train-mnist", "--quiet"],
        ["sweep", "--models", "mnist", "--encodings", "direct", "--seeds", "0"],
        ["imagenet-fooling-class", "--run", "run", "--no-progress"],
    ],
)
def test_an_empty_out_is_an_error(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    code, err = run(argv + ["--out", ""], capsys)
    assert code == 2
    assert err in (
        f"fooling {argv[0]}: error: the output folder is empty: name a folder",
        "fooling train-mnist: error: --out is empty: name the weights file to write",
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "out, message",
    [
        (
            "{d}/w.json",
            "--out {d}/w.json: the metrics go beside the weights as w.json, the weights file itself; give "
            "the weights another suffix, e.g. .pt",
        ),
        ("/dev/null", "--out /dev/null exists and is not a regular file"),
        ("{d}/folder", "--out {d}/folder exists and is not a regular file"),
        ("{d}/weights", "the metrics file of --out {d}/weights.json exists and is not a regular file"),
        (
            "{d}/notes.pt",
            "{d}/notes.json is there and was not written by train-mnist: the metrics of --out {d}/notes.pt "
            "would replace it; move it or choose another --out",
        ),
    ],
)
def test_train_mnist_checks_where_it_writes_before_training(tmp_path, capsys, out, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "weights.json").mkdir()
    (tmp_path / "notes.json").write_text('{"title": "mine"}')
    before = snapshot(tmp_path)
    code, err = run(["train-mnist", "--quiet", "--out", out.format(d=tmp_path)], capsys)
    assert code == 2 and err == "fooling train-mnist: error: " + message.format(d=tmp_path)
    assert snapshot(tmp_path) == before and not Path("/dev/null.json").exists()


def test_train_mnist_never_writes_over_its_data(tmp_path, capsys):
    data = tmp_path / "mnist.npz"
    data.write_bytes(b"data")
    code, err = run(["train-mnist", "--quiet", "--data", data, "--out", tmp_path / "mnist.json"], capsys)
    assert code == 2 and "the weights file itself" in err
    code, err = run(["train-mnist", "--quiet", "--data", data, "--out", data], capsys)
    assert (code, err) == (
        2,
        f"fooling train-mnist: error: --out {data} is the --data file: a command never writes over what it reads",
    )
    assert data.read_bytes() == b"data"


def test_a_refused_option_leaves_no_folder_and_the_rerun_works(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "run"
    code, err = run(EVOLVE + ["--image-size", "2000", "--out", out], capsys)
    assert (code, err) == (2, "fooling evolve: error: --image-size must be a whole number in [1, 1024], got 2000")
    assert list(tmp_path.iterdir()) == []  # the folders it would have made, too
    mine = tmp_path / "mine"
    mine.mkdir()  # a folder the user made stays, empty
    assert run(EVOLVE + ["--image-size", "2000", "--out", mine], capsys)[0] == 2
    assert snapshot(tmp_path) == {"mine": "dir"}
    assert run(EVOLVE + ["--image-size", "20", "--out", mine], capsys)[0] == 0  # not "holds another run"


@pytest.mark.parametrize(
    "argv",
    [
        EVOLVE,
        ["retrain", "--runner", "local", "--no-progress"],
        ["sweep", "--models", "mnist", "--encodings", "direct", "--seeds", "0", "--no-progress"],
    ],
)
def test_a_bad_thread_count_leaves_no_folder(tmp_path, argv):
    env = {**os.environ, "FOOLING_NUM_THREADS": "two"}
    proc = subprocess.run(
        [sys.executable, "-m", "fooling_ext", *argv, "--out", str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"fooling {argv[0]}: error: FOOLING_NUM_THREADS must be a whole number >= 1 (the "
        "CPU threads of the core), got 'two'"
    )
    assert list(tmp_path.iterdir()) == []


class Failing:
    """A scorer that fails: the analysis stops after its folder was prepared."""

    def __getattr__(self, name):
        raise RuntimeError("scorer failed")


def test_a_failed_analysis_leaves_nothing(made, tmp_path):
    with pytest.raises(RuntimeError, match="scorer failed"):
        repetition(made / "run", tmp_path / "new" / "out", classifier=Failing())
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()
    with pytest.raises(RuntimeError, match="scorer failed"):
        repetition(made / "run", tmp_path / "mine", classifier=Failing())
    assert snapshot(tmp_path) == {"mine": "dir"}


def test_resume_into_a_foreign_folder_is_refused_and_changes_nothing(made, tmp_path, capsys):
    user = user_folder(tmp_path / "user")
    (user / "checkpoint.pt").write_bytes(b"not a checkpoint")
    grad = copy(made, "grad", tmp_path)
    (grad / "checkpoint.pt").write_bytes(b"not a checkpoint")
    for folder in (user, grad):
        before = snapshot(folder)
        code, err = run(["evolve", "--out", folder, "--resume", "--no-progress"], capsys)
        assert code == 2 and err.startswith("fooling evolve: error:") and "\n" not in err
        assert snapshot(folder) == before
    with pytest.raises(RunFolderError, match=f"nothing to resume: {user} holds no folder written by fooling evolve"):
        RunFolder(user).prepare(resume=True, overwrite=False)
    assert snapshot(user)["notes.txt"] == b"mine\n"
