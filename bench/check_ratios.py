"""Fails when the C++ renderer falls below a speed target: its throughput against the batched PyTorch renderer
and the NumPy reference, measured in one run, as ratios.

    python bench/check_ratios.py            # exit status 1 naming each ratio below its target, else 0

The contenders render the same genomes of both benchmark workloads (bench/populations.py) in every colour mode
the core has (hsl, hsv, hls8; grey), one thread each (the core's, torch's; NumPy's are one), taking turns in
rounds so that a load that comes and goes hits them alike, and the ratio is the one of their median times per
image. One thread each also keeps other processes on the machine from favouring one contender: with a core
taken by something else, each still has a core to itself. Too slow to time whole workloads in every round, they
render the first genomes only (the core's per-image time does not depend on the batch beyond a few genomes).
Each contender's images are checked against the core's first, so a fast wrong renderer cannot pass.

The targets are one-thread versions of bench/README.md's: the core >= 3x the PyTorch renderer (the pytest
benchmarks' target, render_table.TARGETS), and against the NumPy reference at about half the ratio the core
kept in its slowest colour mode on the 2-core benchmark machine (README.md of this folder gives the figures).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from populations import COLOUR_256, GREY_28, Workload
from render_table import TARGETS
from torch_renderer import render_torch

import fooling_ext as fx
from fooling_ext import _core
from fooling_ext.core.reference.render import render_reference

TORCH_TARGET = next(minimum for fast, slow, minimum in TARGETS if (fast, slow) == ("cpp-cpu", "torch-cpu"))
# Minimum of the core's throughput over the NumPy reference's, per workload, at one thread each.
NUMPY_TARGETS = {GREY_28.name: 20.0, COLOUR_256.name: 5.0}
# Values within ATOL of the core's must make up MATCH_FRACTION of each renderer's images (bench_render.py's
# rule: float32 torch.sin / torch.exp differ where sums of hundreds go into a sine; the reference is exact).
ATOL = 1e-4
MATCH_FRACTION = 0.99


@dataclass(frozen=True)
class Case:
    workload: Workload
    color: str
    genomes: int  # rendered by every contender in each round


CASES = [Case(GREY_28, "hsl", 40)] + [Case(COLOUR_256, color, 6) for color in ("hsl", "hsv", "hls8")]


def _seconds(render: Callable[[], object]) -> float:
    start = time.perf_counter()
    render()
    return time.perf_counter() - start


def check_case(case: Case, rounds: int) -> list[tuple[str, float, float]]:
    """(ratio name, measured ratio, target) for one case, from `rounds` interleaved rounds."""
    w = case.workload
    pop = w.population()[: case.genomes]
    contenders = {
        "C++": lambda: fx.render(pop, w.side, color=case.color),
        "PyTorch": lambda: render_torch(pop, w.side, color=case.color),
        "NumPy": lambda: render_reference(pop, w.side, color=case.color),
    }
    want = np.asarray(contenders["C++"]())
    for name in ("PyTorch", "NumPy"):
        got = contenders[name]()
        got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        close = np.abs(got - want) <= ATOL
        if got.shape != want.shape or close.mean() < MATCH_FRACTION:
            raise SystemExit(f"check_ratios: {name} renders {w.name} {case.color} differently from the C++ core")
    times = {name: [] for name in contenders}
    for r in range(rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))  # neither always runs first
        for name in order:
            times[name].append(_seconds(contenders[name]))
    median = {name: statistics.median(t) for name, t in times.items()}
    label = f"{w.name} {case.color}"
    return [
        (f"C++ / PyTorch, {label}", median["PyTorch"] / median["C++"], TORCH_TARGET),
        (f"C++ / NumPy, {label}", median["NumPy"] / median["C++"], NUMPY_TARGETS[w.name]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timings of each contender (default 5)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    torch.set_num_threads(1)
    _core.set_num_threads(1)
    failed = []
    for case in CASES:
        for name, ratio, target in check_case(case, args.rounds):
            ok = ratio >= target
            print(f"{name}: {ratio:.2f}x (target >= {target:g}x){'' if ok else '  BELOW TARGET'}", flush=True)
            if not ok:
                failed.append(f"{name} is {ratio:.2f}x, below its target of {target:g}x")
    for line in failed:
        print(f"check_ratios: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
