"""Selection and mutation throughput: the C++ CPU and CUDA backends against NumPy / PyTorch versions of the
same operators, and against the time to render the same genomes.

Workloads, one generation each:
- CPPN: 400 colour genomes with 30 hidden nodes (grown from the paper's starting genomes by 30 rounds of
  add-node and 30 of add-connection: about 72 connections each); select 400 parents at random, then mutate
  them with the paper's operators. Baseline: the NumPy reference (fooling_ext.reference_mutation), genome by
  genome. The target is selection + mutation under 10% of rendering the same genomes at 256 x 256 x 3.
- Direct encoding: 400 genomes of 3 x 256 x 256; select 400 parents, then polynomial mutation at rate 0.1 (and with
  SBX). Baseline: PyTorch, with the same operators written the way a user would (index_select, torch.rand,
  mutating only the chosen genes).

Run: python -m pytest bench/bench_mutation.py --benchmark-only
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch

from fooling_ext.core.backend import cuda_available
from fooling_ext.core.cppn import CPPNPopulation
from fooling_ext.core.direct import DirectPopulation
from fooling_ext.core.mutation import CPPNMutation, DirectMutation, mutate_cppn, mutate_direct
from fooling_ext.core.population import select_parents
from fooling_ext.core.reference import mutation as ref
from fooling_ext.core.render import render as render_cppn

BATCH = 400
HIDDEN = 30
SIDE = 256
SEED = 2015

GPU = pytest.mark.skipif(not cuda_available(), reason="no usable CUDA backend/device")
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=GPU)]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.fixture(scope="module")
def cppn_parents() -> CPPNPopulation:
    pop = CPPNPopulation.initial(BATCH, 3, seed=SEED)
    grow = dict(p_weight=0.0, p_activation=0.0, p_delete_edge=0.0, p_delete_node=0.0)
    for generation in range(HIDDEN):
        mutate_cppn(pop, seed=SEED, generation=generation, params=CPPNMutation(**grow, p_add_edge=0.0, p_add_node=1.0))
    for generation in range(HIDDEN, 2 * HIDDEN):
        mutate_cppn(pop, seed=SEED, generation=generation, params=CPPNMutation(**grow, p_add_edge=1.0, p_add_node=0.0))
    assert bool((pop.num_hidden() == HIDDEN).all())
    return pop


@pytest.fixture(scope="module")
def direct_parents() -> DirectPopulation:
    return DirectPopulation.initial(BATCH, 3, SIDE, SIDE, seed=SEED)


def _parent_indices(device: str) -> Callable[[], torch.Tensor]:
    gen = torch.Generator().manual_seed(SEED)
    return lambda: torch.randint(BATCH, (BATCH,), generator=gen).to(device)


def _record(benchmark, workload: str, implementation: str, device: str) -> None:
    benchmark.extra_info.update(workload=workload, implementation=implementation, device=device, genomes=BATCH)


# --------------------------------------------------------------------------------------------------
# CPPN


@pytest.mark.parametrize("device", DEVICES)
def test_cppn_select_and_mutate_core(benchmark, cppn_parents, device):
    parents = cppn_parents.to(device)
    indices = _parent_indices(device)
    generations = itertools.count()

    def generation():
        kids = select_parents(parents, indices(), check=False)
        mutate_cppn(kids, seed=SEED, generation=next(generations), check=False)
        _sync(device)
        return kids

    _record(benchmark, "cppn select+mutate", "fooling_ext", device)
    kids = benchmark(generation)
    kids.validate()


def test_cppn_select_and_mutate_numpy_reference(benchmark, cppn_parents):
    indices = _parent_indices("cpu")
    generations = itertools.count()

    def generation():
        return ref.mutate_cppn(cppn_parents.select(indices()), seed=SEED, generation=next(generations))

    _record(benchmark, "cppn select+mutate", "NumPy reference", "cpu")
    benchmark.pedantic(generation, rounds=3, iterations=1, warmup_rounds=0).validate()


@pytest.mark.parametrize("device", DEVICES)
def test_cppn_render(benchmark, cppn_parents, device):
    pop = cppn_parents.to(device)

    def render():
        images = render_cppn(pop, SIDE, SIDE, check=False)
        _sync(device)
        return images

    _record(benchmark, f"cppn render {SIDE}x{SIDE}x3", "fooling_ext", device)
    images = benchmark.pedantic(render, rounds=3 if device == "cpu" else 20, iterations=1, warmup_rounds=1)
    assert images.shape == (BATCH, 3, SIDE, SIDE)


# --------------------------------------------------------------------------------------------------
# Pixels


def mutate_direct_torch(
    genes: torch.Tensor, index: torch.Tensor, rate: float, eta: float, generator: torch.Generator
) -> torch.Tensor:
    """Selection and polynomial mutation in plain PyTorch: the baseline."""
    kids = genes.index_select(0, index)
    flat = kids.view(-1)
    chosen = (torch.rand(flat.shape, generator=generator, device=flat.device) < rate).nonzero().squeeze(1)
    u = torch.rand(chosen.shape, generator=generator, device=flat.device)
    exponent = 1.0 / (eta + 1.0)
    delta = torch.where(u < 0.5, (2.0 * u).pow(exponent) - 1.0, 1.0 - (2.0 * (1.0 - u)).pow(exponent))
    flat[chosen] = (flat[chosen] + delta).clamp_(0.0, 1.0)
    return kids


@pytest.mark.parametrize("crossover", [False, True], ids=["mutation", "sbx+mutation"])
@pytest.mark.parametrize("device", DEVICES)
def test_direct_select_and_mutate_core(benchmark, direct_parents, device, crossover):
    parents = direct_parents.to(device)
    out = DirectPopulation(torch.empty_like(parents.genes))
    indices = _parent_indices(device)
    generations = itertools.count()
    params = DirectMutation(crossover=crossover)

    def generation():
        kids = select_parents(parents, indices(), out=out, check=False)
        mutate_direct(kids, seed=SEED, generation=next(generations), params=params)
        _sync(device)
        return kids

    _record(benchmark, "direct select+" + ("sbx+mutate" if crossover else "mutate"), "fooling_ext", device)
    kids = benchmark.pedantic(generation, rounds=5, iterations=1, warmup_rounds=1)
    assert 0.0 <= float(kids.genes.min()) and float(kids.genes.max()) <= 1.0


@pytest.mark.parametrize("device", DEVICES)
def test_direct_select_and_mutate_torch(benchmark, direct_parents, device):
    genes = direct_parents.genes.to(device)
    indices = _parent_indices(device)
    generator = torch.Generator(device=device).manual_seed(SEED)

    def generation():
        kids = mutate_direct_torch(genes, indices(), 0.1, 15.0, generator)
        _sync(device)
        return kids

    _record(benchmark, "direct select+mutate", "PyTorch", device)
    kids = benchmark.pedantic(generation, rounds=5, iterations=1, warmup_rounds=1)
    assert 0.0 <= float(kids.min()) and float(kids.max()) <= 1.0
