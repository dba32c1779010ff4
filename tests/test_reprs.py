"""The result objects print as a few lines (generations, classes, median, folder), not their tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fooling_ext as fx
from fooling_ext.analyses.sources import RunData
from fooling_ext.experiments.mnist_fooling_class.config import EvolutionSummary, RoundMetrics
from fooling_ext.runs.report import format_confidence, summary_line
from fooling_ext.sweep.run import SweepResult


@pytest.fixture(scope="module")
def lenet():
    return fx.load_classifier("mnist")


def test_an_evolve_result_and_its_archive_print_in_a_few_lines(tmp_path, lenet):
    config = fx.EvolveConfig(model="mnist", encoding="cppn", generations=3, batch=20, seed=1, backend="cpu")
    result = fx.evolve(config, tmp_path / "run", classifier=lenet, progress=False)
    median = format_confidence(float(np.median(result.archive.confidences())))
    text = repr(result)
    assert len(text.splitlines()) == 2 and len(text) < 300, text
    assert text.startswith(f"EvolveResult(cppn against mnist, 3 generations, folder {tmp_path / 'run'}\n")
    assert f"classes: 10  median confidence: {median}" in text
    archive = repr(result.archive)
    assert archive.startswith("Archive(10 classes, 10 occupied, insertion 'all', cpu\n") and len(archive) < 300
    assert f"median confidence: {median}" in archive


def test_a_gradient_result_prints_its_classes_steps_and_median(lenet):
    result = fx.gradient_ascent(lenet, fx.GradientConfig(classes=[3, 8], steps=4, target=None))
    assert repr(result).splitlines() == [
        "GradientResult(2 classes, steps 4 to 4",
        "  " + summary_line(result.confidence) + ")",
    ]


def test_sweep_results_round_metrics_and_run_data_print_in_one_line():
    sweep = SweepResult(Path("runs/s"), [{"status": "done"}, {"status": "done"}, {"status": "failed"}], {"x": 1})
    assert repr(sweep) == "SweepResult(3 runs (2 done, 1 failed), folder runs/s)"
    summary = EvolutionSummary(runs=2, generations=10, median_confidence=0.5, classes_99=1.0, classes_9999=0.0)
    metrics = RoundMetrics(
        round=1,
        fooling_images_trained=40,
        test_accuracy=0.98765,
        test_digits_as_fooling=0.0,
        previous_in_fooling_class=0.5,
        previous_in_fooling_class_by_encoding=None,
        harvest={"cppn": summary},
        measure={"cppn": summary, "direct": summary},
    )
    assert repr(metrics) == (
        "RoundMetrics(round 1: test accuracy 98.77%, 40 fooling images trained; measured: "
        "cppn median 50.00%, direct median 50.00%)"
    )
    data = RunData(
        Path("r"),
        {"classifier": {"name": "mnist"}, "run": {"encoding": "direct"}},
        ["a", "b", "c"],
        np.zeros((3, 1, 28, 28), np.uint8),
        np.zeros(3),
        np.array([True, False, True]),
    )
    assert repr(data) == "RunData(r: mnist / direct, 3 classes, 2 occupied)"
