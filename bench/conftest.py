"""Shared fixtures of the benchmarks: the populations to render and the images our renderer makes of them.

Benchmark modules are named bench_*.py; the hook below collects them when pytest is given the folder (pytest
itself only looks for test_*.py there, and collects a file named on the command line anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from populations import WORKLOADS, Workload

import fooling_ext as fx
from fooling_ext.core.backend import build_info
from fooling_ext.core.cppn import CPPNPopulation


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what the numbers depend on besides the CPU: torch, the build, and the GPU when there is one."""
    info = build_info()
    machine_info["fooling_ext"] = {k: info[k] for k in ("version", "cpu_threads", "cuda_compiled", "cuda_usable")}
    machine_info["torch"] = {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
    }
    if info["cuda_usable"]:
        machine_info["gpu"] = torch.cuda.get_device_name()


@dataclass(frozen=True)
class RenderCase:
    """A workload's population and the C++ CPU backend's images of it, against which others are checked."""

    workload: Workload
    population: CPPNPopulation
    expected: np.ndarray  # float32 [B, C, H, W]


@pytest.fixture(scope="session", params=WORKLOADS, ids=[w.name for w in WORKLOADS])
def render_case(request) -> RenderCase:
    workload: Workload = request.param
    population = workload.population()
    expected = fx.render(population, workload.side).numpy()
    return RenderCase(workload, population, expected)
