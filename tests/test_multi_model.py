"""Evolving against several models at once: the combination rules checked by hand on models of fixed outputs,
class lists that differ (an error naming the first mismatch) and class maps, a model that fails on the images,
what a run records and how it resumes (the same archive as an uninterrupted run), the per-model report, and
the command line's one-line errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from torch import nn

from fooling_ext.classifiers import Classifier, InputSpec, load_classifier
from fooling_ext.classifiers.combined import CombinedClassifier, combined_classifier, read_class_maps
from fooling_ext.classifiers.export_check import UnsafeModelFile
from fooling_ext.cli import main
from fooling_ext.runs.report import load_report
from fooling_ext.search import EvolveConfig, evolve, resume
from fooling_ext.search.models import recorded_classifier

SPEC = InputSpec(1, 8, 8, output="probabilities")


class Fixed(nn.Module):
    """Returns the same probabilities for every image."""

    def __init__(self, probabilities):
        super().__init__()
        self.register_buffer("p", torch.tensor(probabilities, dtype=torch.float32))

    def forward(self, x):
        return self.p.expand(len(x), -1).clone()


class Boom(nn.Module):
    """Scores blank images (the probe at construction) and fails on any image with a bright pixel."""

    def forward(self, x):
        if float(x.max()) > 0.5:
            raise RuntimeError("bright pixels are not supported")
        return torch.zeros(len(x), 3)


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def fixed(probabilities, names=("a", "b", "c"), name=None) -> Classifier:
    return Classifier(Fixed(probabilities), SPEC, class_names=list(names), name=name)


def small(**kw) -> EvolveConfig:
    base = dict(generations=6, batch=12, seed=5, backend="cpu", checkpoint_every=2, fast_inference=False)
    return EvolveConfig(**{**base, **kw})


IMAGES = torch.rand(4, 1, 8, 8)


@pytest.mark.parametrize("combine, expected", [("min", [0.5, 0.2, 0.1]), ("mean", [0.6, 0.3, 0.1])])
def test_min_and_mean_by_hand(combine, expected):
    a, b = fixed([0.7, 0.2, 0.1], name="A"), fixed([0.5, 0.4, 0.1], name="B")
    combined = CombinedClassifier([a, b], combine)
    got = combined.probabilities(IMAGES)
    assert got.shape == (4, 3)
    torch.testing.assert_close(got, torch.tensor([expected] * 4), rtol=0, atol=1e-7)
    assert combined.class_names == ["a", "b", "c"] and combined.name == f"{combine}({a.name}, {b.name})"


def test_three_models_min_takes_each_class_from_its_least_confident_model():
    models = [fixed([0.7, 0.2, 0.1]), fixed([0.5, 0.4, 0.1]), fixed([0.8, 0.1, 0.1])]
    got = CombinedClassifier(models, "min").probabilities(IMAGES)[0]
    torch.testing.assert_close(got, torch.tensor([0.5, 0.1, 0.1]), rtol=0, atol=1e-7)


def test_class_maps_reorder_and_add_classes():
    a = fixed([0.7, 0.2, 0.1], name="A")
    reordered = fixed([0.1, 0.5, 0.4], names=("c", "a", "b"), name="R")  # a: 0.5, b: 0.4, c: 0.1
    split = fixed([0.5, 0.3, 0.1, 0.1], names=("a", "b1", "b2", "c"), name="S")  # b1 + b2 stand for b
    renamed = fixed([0.5, 0.4, 0.1], names=("x", "y", "z"), name="N")
    combined = CombinedClassifier(
        [a, reordered, split, renamed],
        "mean",
        [None, {"c": "c", "a": "a", "b": "b"}, {"a": "a", "b1": "b", "b2": "b", "c": "c"}, "index"],
    )
    members = [p[0] for p in combined.member_probabilities(IMAGES)]
    expected = [[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.5, 0.4, 0.1], [0.5, 0.4, 0.1]]
    for got, want in zip(members, expected):
        torch.testing.assert_close(got, torch.tensor(want), rtol=0, atol=1e-7)
    torch.testing.assert_close(combined.probabilities(IMAGES)[0], torch.tensor([0.55, 0.35, 0.1]), rtol=0, atol=1e-6)


def test_a_class_left_out_of_a_map_counts_for_no_class():
    a = fixed([0.5, 0.3, 0.2], name="A")
    wider = fixed([0.4, 0.3, 0.2, 0.1], names=("a", "b", "c", "d"), name="W")  # d is no class of A's
    got = CombinedClassifier([a, wider], "min", [None, {"a": "a", "b": "b", "c": "c"}]).probabilities(IMAGES)[0]
    torch.testing.assert_close(got, torch.tensor([0.4, 0.3, 0.2]), rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    "names, message",
    [
        (
            ("a", "x", "c"),
            r"model 2 \(B\) does not have model 1's class names in the same order: its class 1 is 'x', "
            r"model 1's \(A\) is 'b'; give a class map",
        ),
        (
            ("a", "b", "c", "d"),
            r"model 2 \(B\) does not have model 1's class names in the same order: it has 4 classes, "
            r"model 1 \(A\) 3",
        ),
    ],
)
def test_mismatched_class_lists_name_the_first_mismatch(names, message):
    a = fixed([0.7, 0.2, 0.1], name="A")
    b = fixed([0.25] * 4 if len(names) == 4 else [0.5, 0.4, 0.1], names=names, name="B")
    with pytest.raises(ValueError, match=message):
        CombinedClassifier([a, b])


@pytest.mark.parametrize(
    "class_map, message",
    [
        ({"a": "a", "q": "b", "c": "c"}, r"model 2 \(B\): its class map names the class 'q', which it does not have"),
        ({"a": "a", "b": "zz", "c": "c"}, r"maps 'b' onto 'zz', which is not a class of model 1 \(A\)"),
        ({"a": "a", "c": "c"}, r"its class map gives none of its classes to model 1's class 'b'"),
        (["a", "b", "c"], r"a class map must be 'index' or an object of class names"),
        ("index", None),
    ],
)
def test_a_bad_class_map_is_refused(class_map, message):
    a = fixed([0.7, 0.2, 0.1], name="A")
    b = fixed([0.5, 0.4, 0.1], names=("a", "b", "c") if message else ("x", "y", "z"), name="B")
    if message is None:  # "index" with other names works (checked above); with other counts it does not
        wider = fixed([0.25] * 4, names="wxyz", name="W")
        with pytest.raises(ValueError, match=r"its class map 'index' needs as many classes as model 1 \(A\): it has 4"):
            CombinedClassifier([a, wider], class_maps=[None, "index"])
        return
    with pytest.raises(ValueError, match=message):
        CombinedClassifier([a, b], class_maps=[None, class_map])


def test_class_map_file(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"b.json": "index", "c.json": {"x": "a"}}))
    assert read_class_maps(path, ["a.pt2", "b.json", "c.json", "d.pt2"]) == [None, "index", {"x": "a"}, None]
    path.write_text(json.dumps({"a.pt2": "index"}))
    with pytest.raises(ValueError, match=r"names the model 'a.pt2': the first model takes no class map"):
        read_class_maps(path, ["a.pt2", "b.json"])
    path.write_text(json.dumps({"other": "index"}))
    with pytest.raises(ValueError, match=r"names the model 'other': not a --model given \(the other models are b.json"):
        read_class_maps(path, ["a.pt2", "b.json"])
    path.write_text("[1, 2")
    with pytest.raises(ValueError, match=r"class map file .*map.json is not JSON text"):
        read_class_maps(path, ["a.pt2", "b.json"])


def test_models_of_other_channels_are_refused():
    rgb = Classifier(
        Fixed([0.7, 0.2, 0.1]), InputSpec(3, 8, 8, output="probabilities"), class_names=list("abc"), name="RGB"
    )
    with pytest.raises(ValueError, match=r"different channels: G takes 1, RGB 3"):
        CombinedClassifier([fixed([0.7, 0.2, 0.1], name="G"), rgb])


def test_a_model_that_fails_on_the_images_is_named(tmp_path):
    boom = Classifier(Boom(), InputSpec(1, 8, 8), class_names=list("abc"), name="boom")
    with pytest.raises(
        ValueError,
        match=r"model 2 of 2 \(boom\) failed on the images: boom: the model rejected "
        r"input .*RuntimeError: bright pixels are not supported",
    ):
        evolve(small(encoding="direct"), tmp_path / "run", classifier=[fixed([0.7, 0.2, 0.1]), boom], progress=False)
    assert not (tmp_path / "run").exists()  # a run that failed before its first result leaves nothing


def test_a_run_records_every_model_and_its_report_shows_each(tmp_path):
    a, b = fixed([0.7, 0.2, 0.1], name="A"), fixed([0.5, 0.4, 0.1], name="B")
    result = evolve(small(encoding="direct"), tmp_path / "run", classifier=[a, b], progress=False)
    np.testing.assert_allclose(result.archive.confidence.numpy(), [0.5, 0.2, 0.1], atol=1e-7)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["run"]["models"] == ["custom", "custom"] and cfg["run"]["combine"] == "min"
    assert [m["name"] for m in cfg["classifier"]["models"]] == ["A", "B"]
    assert cfg["classifier"]["combine"] == "min" and cfg["classifier"]["name"] == "min(A, B)"
    assert len(cfg["inference"]["models"]) == 2
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [m["name"] for m in summary["models"]] == ["A", "B"]
    assert summary["models"][0]["median"] == pytest.approx(0.2) and summary["models"][1]["mean"] == pytest.approx(
        (0.5 + 0.4 + 0.1) / 3
    )
    np.testing.assert_allclose(
        [c["model_confidences"] for c in summary["classes"]], [[0.7, 0.5], [0.2, 0.4], [0.1, 0.1]], atol=1e-7
    )
    lines = load_report(tmp_path / "run").splitlines()
    assert lines[1].split()[:5] == ["class", "name", "confidence", "A", "B"]
    assert lines[2].split()[:5] == ["0", "a", "50.00%", "70.00%", "50.00%"]
    assert lines[3].split()[:5] == ["1", "b", "20.00%", "20.00%", "40.00%"]
    assert any(line.startswith("A: classes: 3  median confidence: 20.00%  mean: 33.33%") for line in lines)
    assert any(line.startswith("B: classes: 3  median confidence: 40.00%  mean: 33.33%") for line in lines)
    assert (tmp_path / "run" / "report.txt").read_text().rstrip("\n").splitlines() == lines[1:]


def test_a_list_of_one_classifier_is_a_run_of_one_model(tmp_path):
    result = evolve(small(encoding="direct"), tmp_path / "run", classifier=[fixed([0.7, 0.2, 0.1])], progress=False)
    assert "models" not in result.config["run"] and "combine" not in result.config["run"]
    assert "models" not in result.config["classifier"] and "chosen" in result.config["inference"]


def test_combine_needs_several_models():
    with pytest.raises(ValueError, match=r"combine applies to several models"):
        small(combine="mean").check()
    with pytest.raises(ValueError, match=r"model must be the first of models \('b.pt2'\), got 'mnist'"):
        small(models=["b.pt2", "mnist"]).check()
    with pytest.raises(ValueError, match=r"combine='mean' applies to several models, and one was given"):
        combined_classifier([fixed([0.7, 0.2, 0.1])], "mean")


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    """A 10-class linear model on 28 x 28 images: a .pt2 file and a JSON description of it."""
    d = tmp_path_factory.mktemp("linear")
    torch.manual_seed(0)
    program = torch.export.export(
        Linear().eval(), (torch.randn(2, 1, 28, 28),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, d / "linear.pt2")
    (d / "linear.json").write_text(
        json.dumps({"path": "linear.pt2", "channels": 1, "height": 28, "width": 28, "name": "linear"})
    )
    return d


def digest(folder) -> str:
    with np.load(folder / "archive.npz") as z:
        return hashlib.sha256(b"".join(z[k].tobytes() for k in sorted(z.files) if k != "meta")).hexdigest()


def test_resume_of_a_run_against_two_models_ends_as_the_uninterrupted_run(tmp_path, linear_model):
    models = ["mnist", str(linear_model / "linear.json")]
    config = small(model="mnist", models=models, combine="mean", generations=8)
    straight = evolve(config, tmp_path / "a", progress=False)
    evolve(small(model="mnist", models=models, combine="mean", generations=3), tmp_path / "b", progress=False)
    resumed = resume(tmp_path / "b", generations=8, model=models, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert torch.equal(straight.archive.confidence, resumed.archive.confidence)
    assert resumed.config["run"]["combine"] == "mean" and resumed.config["classifier"]["combine"] == "mean"
    # The combined confidence is the mean of the two models' (each elite rendered and scored again).
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    with np.load(tmp_path / "b" / "archive.npz") as z:
        meta = json.loads(bytes(z["meta"]).decode())
        confidence = z["confidence"]
    per_model = np.array(meta["model_confidence"], dtype=np.float64)
    np.testing.assert_allclose(per_model.mean(axis=0), confidence, atol=1e-5)
    assert cfg["run"]["models"] == models


def test_a_recorded_model_outside_the_folder_is_not_loaded_but_one_inside_is(tmp_path, linear_model):
    evolve(
        small(model="mnist", models=["mnist", str(linear_model / "linear.json")], generations=2),
        tmp_path / "run",
        progress=False,
    )
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    with pytest.raises(UnsafeModelFile, match=r"names the model file .*linear.json, which lies outside it"):
        recorded_classifier(recorded, folder=tmp_path / "run")
    (tmp_path / "run" / "models").mkdir()
    (tmp_path / "run" / "models" / "linear.pt2").write_bytes((linear_model / "linear.pt2").read_bytes())
    recorded["run"]["models"][1] = str(tmp_path / "run" / "models" / "linear.pt2")
    rebuilt = recorded_classifier(recorded, folder=tmp_path / "run")
    assert isinstance(rebuilt, CombinedClassifier) and [m.name for m in rebuilt.members] == ["mnist", "linear"]
    assert rebuilt.combine == "min" and rebuilt.members[1].spec == InputSpec(1, 28, 28)


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def test_the_command_line_evolves_resumes_and_reports_several_models(tmp_path, linear_model, capsys):
    desc = linear_model / "linear.json"
    base = [
        "evolve",
        "--model",
        "mnist",
        "--model",
        desc,
        "--generations",
        "4",
        "--batch",
        "12",
        "--seed",
        "2",
        "--backend",
        "cpu",
        "--no-progress",
        "--no-fast-inference",
        "--checkpoint-every",
        "2",
    ]
    assert run_cli(base + ["--out", tmp_path / "a", "--generations", "6"], capsys)[0] == 0
    assert run_cli(base + ["--out", tmp_path / "b"], capsys)[0] == 0
    code, err = run_cli(["evolve", "--out", tmp_path / "b", "--resume", "--generations", "6"], capsys)
    assert code == 2 and err == (
        f"fooling evolve: error: {tmp_path / 'b'} names the model file "
        f"{linear_model / 'linear.pt2'}, which lies outside it; a folder from elsewhere does "
        "not choose which file is loaded: pass --model PATH to load it"
    )
    code, err = run_cli(
        ["evolve", "--out", tmp_path / "b", "--resume", "--generations", "6", "--model", "mnist"], capsys
    )
    assert code == 2 and "the run was made with 2 models" in err and "got 1" in err
    code, err = run_cli(
        ["evolve", "--out", tmp_path / "b", "--resume", "--generations", "6", "--model", "mnist", "--model", desc],
        capsys,
    )
    assert code == 0, err
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    capsys.readouterr()
    assert main(["report", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:5] == ["class", "name", "confidence", "mnist", "linear"]
    assert any(line.startswith("mnist: classes: 10  median confidence:") for line in out)
    assert any(line.startswith("linear: classes: 10  median confidence:") for line in out)


@pytest.fixture(scope="module")
def other_names(linear_model):
    """A description of the linear model with the class names 'zero'..'nine', and class maps for it."""
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    (linear_model / "named.json").write_text(
        json.dumps({"path": "linear.pt2", "channels": 1, "height": 28, "width": 28, "name": "named", "classes": names})
    )
    good = {str(linear_model / "named.json"): {name: str(i) for i, name in enumerate(names)}}
    (linear_model / "map.json").write_text(json.dumps(good))
    bad = {str(linear_model / "named.json"): {name: str(i) for i, name in enumerate(names[:9])}}
    (linear_model / "bad_map.json").write_text(json.dumps(bad))
    return linear_model


def test_a_class_map_file_on_the_command_line(tmp_path, other_names, capsys):
    d = other_names
    argv = [
        "evolve",
        "--model",
        "mnist",
        "--model",
        d / "named.json",
        "--generations",
        "2",
        "--batch",
        "8",
        "--backend",
        "cpu",
        "--no-progress",
        "--no-fast-inference",
    ]
    code, err = run_cli(argv + ["--out", tmp_path / "a", "--class-map", d / "map.json"], capsys)
    assert code == 0, err
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["classifier"]["class_names"] == [str(i) for i in range(10)]
    assert cfg["classifier"]["models"][1]["class_map"]["three"] == "3"


@pytest.mark.parametrize(
    "extra, expected",
    [
        (
            [],
            "model 2 (named) does not have model 1's class names in the same order: its class 0 is 'zero', model 1's "
            "(mnist) is '0'; give a class map (--class-map FILE, docs/classifiers.md) that maps its classes onto "
            "model 1's",
        ),
        (
            ["--class-map", "{d}/bad_map.json"],
            "model 2 (named): its class map gives none of its classes to model 1's "
            "class '9'; every class of model 1 needs one",
        ),
        (["--class-map", "{d}/nothing.json"], "class map file not found: {d}/nothing.json"),
        (
            ["--model-size", "28"],
            "--model-size describes one model file; with several --model, describe each model "
            "file in a .json description (docs/classifiers.md) and give that",
        ),
        (["--model", "mnist"], "--model mnist is given twice"),
    ],
)
def test_bad_input_with_several_models_is_one_line_and_status_2(tmp_path, other_names, capsys, extra, expected):
    d = other_names
    argv = [
        "evolve",
        "--model",
        "mnist",
        "--model",
        d / "named.json",
        "--generations",
        "1",
        "--batch",
        "8",
        "--backend",
        "cpu",
        "--no-progress",
        "--out",
        tmp_path / "run",
    ]
    code, err = run_cli(argv + [e.format(d=d) for e in extra], capsys)
    assert code == 2 and err == "fooling evolve: error: " + expected.format(d=d)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--combine", "mean"], "--combine applies to several --model, and one was given"),
        (["--class-map", "map.json"], "--class-map applies to several --model, and one was given"),
    ],
)
def test_combine_and_class_map_with_one_model_are_refused(tmp_path, capsys, extra, expected):
    code, err = run_cli(["evolve", "--model", "mnist", "--out", tmp_path / "run", *extra], capsys)
    assert code == 2 and err == "fooling evolve: error: " + expected


def test_a_run_of_one_model_records_what_it_always_did(tmp_path):
    result = evolve(
        small(model="mnist", generations=1), tmp_path / "run", classifier=load_classifier("mnist"), progress=False
    )
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "models" not in cfg["run"] and "combine" not in cfg["run"] and "models" not in cfg["classifier"]
    with np.load(tmp_path / "run" / "archive.npz") as z:
        assert "model_confidence" not in json.loads(bytes(z["meta"]).decode())
    assert "models" not in json.loads((tmp_path / "run" / "summary.json").read_text())
    assert result.config["run"]["model"] == "mnist"


def test_fast_inference_chooses_and_on_resume_keeps_each_models_settings(tmp_path, monkeypatch):
    from fooling_ext.classifiers import choice_cache, inference
    from fooling_ext.search import models as models_module

    monkeypatch.setenv("FOOLING_CACHE_DIR", str(tmp_path / "cache"))  # measured here, not kept from another test
    chosen, applied = [], []

    def choose(classifier, images, **kwargs):  # eager candidates only: the choice per model is what is checked here
        chosen.append(classifier.name)
        return inference.choose_inference_settings(classifier, images, engines=("eager",), repeats=1)

    def apply(classifier, images, recorded):
        applied.append((classifier.name, recorded))
        return inference.apply_recorded(classifier, images, recorded)

    monkeypatch.setattr(choice_cache, "choose_inference_settings", choose)
    monkeypatch.setattr(models_module, "apply_recorded", apply)
    a, b = fixed([0.7, 0.2, 0.1], name="A"), fixed([0.5, 0.4, 0.1], name="B")
    config = small(encoding="direct", generations=2, fast_inference=True)
    result = evolve(config, tmp_path / "run", classifier=[a, b], progress=False)
    assert chosen == ["A", "B"] and applied == []
    records = result.config["inference"]["models"]
    candidates = inference.candidate_settings(torch.device("cpu"), ("eager",))
    assert [len(r["trials"]) for r in records] == [len(candidates)] * 2
    evolve(dataclasses.replace(config, generations=3), tmp_path / "run", classifier=[a, b], resume=True, progress=False)
    assert chosen == ["A", "B"] and applied == [("A", records[0]["chosen"]), ("B", records[1]["chosen"])]


def test_analyses_score_a_run_against_several_models_with_all_of_them(tmp_path, linear_model):
    from fooling_ext.analyses import load_run, run_classifier
    from fooling_ext.analyses.sources import class_confidence

    evolve(
        small(model="mnist", models=["mnist", str(linear_model / "linear.json")], generations=3),
        tmp_path / "run",
        progress=False,
    )
    (tmp_path / "run" / "linear.pt2").write_bytes((linear_model / "linear.pt2").read_bytes())
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    cfg["run"]["models"][1] = str(tmp_path / "run" / "linear.pt2")  # a folder may name a file inside it
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg))
    run = load_run(tmp_path / "run")
    clf = run_classifier(run, device="cpu")
    assert isinstance(clf, CombinedClassifier) and clf.combine == "min"
    images = torch.from_numpy(run.images).float() / 255
    np.testing.assert_allclose(class_confidence(clf, images, np.arange(10)), run.confidence, atol=1e-5)


def test_resume_refuses_combine_and_class_map_naming_what_the_run_was_made_with(tmp_path, capsys):
    evolve(
        small(encoding="direct", generations=1),
        tmp_path / "run",
        classifier=[fixed([0.7, 0.2, 0.1]), fixed([0.5, 0.4, 0.1])],
        progress=False,
    )
    code, err = run_cli(
        ["evolve", "--out", tmp_path / "run", "--resume", "--combine", "mean", "--class-map", "m.json"], capsys
    )
    assert code == 2 and err.startswith(
        f"fooling evolve: error: --combine, --class-map cannot be given with --resume: "
        f"the run in {tmp_path / 'run'} was made with --combine min, without "
        "--class-map and continues with it"
    )
