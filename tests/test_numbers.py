"""Numbers at the boundaries: every option of every command, every configuration's check() and the Python API
refuse a number that is not finite, out of range, fractional where it must be whole, or a class given twice,
in one line naming it; sizes beyond the machine's memory are refused before anything is allocated; a checkpoint
that disagrees with its metrics is not resumed; a config.json, sweep.json or summary.json of the wrong shape is
one line naming the file. Nothing is written where a command was refused."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pytest
import torch

from fooling_ext.analyses import RepetitionConfig, StructureConfig, repetition, structure
from fooling_ext.classifiers.loading import load_classifier
from fooling_ext.cli import main
from fooling_ext.core.checks import check_memory
from fooling_ext.experiments.gradient_ascent import GradientConfig, resolve_classes
from fooling_ext.experiments.imagenet_fooling_class import FoolingClassConfig
from fooling_ext.experiments.mnist_fooling_class import RetrainConfig
from fooling_ext.runs.folder import RunFolder, RunFolderError
from fooling_ext.search.archive import Archive
from fooling_ext.search.config import EvolveConfig
from fooling_ext.search.encodings import make_encoding
from fooling_ext.search.evolve import evolve
from fooling_ext.search.map_elites import MapElites
from fooling_ext.sweep.folder import SweepFolder
from fooling_ext.sweep.spec import SweepSpec, SweepSpecError
from fooling_ext.sweep.summary import sweep_summary

EVOLVE = ["evolve", "--generations", "2", "--batch", "8", "--backend", "cpu", "--no-progress"]
GRADIENT = ["gradient", "--steps", "1", "--backend", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def lenet():
    return load_classifier("mnist")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("numbers")
    assert main(EVOLVE + ["--checkpoint-every", "1", "--out", str(d / "run")]) == 0
    (d / "nan.json").write_text('{"resources": {"gpus": NaN}}')  # Python's json reads NaN
    (d / "inf.toml").write_text('[options]\ngenerations = 2\n"direct_mutation.rate" = inf\n')
    return d


def snapshot(folder):
    """Every file under `folder` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


# (id, arguments with {d} for the inputs folder, what the error line must contain)
CASES = [
    (
        "gradient-lr-nan",
        GRADIENT + ["--lr", "nan", "--out", "{d}/o"],
        "argument --lr: expected a finite number > 0, got 'nan'",
    ),
    (
        "gradient-blur-nan",
        GRADIENT + ["--blur", "nan", "--out", "{d}/o"],
        "argument --blur: expected a finite number >= 0, got 'nan'",
    ),
    (
        "gradient-target-inf",
        GRADIENT + ["--target", "inf", "--out", "{d}/o"],
        "argument --target: expected a finite number in (0, 1], got 'inf'",
    ),
    (
        "gradient-decay",
        GRADIENT + ["--decay", "1", "--out", "{d}/o"],
        "argument --decay: expected a finite number in [0, 1), got '1'",
    ),
    ("gradient-classes-twice", GRADIENT + ["--classes", "1,1", "--out", "{d}/o"], "classes lists class 1 (1) twice"),
    (
        "gradient-classes-twice-written-otherwise",
        GRADIENT + ["--classes", "3,7,03", "--out", "{d}/o"],
        "classes lists class 3 (3) twice (as '3' and '03')",
    ),
    (
        "repetition-min-peak-nan",
        ["analyze", "repetition", "{d}/run", "--min-peak", "nan", "--out", "{d}/a"],
        "argument --min-peak: expected a finite number in [0, 1], got 'nan'",
    ),
    (
        "repetition-min-period",
        ["analyze", "repetition", "{d}/run", "--min-period=-inf", "--out", "{d}/a"],
        "argument --min-period: expected a finite number > 0, got '-inf'",
    ),
    (
        "repetition-top-fraction",
        ["analyze", "repetition", "{d}/run", "--top", "1.5", "--out", "{d}/a"],
        "argument --top: expected a whole number >= 1, got '1.5'",
    ),
    (
        "structure-min-confidence-nan",
        ["analyze", "structure", "{d}/run", "--min-confidence", "nan", "--out", "{d}/a"],
        "argument --min-confidence: expected a finite number in [0, 1], got 'nan'",
    ),
    (
        "transfer-min-confidence-above-one",
        ["analyze", "transfer", "{d}/run", "--model", "mnist", "--min-confidence", "1.01", "--out", "{d}/a"],
        "argument --min-confidence: expected a finite number in [0, 1], got '1.01'",
    ),
    (
        "structure-grids-twice",
        ["analyze", "structure", "{d}/run", "--grids", "2,2", "--out", "{d}/a"],
        "--grids: expected distinct whole numbers >= 1, got '2,2'",
    ),
    (
        "structure-patch",
        ["analyze", "structure", "{d}/run", "--patch", "-1", "--out", "{d}/a"],
        "argument --patch: expected a whole number >= 0, got '-1'",
    ),
    (
        "diversity-pixel-side",
        ["analyze", "diversity", "{d}/run", "{d}/run", "--pixel-side", "0", "--out", "{d}/a"],
        "argument --pixel-side: expected a whole number >= 1, got '0'",
    ),
    (
        "retrain-cpus-nan",
        ["retrain", "--cpus-per-run", "nan", "--runner", "local", "--out", "{d}/r"],
        "argument --cpus-per-run: expected a finite number > 0, got 'nan'",
    ),
    (
        "retrain-gpus-inf",
        ["retrain", "--gpus-per-run", "inf", "--runner", "local", "--out", "{d}/r"],
        "argument --gpus-per-run: expected a finite number >= 0, got 'inf'",
    ),
    (
        "retrain-rounds-negative",
        ["retrain", "--rounds", "-1", "--runner", "local", "--out", "{d}/r"],
        "--rounds must be a whole number >= 1, got -1",
    ),
    (
        "imagenet-holdout-nan",
        ["imagenet-fooling-class", "--run", "{d}/run", "--holdout", "nan", "--out", "{d}/i"],
        "argument --holdout: expected a finite number in [0, 1), got 'nan'",
    ),
    (
        "imagenet-weight-decay",
        ["imagenet-fooling-class", "--run", "{d}/run", "--weight-decay", "-1", "--out", "{d}/i"],
        "argument --weight-decay: expected a finite number >= 0, got '-1'",
    ),
    (
        "imagenet-folds",
        ["imagenet-fooling-class", "--run", "{d}/run", "--folds", "1", "--out", "{d}/i"],
        "argument --folds: expected a whole number >= 2, got '1'",
    ),
    (
        "sweep-cpus-nan",
        ["sweep", "--out", "{d}/s", "--cpus-per-run", "nan"],
        "argument --cpus-per-run: expected a finite number > 0, got 'nan'",
    ),
    (
        "sweep-max-retries",
        ["sweep", "--out", "{d}/s", "--max-retries", "-1"],
        "argument --max-retries: expected a whole number >= 0, got '-1'",
    ),
    (
        "sweep-option-nan",
        ["sweep", "--out", "{d}/s", "--encodings", "direct", "--option", "direct_mutation.rate=nan"],
        "options.direct_mutation.rate must be finite, got nan",
    ),
    (
        "sweep-option-fraction",
        ["sweep", "--out", "{d}/s", "--option", "generations=2.5"],
        "options.generations must be an integer, got 2.5",
    ),
    (
        "sweep-option-huge-image",
        ["sweep", "--out", "{d}/s", "--option", "image_size=100000x100000"],
        "image_size must be a whole number in [1, 1024], got 100000",
    ),
    (
        "sweep-spec-nan",
        ["sweep", "--out", "{d}/s", "--spec", "{d}/nan.json"],
        "resources.gpus must be a finite number >= 0, got nan",
    ),
    (
        "sweep-spec-inf",
        ["sweep", "--out", "{d}/s", "--encodings", "direct", "--spec", "{d}/inf.toml"],
        "options.direct_mutation.rate must be finite, got inf",
    ),
    (
        "train-lr-nan",
        ["train-mnist", "--lr", "nan", "--out", "{d}/w.pt"],
        "argument --lr: expected a finite number > 0, got 'nan'",
    ),
    (
        "train-limit",
        ["train-mnist", "--limit-train", "0", "--out", "{d}/w.pt"],
        "argument --limit-train: expected a whole number >= 1, got '0'",
    ),
    (
        "evolve-huge-image",
        EVOLVE + ["--image-size", "100000x100000", "--out", "{d}/o"],
        "--image-size must be a whole number in [1, 1024], got 100000",
    ),
    (
        "evolve-huge-batch",
        EVOLVE[:3] + ["--batch", "1000000000", "--backend", "cpu", "--out", "{d}/o"],
        "a run of 1000000000 children of 1x28x28 images against 10 classes would need 9.8 TB, more than this "
        "machine's memory",
    ),
    (
        "evolve-model-scale-nan",
        EVOLVE + ["--model-scale", "nan", "--out", "{d}/o"],
        "argument --model-scale: expected a finite number > 0, got 'nan'",
    ),
    (
        "evolve-model-mean-inf",
        EVOLVE + ["--model-mean", "inf", "--out", "{d}/o"],
        "argument --model-mean: expected finite numbers separated by commas, got 'inf'",
    ),
    (
        "evolve-mutation-rate-nan",
        EVOLVE + ["--encoding", "direct", "--mutation-rate", "nan", "--out", "{d}/o"],
        "argument --mutation-rate: expected a finite number in [0, 1], got 'nan'",
    ),
]


@pytest.mark.parametrize("argv, expected", [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_a_bad_number_is_one_line_naming_the_option_and_the_value(files, capsys, argv, expected):
    argv = [a.replace("{d}", str(files)) for a in argv]
    before = snapshot(files)
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert re.match(rf"fooling {argv[0]}( {argv[1]})?: error: ", last), err  # argparse names the subcommand
    assert expected in last, last
    assert snapshot(files) == before  # nothing written, no folder made


def test_every_command_with_numbers_is_covered():
    from fooling_ext.cli import build_parser

    commands = set(next(a for a in build_parser()._actions if a.dest == "command").choices)
    no_numbers = {"report", "gallery", "pack", "unpack"}
    assert commands - {argv[0] for _, argv, _ in CASES} == no_numbers


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(batch=True), "batch must be a whole number >= 1, got True"),
        (dict(generations=2.0), "generations must be a whole number >= 1, got 2.0"),
        (dict(image_size=(28.5, 28)), r"image_size must be a whole number in \[1, 1024\], got 28.5"),
        (dict(image_size=(28, True)), r"image_size must be a whole number in \[1, 1024\], got True"),
        (dict(image_size=(28, 28, 3)), r"image_size must be \(height, width\), got \(28, 28, 3\)"),
        (dict(checkpoint_every=float("nan")), "checkpoint_every must be a whole number >= 1, got nan"),
        (dict(encoding="direct", halve_every=True), "halve_every must be a whole number >= 1, got True"),
        (dict(fast_inference="yes"), "fast_inference must be True, False or None, got 'yes'"),
    ],
)
def test_evolve_config_check_refuses_what_is_not_a_whole_number_in_range(change, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        EvolveConfig(**change).check()


@pytest.mark.parametrize(
    "config, message",
    [
        (GradientConfig(lr=float("nan")), "lr must be a finite number > 0, got nan"),
        (GradientConfig(blur_radius=float("nan")), "blur_radius must be a finite number >= 0, got nan"),
        (GradientConfig(target=float("nan")), r"target must be a finite number in \(0, 1\], got nan"),
        (GradientConfig(steps=True), "steps must be a whole number >= 1, got True"),
        (GradientConfig(noise_std=-1.0), "noise_std must be a finite number >= 0, got -1.0"),
        (GradientConfig(classes="12"), "classes must be a list of class indices or names, got '12'"),
        (RetrainConfig(lr=float("inf")), "lr must be a finite number > 0, got inf"),
        (RetrainConfig(threads=1.0), "threads must be a whole number >= 1, got 1.0"),
        (FoolingClassConfig(runs=["r"], holdout=float("nan")), r"holdout must be a finite number in \[0, 1\), got nan"),
        (FoolingClassConfig(runs=["r"], views=True), "views must be a whole number >= 1, got True"),
        (RepetitionConfig(min_peak=float("nan")), r"min_peak must be a finite number in \[0, 1\], got nan"),
        (StructureConfig(grids=(2, 4, 2)), "grids lists 2 twice"),
        (StructureConfig(grids=(2, 0)), "grids must be a whole number >= 1, got 0"),
    ],
)
def test_each_configuration_checks_its_numbers(config, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        config.check()


def test_an_analysis_with_a_bad_number_writes_nothing(files, tmp_path):
    for call in (
        lambda: repetition(files / "run", tmp_path / "a", config=RepetitionConfig(min_peak=float("nan"))),
        lambda: structure(files / "run", tmp_path / "a", config=StructureConfig(patch=-2)),
    ):
        with pytest.raises(ValueError):
            call()
        assert not (tmp_path / "a").exists()


def test_a_class_is_chosen_once():
    names = ["cat", "dog", "fox"]
    assert resolve_classes(["dog", 0, "2"], names) == [1, 0, 2]
    with pytest.raises(ValueError, match=r"^classes lists class 1 \(dog\) twice \(as 'dog' and 1\)$"):
        resolve_classes(["dog", 1], names)
    with pytest.raises(ValueError, match=r"^classes lists class 2 \(fox\) twice$"):
        resolve_classes([2, 0, 2], names)


@pytest.mark.parametrize("bad", [float("nan"), 7.0, -0.5, float("inf")])
def test_map_elites_tell_refuses_what_is_not_a_probability_and_stores_nothing(lenet, bad):
    encoding = make_encoding("cppn", 1, 8, 8)
    archive = Archive(lenet.class_names, encoding.tensors(encoding.initial(1, 0, torch.device("cpu"))), (1, 8, 8))
    me = MapElites(encoding, archive, batch_size=4, seed=1)
    children = me.ask()
    probabilities = torch.full((4, 10), 0.1)
    probabilities[3, 6] = bad
    before = {k: v.clone() for k, v in archive.state_dict().items()}
    with pytest.raises(
        ValueError,
        match=rf"^the probability of child 3 for class 6 \(6\) is {re.escape(repr(bad))}: "
        r"probabilities must be finite and in \[0, 1\]$",
    ):
        me.tell(probabilities, encoding.render(children))
    assert all(torch.equal(v, before[k]) for k, v in archive.state_dict().items())
    assert me.generation == 0


def test_an_archive_that_cannot_exist_is_refused_before_it_is_allocated():
    template = {"genes": torch.zeros(1, 3)}
    with pytest.raises(
        ValueError,
        match=r"^an archive of 1000 cells of 3x100000x100000 images would need 30.0 TB, "
        r"more than this machine's memory \(",
    ):
        Archive([str(i) for i in range(1000)], template, (3, 100_000, 100_000))
    with pytest.raises(ValueError, match=r"^image_shape must be a whole number >= 1, got 2.5$"):
        Archive(["a"], template, (1, 2.5, 2))
    with pytest.raises(ValueError, match="would need 1.0 PB"):
        check_memory("this", 10**15)


def test_a_huge_batch_through_the_api_is_refused_before_the_folder_is_made(lenet, tmp_path):
    with pytest.raises(
        ValueError, match="a run of 2000000000 children of 1x28x28 images against 10 classes would need"
    ):
        evolve(
            EvolveConfig(generations=1, batch=2_000_000_000, backend="cpu"),
            tmp_path / "o",
            classifier=lenet,
            progress=False,
        )
    assert not (tmp_path / "o").exists()


def test_gradient_ascent_on_images_that_cannot_exist_is_refused_before_it_allocates(lenet):
    from fooling_ext.experiments.gradient_ascent import gradient_ascent

    with pytest.raises(
        ValueError,
        match=r"^gradient ascent on 2 images of 1x1000000x1000000 at once would need 24.0 TB"
        r", more than this machine's memory \(",
    ):
        gradient_ascent(lenet, GradientConfig(classes=[1, 2], steps=1), image_size=(1_000_000, 1_000_000))
    with pytest.raises(ValueError, match=r"^image_size must be a whole number >= 1, got 2.5$"):
        gradient_ascent(lenet, GradientConfig(classes=[1], steps=1), image_size=(28, 2.5))


@pytest.fixture
def resumable(files, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(files / "run", out)
    return out


def rewrite_checkpoint(out, change):
    folder = RunFolder(out)
    state = folder.load_checkpoint()
    change(state)
    folder.save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")})


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s.update(generation=1000),
            "disagrees with its metrics: it says generation 1000 but holds 2 metric rows",
        ),
        (
            lambda s: s.update(generation=3, metrics=s["metrics"] + [dict(s["metrics"][-1], generation=5)]),
            "metric row 2 is of generation 5, expected 2 (generations are consecutive from 0)",
        ),
        (
            lambda s: s["metrics"][1].update(evaluations=99),
            "metric row 1 says 99 evaluations, expected 16 (2 generations of 8 children)",
        ),
        (
            lambda s: s.update(evaluations=7),
            "disagrees with itself: it says 7 evaluations after generation 2, expected 16 (8 per generation)",
        ),
        (lambda s: s.update(generation=2.5), "says generation 2.5, not a whole number >= 0"),
    ],
)
def test_a_checkpoint_that_disagrees_with_its_metrics_is_not_resumed(resumable, capsys, change, message):
    rewrite_checkpoint(resumable, change)
    before = snapshot(resumable)
    code, err = run_cli(["evolve", "--resume", "--generations", "4", "--no-progress", "--out", str(resumable)], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"fooling evolve: error: checkpoint {resumable / 'checkpoint.pt'} " + message
        if message.startswith(("disagrees", "says"))
        else f"fooling evolve: error: checkpoint {resumable / 'checkpoint.pt'}: " + message
    )
    assert snapshot(resumable) == before  # nothing rewritten


def test_a_checkpoint_beyond_the_generations_asked_is_not_resumed(resumable, lenet):
    before = snapshot(resumable)
    config = dataclasses.replace(EvolveConfig.from_run(resumable), generations=1)
    with pytest.raises(
        RunFolderError,
        match=r"already has 2 generations: generations must be at least 2 \(the "
        r"number in all, not the number to add\)$",
    ):
        evolve(config, resumable, classifier=lenet, resume=True, progress=False)
    assert snapshot(resumable) == before


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "is not the configuration of a run: it holds a JSON array, not an object"),
        ('"run"', "is not the configuration of a run: it holds a JSON string, not an object"),
        ('{"run": []}', "is damaged: run must be an object, got []"),
        (
            '{"classifier": {"class_names": [1, 2]}}',
            "is damaged: classifier.class_names must be a list of strings, got [1, 2]",
        ),
        ('{"classifier": []}', "is damaged: classifier must be an object, got []"),
    ],
)
@pytest.mark.parametrize("command", ["report", "analyze"])
def test_a_config_json_of_the_wrong_shape_is_one_line_naming_it(resumable, tmp_path, capsys, content, message, command):
    (resumable / "config.json").write_text(content)
    before = snapshot(tmp_path)
    argv = {
        "report": ["report", str(resumable)],
        "analyze": ["analyze", "repetition", str(resumable), "--out", str(tmp_path / "a")],
    }[command]
    code, err = run_cli(argv, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip() == f"fooling {argv[0]}: error: {resumable / 'config.json'} {message}"
    assert snapshot(tmp_path) == before


def test_resume_takes_the_configuration_from_the_checkpoint_and_refuses_it_damaged_there_too(resumable, capsys):
    (resumable / "config.json").write_text("[]")
    argv = ["evolve", "--resume", "--generations", "3", "--no-progress", "--out", str(resumable)]
    code, err = run_cli(argv, capsys)
    assert code == 0, err  # the checkpoint holds the configuration too: the run continues and repairs config.json
    assert json.loads((resumable / "config.json").read_text())["run"]["generations"] == 3
    (resumable / "config.json").write_text("[]")
    rewrite_checkpoint(resumable, lambda state: state["config"].update(classifier=["0", "1"]))
    before = snapshot(resumable)
    code, err = run_cli(argv[:3] + ["4"] + argv[4:], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        f'fooling evolve: error: {resumable / "checkpoint.pt"} is damaged: classifier must be an object, got ["0", "1"]'
    )
    assert snapshot(resumable) == before


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "is not a fooling_ext sweep: it holds a JSON array, not an object"),
        ("3", "is not a fooling_ext sweep: it holds a JSON number, not an object"),
        ('{"format": "fooling_ext.sweep"}', "has sweep version None"),
    ],
)
def test_a_sweep_json_of_the_wrong_shape_is_one_line_naming_it(tmp_path, capsys, content, message):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.json").write_text(content)
    with pytest.raises(RunFolderError, match=re.escape(f"{tmp_path / 's' / 'sweep.json'} {message}")):
        SweepFolder(tmp_path / "s").read_state()
    before = snapshot(tmp_path)
    code, err = run_cli(["sweep", "--resume", "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and "Traceback" not in err
    assert f"{tmp_path / 's' / 'sweep.json'} {message}" in err.strip().splitlines()[-1]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "is not a run's summary: it holds a JSON array, not an object"),
        ('{"classes": 5}', "is damaged: TypeError: 'int' object is not iterable"),
        (
            '{"classes": [{"name": "a", "confidence": 1}], "generations": "two"}',
            "is damaged: ValueError: invalid literal for int() with base 10: 'two'",
        ),
        ('{"classes": [{"name": "a"}]}', "is damaged: KeyError: 'confidence'"),
    ],
)
def test_a_summary_json_of_the_wrong_shape_is_an_error_naming_it(tmp_path, content, message):
    spec = SweepSpec.from_dict({"options": {"generations": 2}})
    point = spec.points()[0]
    (tmp_path / point.folder).mkdir(parents=True)
    (tmp_path / point.folder / "summary.json").write_text(content)
    with pytest.raises(RunFolderError, match=re.escape(f"{tmp_path / point.folder / 'summary.json'} {message}")):
        sweep_summary(tmp_path, [point], {point.name})


def test_a_spec_with_a_non_finite_number_is_refused():
    with pytest.raises(SweepSpecError, match=r"^options.image_size must be finite, got \[28.0, nan\]$"):
        SweepSpec.from_dict({"options": {"image_size": [[28.0, float("nan")]]}})
    with pytest.raises(SweepSpecError, match=r"^resources.cpus must be a finite number > 0, got inf$"):
        SweepSpec.from_dict({"resources": {"cpus": float("inf")}})
