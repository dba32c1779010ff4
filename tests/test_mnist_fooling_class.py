"""The fooling-class experiment on small sizes: the retrained network learns the fooling class, every file is
written and reproducible from the seeds, a stopped experiment resumes to the same table, and bad input is refused."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from fooling_ext.classifiers import MNIST_SPEC, load_classifier
from fooling_ext.classifiers.datasets.mnist import load_mnist
from fooling_ext.classifiers.models import LeNet, load_lenet
from fooling_ext.classifiers.training import evaluate_accuracy
from fooling_ext.cli import main
from fooling_ext.experiments.mnist_fooling_class import (
    CLASS_NAMES,
    EvolutionSummary,
    RetrainConfig,
    RoundMetrics,
    load_fooling_images,
    run_retrain,
    run_seed,
    training_seed,
)
from fooling_ext.experiments.mnist_fooling_class.experiment import ExperimentFolder, _torch_threads
from fooling_ext.runs import RunFolderError
from fooling_ext.search import EvolveConfig, evolve

# 10 harvest runs per encoding (200 fooling images a round), 2,000 training digits, 2 epochs of 20-image steps.
SMALL = RetrainConfig(
    rounds=2,
    images_per_round=200,
    generations=5,
    measure_runs=1,
    measure_generations=6,
    epochs=2,
    train_batch_size=20,
    threads=1,
    train_limit=2000,
    test_limit=1000,
    backend="cpu",
)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, mnist):
    """One uninterrupted small experiment: its folder and the metrics run_retrain returned."""
    folder = tmp_path_factory.mktemp("retrain") / "experiment"
    return folder, run_retrain(SMALL, folder, progress=False, data=mnist)


def test_the_digits_of_an_eleven_class_network_are_exactly_the_first_ten_columns_of_its_softmax():
    torch.manual_seed(0)
    full = load_classifier(LeNet(11), spec=MNIST_SPEC, class_names=CLASS_NAMES)
    digits = full.leading_classes(10)
    images = torch.rand(7, 1, 28, 28)
    expected = torch.softmax(full.model(images), dim=1)[:, :10]
    assert torch.equal(digits.probabilities(images), full.probabilities(images)[:, :10])
    torch.testing.assert_close(digits.probabilities(images), expected)
    assert (digits.probabilities(images).sum(dim=1) < 1).all()  # the fooling class keeps its share
    images.requires_grad_(True)
    assert torch.equal(digits.differentiable_probabilities(images), full.differentiable_probabilities(images)[:, :10])
    assert digits.differentiable_probabilities(images).requires_grad
    assert torch.equal(digits.log_probabilities(images), full.log_probabilities(images)[:, :10])
    assert (digits.num_classes, digits.class_names) == (10, [str(d) for d in range(10)])
    assert (digits.spec, digits.device, digits.name, digits.model) == (full.spec, full.device, full.name, full.model)
    assert (full.num_classes, len(full.class_names)) == (11, 11)  # the classifier it came from is unchanged
    assert digits.to("cpu") is digits


def test_evolution_summary_takes_medians_over_runs_of_per_run_values():
    confidences = np.array(
        [
            [1.0] * 10,  # median 1, 10 digits >= 99%, 10 >= 99.99%
            [0.995] * 5 + [0.5] * 5,  # median 0.7475, 5 and 0
            [0.99995] * 3 + [0.1] * 7,  # median 0.1, 3 and 3
        ]
    )
    summary = EvolutionSummary.of(confidences, generations=7)
    assert summary == EvolutionSummary(
        runs=3, generations=7, median_confidence=0.7475, classes_99=5.0, classes_9999=3.0
    )


def test_seeds_differ_for_every_round_encoding_kind_and_run_and_depend_on_the_experiment_seed():
    seeds = {
        run_seed(0, r, encoding, run, measure=measure)
        for r in range(3)
        for encoding in ("cppn", "direct")
        for run in range(20)
        for measure in (False, True)
    }
    assert len(seeds) == 3 * 2 * 20 * 2
    assert run_seed(1, 0, "cppn", 0) not in seeds
    assert run_seed(0, 2, "direct", 5) == run_seed(0, 2, "direct", 5) < 2**63
    assert len({training_seed(0, r) for r in range(1, 10)} | {training_seed(1, 1)}) == 10


def test_retrained_network_puts_the_previous_rounds_fooling_images_in_the_fooling_class(experiment, mnist):
    folder, rounds = experiment
    assert [m.round for m in rounds] == [0, 1, 2]
    assert [m.fooling_images_trained for m in rounds] == [0, 200, 400]
    x_test, y_test = mnist.x_test[:1000], mnist.y_test[:1000]
    assert rounds[0].test_accuracy == pytest.approx(evaluate_accuracy(load_lenet(), x_test, y_test))
    assert rounds[0].previous_in_fooling_class is None and rounds[0].test_digits_as_fooling is None
    for r in (1, 2):
        network = load_classifier(folder / f"round_{r}" / "model.pt")
        assert network.num_classes == 11
        previous = load_fooling_images(folder / f"round_{r - 1}" / "fooling_images.npz")
        labels, _ = network.predict(previous["images"] / 255.0)
        in_fooling_class = (labels == 10).numpy()
        assert rounds[r].previous_in_fooling_class == pytest.approx(in_fooling_class.mean())
        assert in_fooling_class.mean() >= 0.9
        for encoding in ("cppn", "direct"):
            share = in_fooling_class[previous["encoding"] == encoding].mean()
            assert rounds[r].previous_in_fooling_class_by_encoding[encoding] == pytest.approx(share)
        model = load_lenet(folder / f"round_{r}" / "model.pt")
        assert rounds[r].test_accuracy == pytest.approx(evaluate_accuracy(model, x_test, y_test))
        assert rounds[r].test_accuracy > 0.7  # 2,000 digits and 2 epochs; chance is 0.1
        assert 0 <= rounds[r].test_digits_as_fooling < 0.05


def test_round_files_hold_the_harvest_and_reproduce_from_the_seeds(experiment):
    folder, rounds = experiment
    round_dir = folder / "round_1"
    images = load_fooling_images(round_dir / "fooling_images.npz")
    assert images["images"].shape == (200, 1, 28, 28) and images["images"].dtype == np.uint8
    assert list(images["digit"][:20]) == list(range(10)) * 2
    assert (images["encoding"] == "cppn").sum() == (images["encoding"] == "direct").sum() == 100
    assert ((images["confidence"] >= 0) & (images["confidence"] <= 1)).all()
    first = (images["encoding"] == "direct") & (images["run"] == 3)
    seed = run_seed(SMALL.seed, 1, "direct", 3)
    assert (images["seed"][first] == seed).all()
    network = load_classifier(round_dir / "model.pt", class_names=CLASS_NAMES).leading_classes(10)
    with _torch_threads(SMALL.threads):
        again = evolve(
            EvolveConfig(
                encoding="direct", generations=SMALL.generations, seed=seed, backend="cpu", quantize=False
            ),  # the experiment evolves float pixels
            classifier=network,
            progress=False,
        )
    np.testing.assert_array_equal(again.archive.images.numpy(), images["images"][first])
    np.testing.assert_allclose(again.archive.confidences(), images["confidence"][first], rtol=1e-6)
    harvest = rounds[1].harvest["direct"]
    per_run = images["confidence"][images["encoding"] == "direct"].reshape(10, 10).astype(np.float64)
    assert harvest == EvolutionSummary.of(per_run, SMALL.generations)
    measure = load_fooling_images(round_dir / "measure_images.npz")
    assert measure["images"].shape == (20, 1, 28, 28)
    assert rounds[1].measure["cppn"].runs == 1 and rounds[1].measure["cppn"].generations == 6
    saved = RoundMetrics.from_dict(json.loads((round_dir / "metrics.json").read_text()))
    assert saved == rounds[1]
    assert json.loads((round_dir / "training.json").read_text())["num_train"] == 2000 + 200
    assert Image.open(round_dir / "grid.png").size == (10 * (128 + 6) + 6, 2 * (128 + 30) + 3 * 6)  # 2 rows, gaps


def test_table_and_plot_summarise_every_round(experiment):
    folder, rounds = experiment
    table = (folder / "table.md").read_text().splitlines()
    assert table[0].startswith("| round | fooling images trained on | digit test accuracy |")
    assert len([line for line in table if line.startswith("| ")]) == 1 + 3
    assert table[3].startswith(
        f"| 1 | 200 | {100 * rounds[1].test_accuracy:.2f}% | {100 * rounds[1].previous_in_fooling_class:.2f}% |"
    )
    with open(folder / "table.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["harvest_cppn_median_confidence"]) for row in rows] == [
        m.harvest["cppn"].median_confidence for m in rounds
    ]
    assert rows[0]["previous_in_fooling_class"] == ""
    assert Image.open(folder / "rounds.png").format == "PNG"
    assert json.loads((folder / "config.json").read_text())["experiment"] == dataclasses.asdict(SMALL)


def test_a_stop_mid_round_resumes_at_that_round_and_gives_the_same_table(experiment, tmp_path, mnist):
    folder, rounds = experiment
    copy = tmp_path / "stopped"
    shutil.copytree(folder, copy)
    # Stopped while round 1 trained: its network and everything after it are gone or incomplete.
    for name in ("metrics.json", "training.json", "fooling_images.npz"):
        (copy / "round_1" / name).unlink()
    (copy / "table.md").unlink()
    redone = []
    resumed = run_retrain(SMALL, copy, resume=True, progress=False, data=mnist, on_round=redone.append)
    assert [m.round for m in redone] == [1, 2]
    assert [m.row() for m in resumed] == [m.row() for m in rounds]
    assert (copy / "table.md").read_text() == (folder / "table.md").read_text()
    assert (copy / "table.csv").read_text() == (folder / "table.csv").read_text()


def test_an_interrupted_experiment_resumes_from_the_command_line(tmp_path, mnist, capsys):
    tiny = RetrainConfig(
        rounds=1,
        images_per_round=20,
        generations=2,
        measure_runs=0,
        epochs=1,
        train_limit=300,
        test_limit=200,
        backend="cpu",
    )
    out = tmp_path / "tiny"

    def stop(metrics):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_retrain(tiny, out, progress=False, data=mnist, on_round=stop)
    assert (out / "round_0" / "metrics.json").is_file() and not (out / "round_1").exists()
    round_0 = (out / "round_0" / "metrics.json").read_bytes()
    # The configuration comes from the folder; an option that would change the results is refused in one line.
    assert main(["retrain", "--out", str(out), "--resume", "--generations", "3", "--epochs", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"fooling retrain: error: --generations, --epochs cannot be given with --resume: the experiment in {out} was "
        "made with --generations 2, --epochs 1 and continues with it (with --resume give only --rounds, --backend)"
    )
    status = main(["retrain", "--out", str(out), "--resume", "--backend", "cpu", "--no-progress", "--runner", "local"])
    assert status == 0
    printed = capsys.readouterr().out
    assert printed.startswith("| round | fooling images trained on |") and "| 1 | 20 |" in printed
    assert (out / "round_0" / "metrics.json").read_bytes() == round_0  # read back, not redone
    assert (out / "round_1" / "metrics.json").is_file() and (out / "rounds.png").is_file()
    assert "measure_images.npz" not in {path.name for path in (out / "round_1").iterdir()}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(rounds=0), r"rounds must be a whole number >= 1, got 0"),
        (dict(rounds=-2), r"rounds must be a whole number >= 1, got -2"),
        (dict(rounds=True), r"rounds must be a whole number >= 1, got True"),
        (dict(images_per_round=30), r"images_per_round must be a multiple of 20 .*got 30"),
        (dict(images_per_round=0), r"images_per_round must be a whole number >= 1, got 0"),
        (dict(generations=0), r"generations must be a whole number >= 1, got 0"),
        (dict(measure_runs=-1), r"measure_runs must be a whole number >= 0, got -1"),
        (dict(epochs=1.5), r"epochs must be a whole number >= 1, got 1.5"),
        (dict(train_limit=0), r"train_limit must be a whole number >= 1, got 0"),
        (dict(seed=-1), r"seed must be a whole number >= 0, got -1"),
        (dict(lr=0.0), r"lr must be a finite number > 0, got 0.0"),
        (dict(backend="gpu"), r"backend must be one of \('cpu', 'cuda', 'auto'\), got 'gpu'"),
    ],
)
def test_bad_sizes_are_refused_before_anything_is_written(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        run_retrain(dataclasses.replace(SMALL, **change), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_the_command_reports_bad_rounds_in_one_line(tmp_path, capsys):
    assert main(["retrain", "--rounds", "0", "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == "fooling retrain: error: --rounds must be a whole number >= 1, got 0"
    assert not (tmp_path / "out").exists()


def test_the_folder_rules_of_evolve_apply(experiment, tmp_path):
    folder, _ = experiment
    with pytest.raises(
        RunFolderError,
        match="holds another experiment; pass resume=True to continue it or overwrite=True to replace it",
    ):
        run_retrain(SMALL, folder, progress=False)
    with pytest.raises(
        RunFolderError,
        match=r"cannot resume with a different configuration: "
        r"experiment.generations: 5 -> 6; experiment.seed: 0 -> 1",
    ):
        run_retrain(dataclasses.replace(SMALL, generations=6, seed=1), folder, resume=True, progress=False)
    with pytest.raises(RunFolderError, match="resume=True and overwrite=True cannot be used together"):
        run_retrain(SMALL, folder, resume=True, overwrite=True, progress=False)
    with pytest.raises(RunFolderError, match="nothing to resume"):
        run_retrain(SMALL, tmp_path / "absent", resume=True, progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="is not empty; choose an empty folder or pass overwrite=True"):
        run_retrain(SMALL, tmp_path / "busy", progress=False)


def test_overwrite_removes_the_experiments_files_and_refuses_a_folder_holding_others(tmp_path):
    folder = ExperimentFolder(tmp_path / "experiment")
    folder.path.mkdir()
    (folder.path / "config.json").write_text(json.dumps({"fooling_ext": "1", "experiment": {}}))
    for name in ("table.md", "table.csv", "rounds.png"):
        (folder.path / name).write_text("x")
    for name in ("round_0", "round_12"):
        (folder.path / name).mkdir()
        (folder.path / name / "metrics.json").write_text("{}")
    assert folder.holds_run() and folder.resume_path == folder.path / "config.json"
    for foreign in ("notes.txt", "round_7.txt", "round_x", "round_0/photo.jpg"):
        (folder.path / foreign).write_text("mine")
        with pytest.raises(RunFolderError, match=f"holds {foreign}, which fooling retrain did not write"):
            folder.prepare(resume=False, overwrite=True)
        assert (folder.path / "table.md").is_file() and not folder.holds_lock()  # nothing removed
        (folder.path / foreign).unlink()
    folder.prepare(resume=False, overwrite=True)
    assert (folder.path / ".fooling.lock").is_file() and folder.holds_lock()  # prepared: this process writes it
    folder.release()
    assert list(folder.path.iterdir()) == []
    assert [p.name for p in ExperimentFolder(tmp_path / "absent").round_dirs()] == []
