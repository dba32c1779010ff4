"""Gradient ascent on the pixels: it climbs, stays in range, reaches the target on LeNet, and refuses bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fooling_ext.classifiers import InputSpec, load_classifier
from fooling_ext.cli import main
from fooling_ext.experiments.gradient_ascent import GradientConfig, gaussian_blur, gradient_ascent, resolve_classes


@pytest.fixture(scope="module")
def lenet():
    return load_classifier("mnist")


def test_few_steps_raise_the_target_probability_and_stay_in_range(lenet):
    cfg = GradientConfig(classes=[0, 5, 8], steps=6, target=None, seed=2)
    start = gradient_ascent(lenet, GradientConfig(classes=[0, 5, 8], steps=1, target=None, seed=2))
    result = gradient_ascent(lenet, cfg)
    assert result.images.shape == (3, 1, 28, 28)
    assert float(result.images.min()) >= 0.0 and float(result.images.max()) <= 1.0
    # Far from the target each step is capped at one nat of log p: five steps gain well over three.
    assert np.all(np.log(result.confidence) - np.log(start.confidence) > 3.0)
    # The reported confidence is the model's probability of the target class for the returned image.
    probs = lenet.probabilities(result.images)
    np.testing.assert_allclose(result.confidence, probs[torch.arange(3), torch.tensor([0, 5, 8])].numpy(), atol=1e-6)
    # The history records every step, all classes each time.
    assert [h["generation"] for h in result.history] == list(range(6))
    assert result.history[-1]["median"] > result.history[0]["median"]


def test_reaches_9999_on_every_digit_of_the_shipped_lenet(lenet):
    result = gradient_ascent(lenet, GradientConfig())
    assert result.classes == list(range(10))
    assert np.all(result.confidence >= 0.9999), result.confidence
    assert np.all(result.steps_taken < 300)


def test_original_decay_is_available_and_pulls_towards_the_mean(lenet):
    free = gradient_ascent(lenet, GradientConfig(classes=[2], steps=40, target=None))
    decayed = gradient_ascent(lenet, GradientConfig(classes=[2], steps=40, target=None, decay=0.05))
    # The mean image of the shipped LeNet's input spec is black: decay keeps the image darker.
    assert float(decayed.images.mean()) < float(free.images.mean())


def test_classes_by_name_or_index_and_unknown_names(lenet):
    assert resolve_classes(["3", 7, "9"], lenet.class_names) == [3, 7, 9]
    assert resolve_classes(None, ["a", "b"]) == [0, 1]
    assert resolve_classes(["b"], ["a", "b"]) == [1]
    with pytest.raises(ValueError, match="unknown class name 'cat'"):
        resolve_classes(["cat"], lenet.class_names)
    with pytest.raises(ValueError, match="class index 10 out of range"):
        gradient_ascent(lenet, GradientConfig(classes=[10]))


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(steps=0), "steps must be a whole number >= 1, got 0"),
        (dict(target=1.5), r"target must be a finite number in \(0, 1\], got 1.5"),
        (dict(decay=1.0), r"decay must be a finite number in \[0, 1\), got 1.0"),
        (dict(blur_radius=0.1), "blur_radius must be 0"),
        (dict(lr_policy="adam"), "lr_policy must be one of"),
        (dict(start="gray"), "start must be one of"),
    ],
)
def test_bad_settings(lenet, change, message):
    with pytest.raises(ValueError, match=message):
        gradient_ascent(lenet, GradientConfig(**change))


class Detached(torch.nn.Module):
    """A model that cuts the autograd graph: fine for evolution, useless for gradient ascent."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(x.detach().flatten(1))


def test_a_model_that_is_not_differentiable_is_refused():
    clf = load_classifier(Detached(), spec=InputSpec(channels=1, height=2, width=2))
    with pytest.raises(ValueError, match="is not differentiable"):
        gradient_ascent(clf, GradientConfig(steps=3))


def test_gaussian_blur_matches_a_hand_made_kernel():
    sigma = 1.2
    img = torch.zeros(1, 2, 21, 21)
    img[0, 0, 10, 10] = 1.0
    img[0, 1, 5, 12] = 2.0
    out = gaussian_blur(img, sigma)
    t = np.arange(-4, 5)  # radius int(3 sigma + 0.5) = 4
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    want = np.outer(k, k)
    np.testing.assert_allclose(out[0, 0, 6:15, 6:15].numpy(), want, atol=1e-7)
    np.testing.assert_allclose(out[0, 1, 1:10, 8:17].numpy(), 2 * want, atol=1e-6)
    assert float(out[0, 0].sum()) == pytest.approx(1.0, abs=1e-6)


def test_cli_writes_a_run_folder(tmp_path, capsys):
    out = tmp_path / "grad"
    assert (
        main(
            ["gradient", "--classes", "1,7", "--steps", "80", "--target", "0.9", "--backend", "cpu", "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "run folder" in printed
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method"] == "gradient" and cfg["gradient"]["classes"] == [1, 7]
    summary = json.loads((out / "summary.json").read_text())
    assert [c["class"] for c in summary["classes"]] == [1, 7]
    assert all(0.9 <= c["confidence"] <= 1.0 for c in summary["classes"])
    assert len(list((out / "images").glob("*.png"))) == 2
    assert (out / "grid.png").exists() and (out / "report.txt").read_text().startswith("class")
    assert main(["gradient", "--classes", "nine", "--backend", "cpu", "--out", str(tmp_path / "x")]) == 2
    assert "unknown class name 'nine'" in capsys.readouterr().err


def test_progress_bar_counts_every_step_of_every_batch_and_changes_nothing(lenet, capsys):
    cfg = GradientConfig(classes=[0, 1, 2], steps=3, target=None, batch=2, seed=1)
    quiet = gradient_ascent(lenet, cfg)
    assert capsys.readouterr().err == ""
    shown = gradient_ascent(lenet, cfg, progress=True)
    err = capsys.readouterr().err
    assert "6/6" in err and "step" in err  # 2 batches x 3 steps
    np.testing.assert_array_equal(quiet.confidence, shown.confidence)
    # A batch that reaches its target early still fills its share of the bar; the postfix counts the classes.
    gradient_ascent(lenet, GradientConfig(classes=[1], steps=50, target=0.5), progress=True)
    err = capsys.readouterr().err
    assert "50/50" in err and ">= target: 1/1 classes" in err


def test_cli_progress_goes_to_stderr_unless_no_progress(tmp_path, capsys):
    argv = ["gradient", "--classes", "3", "--steps", "2", "--target", "1.0", "--backend", "cpu"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    assert "2/2" in capsys.readouterr().err
    assert main(argv + ["--no-progress", "--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err == ""
