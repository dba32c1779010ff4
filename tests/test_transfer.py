"""fooling analyze transfer: the elites of MNIST-shaped runs scored by the shipped LeNet and by other models
whose answers can be worked out by hand."""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fooling_ext.analyses import read_analysis, transfer
from fooling_ext.analyses.transfer import THRESHOLDS, as_channels
from fooling_ext.classifiers import load_classifier
from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.models import load_lenet
from fooling_ext.classifiers.spec import MNIST_SPEC, InputSpec
from fooling_ext.cli import main
from fooling_ext.runs.archive_file import write_archive

# The confidence each class's elite gets from the shipped LeNet, about: spread over the thresholds.
WANTED = (0.3, 0.6, 0.8, 0.95, 0.97, 0.995, 0.999, 0.9999, 0.1, 0.9993)
BIAS = (1.0, -4.0, 0.0, -4.0, 2.0, -4.0, 0.0, -4.0, 0.0, -4.0)  # added to the target LeNet's final-layer bias


@pytest.fixture(scope="module")
def lenet() -> Classifier:
    return load_classifier("mnist")


@pytest.fixture(scope="module")
def elites(lenet) -> np.ndarray:
    """uint8 [10, 1, 28, 28]: for digit k, the random bars image whose LeNet confidence in k is nearest WANTED[k]."""
    rng = np.random.default_rng(0)
    pool = np.zeros((600, 1, 28, 28), np.uint8)
    for image in pool:
        for _ in range(2):
            x, y = rng.integers(0, 20, 2)
            w, h = rng.integers(2, 12, 2)
            image[0, y : y + h, x : x + w] = 255
    p = lenet.probabilities(torch.from_numpy(pool).float() / 255).numpy()
    return pool[[int(np.argmin(np.abs(p[:, k] - wanted))) for k, wanted in enumerate(WANTED)]]


def write_run(path: Path, images: np.ndarray, *, seed: int = 1, model: str = "mnist") -> Path:
    """A finished MNIST run folder holding `images` as the elites of the 10 digits."""
    names = [str(k) for k in range(10)]
    path.mkdir(parents=True)
    config = {
        "run": {"model": model, "encoding": "cppn", "seed": seed, "backend": "cpu"},
        "classifier": {
            "name": "mnist",
            "class_names": names,
            "num_classes": 10,
            "spec": dataclasses.asdict(MNIST_SPEC),
        },
    }
    (path / "config.json").write_text(json.dumps(config))
    write_archive(
        path / "archive.npz",
        {
            "images": images,
            "confidence": np.full(10, 0.5, np.float32),
            "occupied": np.ones(10, dtype=bool),
            "generation": np.zeros(10, dtype=np.int64),
            "elite_id": np.arange(10),
            "parent_id": np.full(10, -1),
        },
        {"class_names": names, "insertion": "all"},
    )
    return path


def shifted_lenet() -> nn.Module:
    module = copy.deepcopy(load_lenet())
    last = [m for m in module.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.bias += torch.tensor(BIAS)
    return module


def shifted_by_hand(p: np.ndarray) -> np.ndarray:
    """The shifted LeNet's probabilities from the shipped one's `p`: a bias b on the logits multiplies p by e^b
    before the softmax renormalises."""
    w = np.exp(np.array(BIAS))
    return p * w / (p @ w)[:, None]


def by_hand(source: np.ndarray, target: np.ndarray, top: np.ndarray, classes: np.ndarray) -> dict:
    figures = {
        "median_source": np.median(source),
        "median_target": np.median(target),
        "median_drop": np.median(source - target),
        "top_class": np.mean(top == classes),
    }
    for t in THRESHOLDS:
        key = f"{100 * t:g}"
        figures[f"share_source_ge{key}"] = np.mean(source >= t)
        figures[f"share_target_ge{key}"] = np.mean(target >= t)
        figures[f"still_ge{key}"] = np.mean(target[source >= t] >= t) if (source >= t).any() else None
    return figures


def test_a_target_identical_to_the_source_loses_nothing(tmp_path, elites, lenet):
    run = write_run(tmp_path / "run", elites)
    summary = transfer(run, tmp_path / "out", models=["mnist"])
    f = summary["targets"]["mnist"]
    source = lenet.probabilities(torch.from_numpy(elites).float() / 255).numpy()[np.arange(10), np.arange(10)]
    assert f["elites"] == 10 and f["median_drop"] == 0.0 and f["median_target"] == f["median_source"]
    assert f["median_source"] == pytest.approx(np.median(source), abs=1e-6)
    for t in THRESHOLDS:
        key = f"{100 * t:g}"
        assert f[f"share_target_ge{key}"] == f[f"share_source_ge{key}"] == pytest.approx(np.mean(source >= t))
        assert f[f"still_ge{key}"] == 1.0
    assert (f["share_source_ge50"], f["share_source_ge90"], f["share_source_ge99"]) == (0.8, 0.6, 0.4)  # WANTED
    top = lenet.probabilities(torch.from_numpy(elites).float() / 255).numpy().argmax(1)
    assert f["top_class"] == np.mean(top == np.arange(10)) >= 0.8


def test_a_lenet_with_another_final_bias_scores_as_worked_out_by_hand(tmp_path, elites, lenet):
    run = write_run(tmp_path / "run", elites)
    target = Classifier(shifted_lenet(), MNIST_SPEC, class_names=lenet.class_names, name="shifted")
    summary = transfer(run, tmp_path / "out", models={"shifted": target, "same": lenet})
    p = lenet.probabilities(torch.from_numpy(elites).float() / 255).double().numpy()
    shifted = shifted_by_hand(p)
    classes = np.arange(10)
    expected = by_hand(p[classes, classes], shifted[classes, classes], shifted.argmax(1), classes)
    f = summary["targets"]["shifted"]
    assert f["median_drop"] > 0.001 and f["share_target_ge99"] < f["share_source_ge99"]  # the target differs
    for key, value in expected.items():
        assert f[key] == (None if value is None else pytest.approx(value, abs=1e-5)), key
    assert summary["targets"]["same"]["median_drop"] == 0.0
    rows = list(csv.DictReader((tmp_path / "out" / "elites.csv").open()))
    zero = next(r for r in rows if r["target"] == "shifted" and r["class"] == "0")
    assert float(zero["confidence"]) == pytest.approx(shifted[0, 0], abs=1e-5)
    assert float(zero["drop"]) == pytest.approx(p[0, 0] - shifted[0, 0], abs=1e-5)
    assert zero["top_name"] == str(shifted[0].argmax())
    per_class = list(csv.DictReader((tmp_path / "out" / "per_class.csv").open()))
    assert len(per_class) == 20 and {r["target"] for r in per_class} == {"shifted", "same"}
    assert float(
        next(r for r in per_class if r["target"] == "shifted" and r["class"] == "3")["median_target"]
    ) == pytest.approx(shifted[3, 3], abs=1e-5)


def test_a_sweep_stands_for_its_done_runs_pooled_and_per_run(tmp_path, elites, lenet):
    sweep = tmp_path / "sweep"
    write_run(sweep / "runs" / "a", elites, seed=1)
    write_run(sweep / "runs" / "b", elites[::-1].copy(), seed=2)  # the same images, other classes
    entries = [
        {"name": n, "folder": f"runs/{n}", "status": s} for n, s in (("a", "done"), ("b", "done"), ("c", "running"))
    ]
    (sweep / "sweep.json").write_text(json.dumps({"runs": entries}))
    target = Classifier(shifted_lenet(), MNIST_SPEC, class_names=lenet.class_names, name="shifted")
    summary = transfer(sweep, tmp_path / "out", models={"shifted": target})
    assert set(summary["per_run"]) == {str(sweep / "runs" / "a"), str(sweep / "runs" / "b")}
    p = lenet.probabilities(torch.from_numpy(elites).float() / 255).double().numpy()
    shifted = shifted_by_hand(p)
    classes = np.arange(10)
    runs = [(classes, classes), (classes, classes[::-1])]  # (cell, image index) of a and of b
    source = np.concatenate([p[i, c] for c, i in runs])
    target = np.concatenate([shifted[i, c] for c, i in runs])
    top = np.concatenate([shifted[i].argmax(1) for _, i in runs])
    expected = by_hand(source, target, top, np.concatenate([c for c, _ in runs]))
    pooled = summary["targets"]["shifted"]
    assert pooled["elites"] == 20
    for key, value in expected.items():
        assert pooled[key] == (None if value is None else pytest.approx(value, abs=1e-5)), key
    per_b = summary["per_run"][str(sweep / "runs" / "b")]["shifted"]
    assert per_b["median_target"] == pytest.approx(np.median(shifted[classes[::-1], classes]), abs=1e-5)
    assert len(list(csv.DictReader((tmp_path / "out" / "per_class.csv").open()))) == 10
    assert read_analysis(tmp_path / "out")["runs"] == [str(sweep)]


def test_a_target_with_other_classes_is_refused_naming_the_first_difference(tmp_path, elites):
    run = write_run(tmp_path / "run", elites)
    renamed = [str(k) for k in range(10)]
    renamed[3] = "three"
    target = Classifier(load_lenet(), MNIST_SPEC, class_names=renamed, name="renamed")
    with pytest.raises(
        ValueError,
        match=r"the model renamed does not have the classes of .*run's classifier in the "
        r"same order \(10 classes against 10\): the first difference is class 3, "
        r"'three' in renamed and '3' in the run",
    ):
        transfer(run, tmp_path / "out", models=[target])
    eleven = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(784, 11)), MNIST_SPEC, name="eleven")
    with pytest.raises(
        ValueError,
        match=r"\(11 classes against 10\): the first difference is class 10, '10' in "
        r"eleven and none in the run",
    ):
        transfer(run, tmp_path / "out", models=[eleven])
    assert not (tmp_path / "out").exists()  # nothing is left of an analysis that failed


class FailsOnImages(nn.Module):
    """Scores a blank probe (as a Classifier checks when built), fails on anything else."""

    def forward(self, x):
        if x.abs().sum() > 0:
            raise RuntimeError("kaboom: cannot score these")
        return torch.zeros(x.shape[0], 10)


def test_a_model_that_fails_on_the_elites_is_named(tmp_path, elites):
    run = write_run(tmp_path / "run", elites)
    target = Classifier(FailsOnImages(), MNIST_SPEC, name="fragile")
    with pytest.raises(
        ValueError,
        match=r"the model broken fails on the elites of .*run \(10 images of 1x28x28\): "
        r".*RuntimeError: kaboom: cannot score these$",
    ):
        transfer(run, tmp_path / "out", models={"broken": target})


def test_a_target_of_another_size_and_channels_gets_the_elites_resized_in_colour(tmp_path, elites):
    run = write_run(tmp_path / "run", elites)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    spec = InputSpec(channels=3, height=32, width=32)
    summary = transfer(run, tmp_path / "out", models={"colour32": Classifier(module, spec)})
    # as fooling evolve feeds a model renders of another size: resized to its input
    resizing = Classifier(module, dataclasses.replace(spec, resize=True))
    grey = torch.from_numpy(elites).float() / 255
    expected = resizing.probabilities(grey.repeat(1, 3, 1, 1)).double().numpy()[np.arange(10), np.arange(10)]
    rows = [r for r in csv.DictReader((tmp_path / "out" / "elites.csv").open())]
    assert [float(r["confidence"]) for r in rows] == pytest.approx(expected, abs=1e-5)
    assert summary["targets"]["colour32"]["median_target"] == pytest.approx(np.median(expected), abs=1e-6)


def test_fast_inference_scores_within_its_tolerance(tmp_path, elites):
    run = write_run(tmp_path / "run", elites)
    summary = transfer(run, tmp_path / "out", models=["mnist"], fast_inference=True)
    assert summary["fast_inference"] is True
    drops = [float(r["drop"]) for r in csv.DictReader((tmp_path / "out" / "elites.csv").open())]
    assert len(drops) == 10 and max(abs(d) for d in drops) <= 2e-3  # each within 1e-3 of float32


def test_grey_elites_reach_a_colour_model_as_three_equal_channels_and_back_as_luma():
    grey = torch.rand(2, 1, 4, 4)
    colour = as_channels(grey, 3)
    assert (
        colour.shape == (2, 3, 4, 4) and torch.equal(colour[:, 1], grey[:, 0]) and torch.equal(colour[:, 2], grey[:, 0])
    )
    assert torch.allclose(as_channels(colour, 1), grey, atol=1e-6)  # the luma weights sum to 1
    red = torch.zeros(1, 3, 1, 1)
    red[0, 0] = 1.0
    assert float(as_channels(red, 1)) == pytest.approx(0.299)


def test_the_command_line_writes_its_outputs_and_refuses_bad_input(tmp_path, elites, capsys):
    run = write_run(tmp_path / "run", elites)
    lenet_file = tmp_path / "shifted.pt"  # a LeNet state_dict, as fooling train-mnist writes
    torch.save(shifted_lenet().state_dict(), lenet_file)
    out = tmp_path / "out"
    assert (
        main(
            [
                "analyze",
                "transfer",
                str(run),
                "--model",
                "mnist",
                "--model",
                str(lenet_file),
                "--model-channels",
                "1",
                "--model-size",
                "28x28",
                "--out",
                str(out),
                "--examples",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"analysis folder: {out}" in printed
    table = [line.split() for line in printed.splitlines() if line.startswith(("mnist", str(lenet_file)))]
    assert [row[0] for row in table] == ["mnist", str(lenet_file)] and table[0][4] == "0.00%"  # no drop on itself
    summary = read_analysis(out)["summary"]
    assert set(summary["targets"]) == {"mnist", str(lenet_file)} and summary["fast_inference"] is False
    for name in (
        "analysis.json",
        "report.md",
        "transfer.csv",
        "per_class.csv",
        "elites.csv",
        "transfer.png",
        "examples/transfer_best.png",
        "examples/transfer_worst.png",
    ):
        assert (out / name).is_file(), name
    assert len(list(csv.DictReader((out / "elites.csv").open()))) == 20
    assert summary["conclusion"] in (out / "report.md").read_text()
    from PIL import Image

    assert (
        Image.open(out / "examples" / "transfer_best.png").size
        == Image.open(out / "examples" / "transfer_worst.png").size
    )  # 2 rows (targets) of 3
    capsys.readouterr()
    (tmp_path / "words.txt").write_text("zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n")
    bad = [
        (["--model", "nowhere.pt2"], "no built-in model and no model file called 'nowhere.pt2'"),
        (["--model", "mnist", "--model", "mnist"], "--model mnist is given twice"),
        (
            ["--model", str(lenet_file), "--model-classes", str(tmp_path / "words.txt")],
            f"the model {lenet_file} does not have the classes of {run}'s classifier in the same order (10 classes "
            f"against 10): the first difference is class 0, 'zero' in {lenet_file} and '0' in the run",
        ),
    ]
    for extra, message in bad:
        assert main(["analyze", "transfer", str(run), *extra, "--out", str(tmp_path / "x"), "--no-progress"]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("fooling analyze: error:") and message in error and len(error.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", "transfer", str(run), "--out", str(tmp_path / "x")])  # no --model
    assert exit_.value.code == 2
    assert (
        main(["analyze", "transfer", str(tmp_path / "missing"), "--model", "mnist", "--out", str(tmp_path / "x")]) == 2
    )
    assert "no run folder" in capsys.readouterr().err
