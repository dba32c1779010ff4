"""The CUDA backend mutates and selects exactly as the CPU backend does (bit for bit), from the same seed."""

from __future__ import annotations

import pytest
import torch
from genomes import random_population

from fooling_ext.core import backend
from fooling_ext.core.backend import cuda_available
from fooling_ext.core.cppn import NUM_INPUTS, CPPNPopulation
from fooling_ext.core.direct import DirectPopulation
from fooling_ext.core.mutation import CPPNMutation, DirectMutation, mutate_cppn, mutate_direct
from fooling_ext.core.population import select_parents

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not cuda_available(), reason="no usable CUDA backend/device")]


def assert_same(cpu: CPPNPopulation, gpu: CPPNPopulation) -> None:
    for name, t in gpu.tensors().items():
        assert torch.equal(t.cpu(), getattr(cpu, name)), name


@pytest.mark.parametrize("num_outputs", [1, 3])
@pytest.mark.parametrize(
    "params",
    [
        CPPNMutation(),
        CPPNMutation(p_add_edge=1.0, p_add_node=0.9, activations=("sine", "gaussian")),
        CPPNMutation(add_edge="rejection"),
        CPPNMutation(p_add_edge=1.0, p_add_node=0.9, add_edge="rejection"),
    ],
    ids=["paper", "growing", "paper-rejection", "growing-rejection"],
)
def test_cppn_mutation_matches_cpu(num_outputs, params, monkeypatch):
    monkeypatch.setattr(backend, "CUDA_CHUNK", 7)  # several launches, each with its genome offset
    # Capacity above what the random genomes need (up to about 150 edges for 27 nodes), below the core's limits;
    # the growing settings reach it within the 30 generations, so the blocked flags are compared too.
    cpu = random_population(50, num_outputs, hidden=(0, 20), seed=num_outputs, max_nodes=40, max_edges=256)
    gpu = cpu.to("cuda")
    blocked_seen = 0
    for generation in range(30):
        cpu_blocked = mutate_cppn(cpu, seed=555, generation=generation, params=params, genome_offset=3)
        gpu_blocked = mutate_cppn(gpu, seed=555, generation=generation, params=params, genome_offset=3)
        assert gpu_blocked.device.type == "cuda" and torch.equal(gpu_blocked.cpu(), cpu_blocked), generation
        blocked_seen += int((cpu_blocked != 0).sum())
    assert_same(cpu, gpu)
    gpu.validate()
    if params.p_add_node > 0.5:
        assert blocked_seen > 0


def test_cppn_errors_match_cpu():
    cpu = CPPNPopulation.initial(4, 1, seed=2)
    cpu.edge_src[2, 1] = 77
    gpu = cpu.to("cuda")
    with pytest.raises(ValueError, match="genome 2: edge_src"):
        mutate_cppn(gpu, seed=1, generation=0)
    with pytest.raises(ValueError, match="genome 2: edge_src"):
        mutate_cppn(cpu, seed=1, generation=0)
    assert_same(cpu, gpu)


def test_selection_matches_cpu_and_flags_bad_indices():
    cpu = random_population(9, 3, hidden=(0, 6), seed=4)
    gpu = cpu.to("cuda")
    index = [8, 0, 8, 3, 1]
    assert_same(select_parents(cpu, index), select_parents(gpu, torch.tensor(index, device="cuda")))
    with pytest.raises(ValueError, match=r"index\[1\] = 9 is out of range"):
        select_parents(gpu, [0, 9, -1])
    kids = select_parents(gpu, [0, 9], check=False)
    assert int(kids.num_nodes[1]) == NUM_INPUTS + 3 and int(kids.num_edges[1]) == 0
    pixels = DirectPopulation.initial(6, 3, 9, 11, seed=1)
    on_gpu = pixels.to("cuda")
    rows = [5, 0, 5, 3]  # this population has 6 genomes
    assert torch.equal(on_gpu.select(rows).genes.cpu(), pixels.select(rows).genes)
    with pytest.raises(ValueError, match=r"index\[0\] = 6"):
        on_gpu.select([6])


@pytest.mark.parametrize("crossover", [False, True])
@pytest.mark.parametrize("shape", [(7, 3, 13, 17), (400, 3, 64, 64)])
def test_pixels_match_cpu(shape, crossover):
    cpu = DirectPopulation.initial(*shape, seed=8)
    gpu = DirectPopulation.initial(*shape, seed=8, device="cuda")
    assert torch.equal(gpu.genes.cpu(), cpu.genes)
    params = DirectMutation(rate=0.2, crossover=crossover)
    for generation in range(5):
        mutate_direct(cpu, seed=21, generation=generation, params=params, genome_offset=1)
        mutate_direct(gpu, seed=21, generation=generation, params=params, genome_offset=1)
    assert torch.equal(gpu.genes.cpu(), cpu.genes)
