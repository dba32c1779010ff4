"""Several runs at once: what a sweep gains over running its runs one after the other.

Two MNIST CPPN runs of the paper's size (200 generations of 200 children each), timed from submission to both
finished, with the workers already started (a warm-up sweep imports the package in each first):
- in-process: ``evolve`` twice in this process, one after the other, with every thread (the baseline);
- in-process-1-thread: the same with one thread (what each run of ray-2-concurrent has);
- ray-1-at-a-time: a sweep on a local Ray in which each run takes every CPU, so one runs at a time;
- ray-2-concurrent: each run takes half the CPUs (one thread each on a 2-core machine), so both run together;
- on a GPU, where the CUDA backend can be used: ray-gpu-1-at-a-time (a whole GPU each) against
  ray-gpu-2-sharing (half a GPU each, both on one).

extra_info records each case's evaluations per second over the two runs.

The head's bookkeeping for a sweep of 10,000 runs not yet started (test_head_*): checking and expanding the
grid, reading every run's state at start, rewriting sweep.json, and one progress tick's reads over 200 runs.

Run:
python -m pytest bench/bench_sweep.py --benchmark-only --benchmark-json=sweep.json
Table: python bench/bench_sweep.py sweep.json
"""

from __future__ import annotations

import itertools
import json
import os
import sys

import pytest
import torch

from fooling_ext import _core
from fooling_ext.core.backend import cuda_available
from fooling_ext.search import evolve
from fooling_ext.sweep import SweepFolder, SweepSpec, run_sweep
from fooling_ext.sweep.folder import run_progress
from fooling_ext.sweep.ray_runner import limit_threads
from fooling_ext.sweep.run import _Head

ray = pytest.importorskip("ray", reason='needs the [ray] extra: pip install "fooling-ext[ray]"')

GENERATIONS, BATCH, RUNS = 200, 200, 2
CPUS = os.cpu_count() or 1
GPU = pytest.mark.skipif(not cuda_available(), reason="no usable CUDA backend/device")
CASES = [
    pytest.param(("in-process", None, None), id="in-process"),
    pytest.param(("in-process", 1, None), id="in-process-1-thread"),
    pytest.param(("ray", CPUS, 0), id="ray-1-at-a-time"),
    pytest.param(("ray", max(CPUS / RUNS, 1), 0), id=f"ray-{RUNS}-concurrent"),
    pytest.param(("ray", 1, 1), id="ray-gpu-1-at-a-time", marks=[pytest.mark.cuda, GPU]),
    pytest.param(("ray", 1, 1 / RUNS), id=f"ray-gpu-{RUNS}-sharing", marks=[pytest.mark.cuda, GPU]),
]


def spec(cpus: float, gpus: float, backend: str, generations: int = GENERATIONS, batch: int = BATCH) -> SweepSpec:
    return SweepSpec(
        models=["mnist"],
        encodings=["cppn"],
        seeds=list(range(1, RUNS + 1)),
        options={"generations": generations, "batch": batch, "backend": backend},
        resources={"cpus": cpus, "gpus": gpus},
    )


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    ray.init(num_cpus=CPUS, include_dashboard=False, object_store_memory=100 * 1024 * 1024, logging_level="WARNING")
    warm = tmp_path_factory.mktemp("warm")  # start the workers and import the package in each
    run_sweep(spec(max(CPUS / RUNS, 1), 0, "cpu", generations=2, batch=10), warm / "sweep", progress=False)
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("case", CASES)
def test_concurrent_runs(benchmark, local_ray, tmp_path, case):
    kind, cpus, gpus = case
    grid = spec(cpus or 1, gpus or 0, "cuda" if gpus else "cpu")
    counter = itertools.count()

    def one_after_the_other(out):
        threads = torch.get_num_threads(), _core.num_threads()
        if cpus:
            limit_threads(cpus)
        try:
            for point in grid.points():
                evolve(point.config(), out / point.name, progress=False)
        finally:
            torch.set_num_threads(threads[0])
            _core.set_num_threads(threads[1])

    def sweep(out):
        run_sweep(grid, out, progress=False, poll_seconds=0.2)

    def setup():
        return (tmp_path / f"round{next(counter)}",), {}

    benchmark.pedantic(one_after_the_other if kind == "in-process" else sweep, setup=setup, rounds=3, iterations=1)
    evaluations = RUNS * GENERATIONS * BATCH
    benchmark.extra_info.update(
        runs=RUNS,
        evaluations=evaluations,
        cpus_per_run=cpus,
        gpus_per_run=gpus,
        evaluations_per_second=evaluations / benchmark.stats.stats.median,
    )


HEAD_RUNS, TICK_RUNS = 10_000, 200


@pytest.fixture(scope="module")
def big_sweep(tmp_path_factory):
    spec = SweepSpec(
        models=["mnist"], encodings=["cppn", "direct"], seeds=f"1-{HEAD_RUNS // 2}", options={"generations": 5000}
    )
    folder = SweepFolder(tmp_path_factory.mktemp("head") / "sweep")
    folder.prepare(resume=False, overwrite=False)
    yield spec, folder, spec.points()
    folder.release()


def test_head_check_grid(benchmark, big_sweep):
    spec, _, _ = big_sweep
    assert len(benchmark(lambda: (spec.check(), spec.points()))[1]) == HEAD_RUNS


def test_head_read_state(benchmark, big_sweep):
    spec, folder, points = big_sweep
    benchmark.pedantic(_Head, (folder, spec, points), rounds=3, iterations=1)


def test_head_write_state(benchmark, big_sweep):
    spec, folder, points = big_sweep
    benchmark.pedantic(_Head(folder, spec, points).write, rounds=5, iterations=1)
    benchmark.extra_info["bytes"] = folder.sweep_path.stat().st_size


def test_head_tick(benchmark, big_sweep):
    _, folder, points = big_sweep

    def tick():
        for point in points[:TICK_RUNS]:
            folder.attempts(point.name)
            run_progress(folder.path / point.folder)

    benchmark(tick)


def table(path: str) -> str:
    """The markdown table of a --benchmark-json file."""
    rows = []
    benchmarks = [b for b in json.load(open(path))["benchmarks"] if b["name"].startswith("test_concurrent_runs")]
    base = next((b["stats"]["median"] for b in benchmarks if b["param"] == "in-process"), None)
    if benchmarks:
        rows += [
            "| case | runs at once | median for 2 runs | evaluations/s | vs in-process |",
            "|---|---:|---:|---:|---:|",
        ]
    for b in benchmarks:
        median = b["stats"]["median"]
        info = b["extra_info"]
        at_once = RUNS if "concurrent" in b["param"] or "sharing" in b["param"] else 1
        ratio = f"{base / median:.2f}x" if base else ""
        rows.append(f"| {b['param']} | {at_once} | {median:.2f} s | {info['evaluations_per_second']:,.0f} | {ratio} |")
    for b in json.load(open(path))["benchmarks"]:
        if b["name"].startswith("test_head"):
            rows.append(f"{b['name']}: median {1000 * b['stats']['median']:.1f} ms {b['extra_info'] or ''}".strip())
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(sys.argv[1]))
