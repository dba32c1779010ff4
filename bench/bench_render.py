"""Rendering throughput: the C++ CPU and CUDA backends against what a user could use instead.

Workloads (bench/populations.py): 200 greyscale 28x28 CPPNs with 8-12 hidden nodes, and 400 colour 256x256
CPPNs with 26-34 hidden nodes. Every renderer's output from the timed calls is checked against the C++ CPU
backend's images of the same genomes, so a row of the table is only reported for a renderer that made the
same images. Renderers too slow for a whole workload render its first genomes; compare images per second.
Each benchmark records `images` in its extra info (bench/render_table.py turns the JSON into the README table).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from populations import COLOUR_256, GREY_28
from torch_renderer import render_torch

import fooling_ext as fx
from fooling_ext.core.backend import cuda_available
from fooling_ext.core.reference.render import render_reference

# Values within ATOL of ours must make up at least MATCH_FRACTION of each image set. The renderers in float32
# with torch.sin/exp, and neat-python in float64, disagree with the core by more than ATOL at about 0.1% of
# the colour values (pixels where sums of hundreds go into a sine), so exact agreement is not expected.
# A wrongly wired or wrongly ordered network disagrees almost everywhere.
ATOL = 1e-4
MATCH_FRACTION = 0.99

GPU = pytest.mark.skipif(not cuda_available(), reason="no usable CUDA backend/device")


def _cuda_synchronized(render: Callable) -> Callable:
    """The renderer followed by a device synchronisation, so the timing covers the work, not the launch."""

    def run(pop, side):
        images = render(pop, side)
        torch.cuda.synchronize()
        return images

    return run


def _render_neat(pop, side):
    from neat_renderer import render_neat  # needs neat-python, which the benchmark checks for first

    return render_neat(pop, side)


@dataclass(frozen=True)
class Renderer:
    name: str
    device: str
    render: Callable  # (population, side) -> images [B, C, H, W] (tensor or array)
    subset: dict[str, int] = field(default_factory=dict)  # workload name -> genomes rendered, when not all
    rounds: int | None = None  # fixed number of timed rounds for slow renderers; None: pytest-benchmark decides
    requires: str | None = None  # module without which the benchmark is skipped


RENDERERS = [
    pytest.param(Renderer("cpp-cpu", "cpu", fx.render), id="cpp-cpu"),
    pytest.param(
        Renderer("cpp-cuda", "cuda", _cuda_synchronized(fx.render)), id="cpp-cuda", marks=[pytest.mark.cuda, GPU]
    ),
    pytest.param(Renderer("torch-cpu", "cpu", render_torch, rounds=5), id="torch-cpu"),
    pytest.param(
        Renderer("torch-cuda", "cuda", _cuda_synchronized(render_torch)), id="torch-cuda", marks=[pytest.mark.cuda, GPU]
    ),
    pytest.param(Renderer("numpy-reference", "cpu", render_reference, rounds=3), id="numpy-reference"),
    pytest.param(
        Renderer(
            "neat-python", "cpu", _render_neat, subset={GREY_28.name: 10, COLOUR_256.name: 2}, rounds=3, requires="neat"
        ),
        id="neat-python",
    ),
]


def assert_images_match(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    close = np.abs(got - want) <= ATOL
    assert close.mean() >= MATCH_FRACTION, (
        f"only {close.mean():.4%} of values within {ATOL} of the C++ backend's (max difference "
        f"{np.abs(got - want).max():.3g})"
    )


@pytest.mark.parametrize("renderer", RENDERERS)
def test_render(benchmark, render_case, renderer: Renderer):
    workload = render_case.workload
    count = renderer.subset.get(workload.name, workload.batch)
    pop = render_case.population[:count].to(renderer.device)
    if renderer.requires:
        pytest.importorskip(renderer.requires)
    benchmark.group = f"render {workload.name}"
    benchmark.extra_info.update(workload=workload.name, renderer=renderer.name, images=count)
    if renderer.rounds is None:
        images = benchmark(renderer.render, pop, workload.side)
    else:
        images = benchmark.pedantic(renderer.render, (pop, workload.side), rounds=renderer.rounds, warmup_rounds=0)
    if isinstance(images, torch.Tensor):
        images = images.cpu().numpy()
    assert_images_match(images, render_case.expected[:count])


def test_peak_memory_colour_render(benchmark):
    """Peak resident memory of rendering the 400 x 3 x 256 x 256 workload, beyond its output, in a fresh
    process (bench/peak_memory.py). Timed once only because --benchmark-only runs benchmark tests alone."""
    script = Path(__file__).with_name("peak_memory.py")

    def measure() -> dict:
        run = subprocess.run([sys.executable, str(script), "--json"], capture_output=True, text=True)
        assert run.stdout, f"{script.name} failed:\n{run.stderr}"
        return json.loads(run.stdout)

    benchmark.group = "render peak memory"
    report = benchmark.pedantic(measure, rounds=1, warmup_rounds=0)
    benchmark.extra_info.update(report)
    for backend in report["backends"]:
        assert backend["extra_bytes"] <= report["limit_bytes"], backend
