"""Every subcommand over a table of bad inputs: each ends with exit status 2 and one line that names the option,
the path or the variable at fault, never a traceback, and writes nothing where it was refused."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fooling_ext._files import write_npz
from fooling_ext.cli import main

# The test models are scripted here, and loading TorchScript files warns that TorchScript is deprecated.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore:`torch.jit.script` is deprecated")


class NaNModel(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10] * float("nan")


class ThreeChannels(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 3)
        self.fc = torch.nn.Linear(2 * 26 * 26, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class Scalar(torch.nn.Module):
    def forward(self, x):
        return x.sum()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    for name, module in (("nan.pt", NaNModel()), ("three.pt", ThreeChannels()), ("scalar.pt", Scalar())):
        torch.jit.script(module).save(str(d / name))
    (d / "garbage.pt").write_bytes(b"\x00garbage" * 64)
    (d / "classes.json").write_text('["a", "b"')  # not valid JSON
    (d / "classes_dict.json").write_text(json.dumps({"0": "zero", "2": "two"}))
    (d / "a_file").write_text("x")
    (d / "not_a_run").mkdir()
    (d / "not_a_run" / "notes.txt").write_text("mine")
    assert (
        main(
            [
                "evolve",
                "--generations",
                "2",
                "--batch",
                "12",
                "--backend",
                "cpu",
                "--no-progress",
                "--out",
                str(d / "run"),
            ]
        )
        == 0
    )
    assert main(["gradient", "--classes", "1", "--steps", "2", "--backend", "cpu", "--out", str(d / "grad")]) == 0
    # A finished run whose archive holds a confidence outside [0, 1] and one of wrong length (valid checksums).
    with np.load(d / "run" / "archive.npz") as z:
        arrays = {k: z[k].copy() for k in z.files if k != "meta"}
        meta = json.loads(bytes(z["meta"]).decode())
    meta.pop("checksum")
    for name, change in (
        ("conf", lambda a: a["confidence"].__setitem__(1, 5.0)),
        ("short", lambda a: a.__setitem__("generation", a["generation"][:3])),
    ):
        (d / name).mkdir()
        changed = {k: v.copy() for k, v in arrays.items()}
        change(changed)
        write_npz(d / name / "archive.npz", meta, changed)
        (d / name / "config.json").write_text((d / "run" / "config.json").read_text())
    (d / "flipped").mkdir()
    for name in ("config.json", "metrics.csv"):
        (d / "flipped" / name).write_text((d / "run" / name).read_text())
    data = bytearray((d / "run" / "checkpoint.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / "flipped" / "checkpoint.pt").write_bytes(bytes(data))
    return d


MODEL_FILE = ["--model-channels", "1", "--model-size", "28x28"]
EVOLVE = ["evolve", "--generations", "2", "--batch", "8", "--backend", "cpu", "--no-progress"]

# (id, arguments with {d} for the inputs folder, what the error line must contain)
CASES = [
    ("seed-negative", EVOLVE + ["--seed", "-1", "--out", "{d}/o"], "argument --seed: expected a whole number >= 0"),
    ("generations-zero", EVOLVE[:1] + ["--generations", "0", "--out", "{d}/o"], "argument --generations"),
    ("batch-text", EVOLVE[:1] + ["--batch", "many", "--out", "{d}/o"], "argument --batch"),
    ("image-size", EVOLVE + ["--image-size", "0x3", "--out", "{d}/o"], "argument --image-size"),
    (
        "mutation-rate",
        EVOLVE + ["--encoding", "direct", "--mutation-rate", "1.5", "--out", "{d}/o"],
        "argument --mutation-rate: expected a finite number in [0, 1]",
    ),
    ("checkpoint-every", EVOLVE + ["--checkpoint-every", "0", "--out", "{d}/o"], "argument --checkpoint-every"),
    ("backend", EVOLVE[:1] + ["--backend", "tpu", "--out", "{d}/o"], "argument --backend"),
    ("missing-model", EVOLVE + ["--model", "{d}/absent.pt2", "--out", "{d}/o"], "absent.pt2"),
    ("unknown-model", EVOLVE + ["--model", "resnet50", "--out", "{d}/o"], "the built-in models are mnist, imagenet"),
    ("garbage-model", EVOLVE + ["--model", "{d}/garbage.pt", "--out", "{d}/o"], "garbage.pt is not a model file"),
    ("model-without-spec", EVOLVE + ["--model", "{d}/three.pt", "--out", "{d}/o"], "needs an input spec"),
    (
        "wrong-input-shape",
        EVOLVE + ["--model", "{d}/three.pt", *MODEL_FILE, "--out", "{d}/o"],
        "the model rejected input of shape [1, 1, 28, 28]",
    ),
    ("nan-model", EVOLVE + ["--model", "{d}/nan.pt", *MODEL_FILE, "--out", "{d}/o"], "returned NaN or Inf"),
    (
        "scalar-model",
        EVOLVE + ["--model", "{d}/scalar.pt", *MODEL_FILE, "--out", "{d}/o"],
        "the model returned shape [] for 1 input(s)",
    ),
    ("mean-count", EVOLVE + ["--model-mean", "1,2", "--out", "{d}/o"], "mean"),
    ("classes-missing", EVOLVE + ["--model-classes", "{d}/absent.txt", "--out", "{d}/o"], "class names file not found"),
    ("classes-bad-json", EVOLVE + ["--model-classes", "{d}/classes.json", "--out", "{d}/o"], "is not valid JSON"),
    (
        "classes-dict-gap",
        EVOLVE + ["--model-classes", "{d}/classes_dict.json", "--out", "{d}/o"],
        "must map the indices 0..1 to names",
    ),
    ("out-is-a-file", EVOLVE + ["--out", "{d}/a_file"], "a_file exists and is not a folder"),
    ("out-under-a-file", EVOLVE + ["--out", "{d}/a_file/run"], "Not a directory: {d}/a_file/run"),
    ("out-not-permitted", EVOLVE + ["--out", "/sys/fooling_ext_run"], ": /sys/fooling_ext_run"),
    (
        "out-holds-a-run",
        EVOLVE + ["--out", "{d}/run"],
        "holds another run; pass --resume to continue it or --overwrite to replace it",
    ),
    ("out-not-empty", EVOLVE + ["--out", "{d}/not_a_run"], "is not empty; choose an empty folder or pass --overwrite"),
    ("resume-nothing", EVOLVE + ["--resume", "--out", "{d}/nothing"], "nothing to resume"),
    (
        "resume-and-overwrite",
        EVOLVE + ["--resume", "--overwrite", "--out", "{d}/run"],
        "--resume and --overwrite cannot be used together",
    ),
    (
        "resume-other-seed",
        ["evolve", "--resume", "--seed", "9", "--backend", "cpu", "--out", "{d}/run"],
        "--seed cannot be given with --resume: the run in {d}/run was made with --seed 0 and continues with it",
    ),
    (
        "resume-model-flags",
        ["evolve", "--resume", "--model-size", "32x32", "--crops", "20", "--out", "{d}/run"],
        "--model-size, --crops cannot be given with --resume: the run in {d}/run was made with --model-size 28x28, "
        "without --crops",
    ),
    (
        "resume-other-model",
        ["evolve", "--resume", "--model", "{d}/three.pt", "--no-progress", "--out", "{d}/run"],
        "the model rejected input of shape",
    ),
    (
        "coords-with-direct",
        EVOLVE + ["--encoding", "direct", "--coords", "pixel", "--out", "{d}/o"],
        "--coords applies to --encoding cppn only, not to --encoding direct",
    ),
    (
        "color-with-direct",
        EVOLVE + ["--encoding", "direct", "--color", "hsv", "--out", "{d}/o"],
        "--color applies to --encoding cppn only, not to --encoding direct",
    ),
    (
        "mutation-rate-with-cppn",
        EVOLVE + ["--mutation-rate", "0.2", "--out", "{d}/o"],
        "--mutation-rate applies to --encoding direct only, not to --encoding cppn",
    ),
    (
        "halve-every-with-cppn",
        EVOLVE + ["--halve-every", "10", "--out", "{d}/o"],
        "--halve-every applies to --encoding direct only, not to --encoding cppn",
    ),
    (
        "resume-flipped-bytes",
        ["evolve", "--resume", "--backend", "cpu", "--no-progress", "--out", "{d}/flipped"],
        "is damaged",
    ),
    ("report-missing", ["report", "{d}/absent"], "no run folder at {d}/absent"),
    ("report-not-a-run", ["report", "{d}/not_a_run"], "holds no run"),
    ("report-confidence", ["report", "{d}/conf"], "confidence of class 1 (1) is 5.0, not a probability"),
    ("report-lengths", ["report", "{d}/short"], "generation has 3 rows, the archive has 10 classes"),
    ("gradient-class", ["gradient", "--classes", "7,zebra", "--backend", "cpu", "--out", "{d}/g"], "zebra"),
    ("gradient-steps", ["gradient", "--steps", "0", "--out", "{d}/g"], "argument --steps"),
    (
        "gradient-existing",
        ["gradient", "--classes", "1", "--steps", "1", "--backend", "cpu", "--out", "{d}/grad"],
        "holds another gradient run; pass --overwrite to replace it",
    ),
    (
        "retrain-rounds",
        ["retrain", "--rounds", "0", "--runner", "local", "--out", "{d}/r"],
        "--rounds must be a whole number >= 1",
    ),
    (
        "retrain-out-file",
        ["retrain", "--rounds", "1", "--runner", "local", "--out", "{d}/a_file"],
        "a_file exists and is not a folder",
    ),
    ("imagenet-class-missing-run", ["imagenet-fooling-class", "--run", "{d}/absent", "--out", "{d}/i"], "absent"),
    ("imagenet-class-no-run", ["imagenet-fooling-class", "--out", "{d}/i"], "--run (unless --resume)"),
    (
        "imagenet-class-resume-nothing",
        ["imagenet-fooling-class", "--out", "{d}/i", "--resume"],
        "nothing to resume: {d}/i/fit.json does not exist",
    ),
    (
        "imagenet-class-mnist-run",
        ["imagenet-fooling-class", "--run", "{d}/run", "--out", "{d}/i"],
        "the fooling class needs runs against the 1000-class imagenet model",
    ),
    ("analyze-missing", ["analyze", "repetition", "{d}/absent", "--out", "{d}/a"], "no run folder at {d}/absent"),
    (
        "analyze-not-a-run",
        ["analyze", "structure", "{d}/not_a_run", "--out", "{d}/a"],
        "{d}/not_a_run is not a run folder",
    ),
    ("analyze-one-run", ["analyze", "diversity", "{d}/run", "--out", "{d}/a"], "diversity needs at least two runs"),
    ("gallery-missing", ["gallery", "{d}/absent", "--out", "{d}/gal"], "{d}/absent: no such folder"),
    ("gallery-out-is-a-file", ["gallery", "{d}/run", "--out", "{d}/a_file"], "a_file exists and is not a folder"),
    ("pack-missing", ["pack", "{d}/absent", "--out", "{d}/p.npz"], "no run folder at {d}/absent"),
    ("pack-damaged", ["pack", "{d}/flipped", "--out", "{d}/p.npz"], "flipped/checkpoint.pt"),
    ("pack-out-is-a-folder", ["pack", "{d}/run", "--out", "{d}"], "is a folder: give the path of the file"),
    ("unpack-missing", ["unpack", "{d}/absent.npz", "--out", "{d}/u"], "run pack not found: {d}/absent.npz"),
    ("unpack-not-a-pack", ["unpack", "{d}/run/archive.npz", "--out", "{d}/u"], "archive.npz is not a run pack"),
    ("sweep-encoding", ["sweep", "--out", "{d}/s", "--encodings", "cppn,pixels"], "unknown encoding 'pixels'"),
    ("sweep-option", ["sweep", "--out", "{d}/s", "--option", "generation=5"], "unknown option 'generation'"),
    ("sweep-spec-missing", ["sweep", "--out", "{d}/s", "--spec", "{d}/none.toml"], "no sweep specification at"),
    ("train-data-missing", ["train-mnist", "--data", "{d}/absent.npz", "--out", "{d}/w.pt", "--quiet"], "absent.npz"),
    ("train-epochs", ["train-mnist", "--epochs", "0", "--out", "{d}/w.pt"], "epochs"),
]


def run_in_process(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("argv, expected", [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_a_bad_input_is_one_line_naming_it(files, capsys, argv, expected):
    argv = [a.replace("{d}", str(files)) for a in argv]
    expected = expected.replace("{d}", str(files))
    before = sorted(str(p.relative_to(files)) for p in files.rglob("*"))
    code, err = run_in_process(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"fooling {argv[0]}: error: "), err
    assert expected in last, last
    assert sorted(str(p.relative_to(files)) for p in files.rglob("*")) == before  # nothing written


def test_every_subcommand_is_in_the_table():
    from fooling_ext.cli import build_parser

    parser = build_parser()
    commands = set(next(a for a in parser._actions if a.dest == "command").choices)
    assert commands - {argv[0] for _, argv, _ in CASES} == set()


def test_no_space_on_device_names_the_file(files, capsys, monkeypatch, tmp_path):
    import fooling_ext._files as writer

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer.os, "fsync", full)
    code, err = run_in_process(EVOLVE + ["--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip() == f"fooling evolve: error: No space left on device: {tmp_path / 'o' / 'config.json'}"


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        (
            "FOOLING_NUM_THREADS",
            "abc",
            "FOOLING_NUM_THREADS must be a whole number >= 1 (the CPU threads of the core), got 'abc'",
        ),
        (
            "FOOLING_NUM_THREADS",
            "0",
            "FOOLING_NUM_THREADS must be a whole number >= 1 (the CPU threads of the core), got '0'",
        ),
        (
            "FOOLING_NUM_THREADS",
            "-3",
            "FOOLING_NUM_THREADS must be a whole number >= 1 (the CPU threads of the core), got '-3'",
        ),
        ("FOOLING_BACKEND", "gpu", "FOOLING_BACKEND must be 'cpu' or 'cuda' (or unset), got 'gpu'"),
    ],
)
def test_a_bad_environment_variable_is_named_in_a_fresh_process(tmp_path, variable, value, expected):
    argv = ["evolve", "--generations", "1", "--batch", "4", "--no-progress", "--out", str(tmp_path / "o")]
    done = subprocess.run(
        [sys.executable, "-m", "fooling_ext", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, variable: value},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"fooling evolve: error: {expected}"
    assert not Path(tmp_path / "o" / "archive.npz").exists()


def test_a_huge_thread_count_is_capped_not_fatal(tmp_path):
    code = (
        "import fooling_ext as fx, os; p = fx.CPPNPopulation.initial(3, num_outputs=1, seed=1); "
        "fx.render(p, 8); print(fx.build_info()['cpu_threads'], len(os.sched_getaffinity(0)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "FOOLING_NUM_THREADS": "99999999999"},
    )
    assert done.returncode == 0, done.stderr
    threads, cpus = map(int, done.stdout.split())
    assert threads == cpus


def test_a_path_that_ends_in_an_option_name_keeps_its_name_in_the_message(tmp_path, capsys):
    # The library's "out is ..." becomes "--out is ..." on the command line, but a folder called out is a path.
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    code, err = run_in_process(
        ["evolve", "--generations", "1", "--batch", "4", "--no-progress", "--out", str(out)], capsys
    )
    assert code == 2 and f"{tmp_path}/out " in err and "/--out" not in err
