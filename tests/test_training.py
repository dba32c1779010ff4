"""Training the MNIST LeNet: reproducible from the seed, learns, takes an extra class, and the CLI writes weights."""

from __future__ import annotations

import dataclasses
import json
import os
import platform

import numpy as np
import pytest
import torch

from fooling_ext.classifiers import load_classifier
from fooling_ext.classifiers.datasets.mnist import MnistData, load_mnist
from fooling_ext.classifiers.models import MNIST_LENET_WEIGHTS, LeNet, load_lenet
from fooling_ext.classifiers.pinned_training import pinned_environment, train_lenet_pinned
from fooling_ext.classifiers.training import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_SEED,
    evaluate_accuracy,
    train_lenet,
)
from fooling_ext.cli import main

FAST = dict(epochs=2, batch_size=20, lr=3e-3, threads=1, progress=False)


@pytest.fixture(scope="module")
def mnist() -> MnistData:
    return load_mnist()


@pytest.fixture(scope="module")
def small(mnist) -> MnistData:
    """2,000 training and 1,000 test digits: 200 steps of 20 images in two epochs."""
    return dataclasses.replace(
        mnist,
        x_train=mnist.x_train[:2000],
        y_train=mnist.y_train[:2000],
        x_test=mnist.x_test[:1000],
        y_test=mnist.y_test[:1000],
    )


def test_training_is_reproducible_from_the_seed_and_beats_chance(small):
    first, metrics = train_lenet(small, seed=3, **FAST)
    second, _ = train_lenet(small, seed=3, **FAST)
    other_seed, _ = train_lenet(small, seed=4, **FAST)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert not torch.equal(first.state_dict()["classifier.3.weight"], other_seed.state_dict()["classifier.3.weight"])
    assert metrics["test_accuracy"] > 0.8
    assert metrics["test_accuracy"] == evaluate_accuracy(first, small.x_test, small.y_test)
    assert len(metrics["epoch_test_accuracy"]) == 2 and metrics["num_train"] == 2000 and metrics["threads"] == 1


def test_training_restores_torch_settings(small):
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    tiny = dataclasses.replace(small, x_train=small.x_train[:40], y_train=small.y_train[:40])
    train_lenet(tiny, epochs=1, batch_size=20, threads=1, progress=False)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_an_extra_class_of_images_is_learned(small):
    rng = np.random.default_rng(0)
    noise = rng.random((300, 28, 28), dtype=np.float32)
    model, metrics = train_lenet(small, num_classes=11, extra_train=(noise, np.full(300, 10)), seed=0, **FAST)
    assert isinstance(model, LeNet) and model.num_classes == 11 and metrics["num_train"] == 2300
    fresh_noise = rng.random((200, 28, 28), dtype=np.float32)
    assert evaluate_accuracy(model, fresh_noise, np.full(200, 10)) > 0.95
    assert metrics["test_accuracy"] > 0.8


def test_bad_training_options_are_rejected(small):
    with pytest.raises(ValueError, match=r"need epochs >= 1"):
        train_lenet(small, epochs=0, progress=False)
    noise = np.zeros((5, 28, 28), np.float32)
    with pytest.raises(ValueError, match=r"training labels must lie in 0\.\.9, found 0\.\.10"):
        train_lenet(small, extra_train=(noise, np.full(5, 10)), progress=False)
    with pytest.raises(ValueError, match=r"extra_train labels must have shape \[5\], got \[4\]"):
        train_lenet(small, num_classes=11, extra_train=(noise, np.full(4, 10)), progress=False)
    with pytest.raises(ValueError, match=r"extra_train images must lie in \[0, 1\], found values in \[0, 2\]"):
        train_lenet(
            small,
            num_classes=11,
            extra_train=(noise + np.linspace(0, 2, 784).reshape(28, 28), np.full(5, 10)),
            progress=False,
        )


def test_the_shipped_weights_match_their_metrics_file(mnist):
    metrics = json.loads(MNIST_LENET_WEIGHTS.with_suffix(".json").read_text())
    model = load_lenet()
    assert evaluate_accuracy(model, mnist.x_test, mnist.y_test) == metrics["test_accuracy"] >= 0.99
    assert (metrics["epochs"], metrics["batch_size"], metrics["lr"], metrics["seed"]) == (
        DEFAULT_EPOCHS,
        DEFAULT_BATCH_SIZE,
        DEFAULT_LR,
        DEFAULT_SEED,
    )


def test_train_mnist_command_writes_weights_that_load(tmp_path, mnist, capsys):
    out = tmp_path / "nested" / "digits.pt"
    status = main(
        [
            "train-mnist",
            "--limit-train",
            "400",
            "--epochs",
            "1",
            "--batch-size",
            "20",
            "--threads",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert status == 0
    metrics = json.loads(out.with_suffix(".json").read_text())
    assert metrics["num_train"] == 400 and metrics["num_test"] == 10000
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in capsys.readouterr().out
    model = LeNet()
    model.load_state_dict(torch.load(out, weights_only=True))
    assert evaluate_accuracy(model, mnist.x_test, mnist.y_test) == metrics["test_accuracy"] > 0.5
    classifier = load_classifier(out)
    assert classifier.num_classes == 10 and classifier.predict(mnist.x_test[:100, None] / 255.0)[0].shape == (100,)


def test_train_mnist_command_reports_missing_data_in_one_line(tmp_path, capsys):
    status = main(["train-mnist", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "w.pt"), "--quiet"])
    assert status == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"MNIST data not found: {tmp_path / 'absent'} (give a .npz file or a folder of IDX files)")
    )
    assert not (tmp_path / "w.pt").exists()


def test_pinned_environment_pins_every_cpu_path_and_the_threads():
    env = pinned_environment(3, {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AUTO", "HOME": "/h"})
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["MKL_CBWR"] == "AVX2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3" and env["HOME"] == "/h"
    with pytest.raises(ValueError, match=r"threads must be a whole number >= 1, got 0"):
        pinned_environment(0)


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="pinned training needs an x86-64 CPU with AVX2",
)
def test_pinned_training_gives_the_same_bits_whatever_cpu_paths_the_environment_asks_for(mnist):
    # ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA are how torch, MKL and oneDNN choose code
    # paths by CPU: the same short training started from each environment must give identical weights. Without
    # pinning, ATEN_CPU_CAPABILITY=default alone changes the weights after a few steps.
    base = {key: value for key, value in os.environ.items() if key not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    like_other_cpus = [
        base,
        {**base, "ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
        {**base, "ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AUTO", "OMP_NUM_THREADS": "7"},
    ]
    results = [
        train_lenet_pinned(
            limit_train=200, epochs=1, batch_size=20, lr=3e-3, seed=5, threads=1, progress=False, env=env
        )
        for env in like_other_cpus
    ]
    (first, metrics), others = results[0], results[1:]
    assert metrics["cpu_paths"]["aten"] == "AVX2" and metrics["cpu_paths"]["MKL_CBWR"] == "AVX2"
    assert metrics["num_train"] == 200 and metrics["threads"] == 1
    for model, other_metrics in others:
        for key, value in first.state_dict().items():
            assert torch.equal(value, model.state_dict()[key]), key
        assert other_metrics["final_batch_loss"] == metrics["final_batch_loss"]
    assert metrics["test_accuracy"] == evaluate_accuracy(first, mnist.x_test, mnist.y_test) > 0.3
