"""Batched mutation of CPPN and pixel populations, and parent selection, on the CPU and CUDA backends.

One call mutates a whole population in place. The backend follows the population's device (CUDA work runs
on torch's current stream, with no host round trip unless `check` asks for one). Every random decision
comes from Philox4x32-10 keyed by `seed` with the counter (generation, genome, purpose, index), where
genome is the child's index in the population plus `genome_offset` (for populations mutated in chunks).
So the same (seed, generation) gives the same children on every run and on both backends, and
:mod:`fooling_ext.reference_mutation` reproduces them exactly in NumPy.

The defaults are the paper's (and the original code's) settings:

- CPPN (:class:`CPPNMutation`): each weight with p = 0.1 by polynomial mutation (eta = 15) within
  [-10, 10]; each non-input node's activation redrawn with p = 0.1; add a feed-forward connection
  (p = 0.5), delete a connection (p = 0.3), split a connection with a new node (p = 0.5), delete a hidden
  node (p = 0.2), in that order.
- Pixels (:class:`PixelMutation`): each gene with p = 0.1 by polynomial mutation (eta = 15) within [0, 1];
  SBX crossover (rate 0.5, eta_c = 10) off. :func:`halving_rate` gives the paper's schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from fooling_ext import _core
from fooling_ext._backend import check_tensor, cuda_stream_handle, resolve_backend
from fooling_ext.genome import CPPNPopulation, activation_ids, raise_first_error
from fooling_ext.pixels import PixelPopulation, check_int

COUNTER_LIMIT = 2**32
SEED_LIMIT = 2**64

# Genomes mutated per CUDA launch: bounds the device workspace (about 2 KB per genome at default capacities).
CUDA_CHUNK = 4096

_CPPN_PROBABILITIES = ("p_weight", "p_activation", "p_add_edge", "p_delete_edge", "p_add_node", "p_delete_node")


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _raise_if(message: str) -> None:
    if message:
        raise ValueError(message)


@dataclass(frozen=True)
class CPPNMutation:
    """CPPN mutation parameters; the defaults are the paper's. Checked on construction (ValueError naming
    the field). `activations`: the names a redrawn or new node may take (None: all)."""

    p_weight: float = 0.1
    eta: float = 15.0
    weight_min: float = -10.0
    weight_max: float = 10.0
    p_activation: float = 0.1
    activations: tuple[str, ...] | None = None
    p_add_edge: float = 0.5
    p_delete_edge: float = 0.3
    p_add_node: float = 0.5
    p_delete_node: float = 0.2
    add_edge_attempts: int = 10

    def __post_init__(self) -> None:
        if self.activations is not None:
            if isinstance(self.activations, str):
                raise ValueError(f"activations must be a sequence of names, got the string {self.activations!r}")
            object.__setattr__(self, "activations", tuple(self.activations))
        _raise_if(_core.check_cppn_mutation_params(self.core_params()))

    def core_params(self) -> "_core.CppnMutationParams":
        """The parameters as the core reads them (probabilities and bounds as float32)."""
        p = _core.CppnMutationParams()
        for name in (*_CPPN_PROBABILITIES, "eta", "weight_min", "weight_max"):
            setattr(p, name, _check_number(name, getattr(self, name)))
        try:
            p.activations = sum(1 << i for i in set(activation_ids(self.activations)))
        except ValueError as exc:
            raise ValueError(f"activations: {exc}") from None
        p.add_edge_attempts = check_int("add_edge_attempts", self.add_edge_attempts, 1, 2**31)
        return p


@dataclass(frozen=True)
class PixelMutation:
    """Pixel mutation parameters; the defaults are the original code's (crossover off, as the paper
    describes none). Checked on construction (ValueError naming the field)."""

    rate: float = 0.1
    eta: float = 15.0
    crossover: bool = False
    crossover_rate: float = 0.5
    eta_c: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.crossover, (bool, np.bool_)):
            raise ValueError(f"crossover must be a bool, got {self.crossover!r}")
        _raise_if(_core.check_pixel_mutation_params(self.core_params()))

    def core_params(self, rate: float | None = None) -> "_core.PixelMutationParams":
        """The parameters as the core reads them; `rate` overrides the per-gene rate."""
        p = _core.PixelMutationParams()
        p.rate = _check_number("rate", self.rate if rate is None else rate)
        p.eta = _check_number("eta", self.eta)
        p.crossover = int(bool(self.crossover))
        p.crossover_rate = _check_number("crossover_rate", self.crossover_rate)
        p.eta_c = _check_number("eta_c", self.eta_c)
        return p


def halving_rate(base_rate: float, generation: int, every: int | None = 1000) -> float:
    """The paper's schedule for the pixel mutation rate: base_rate halved every `every` generations
    (base_rate * 0.5 ** (generation // every)); every = None or 0 keeps it fixed, as the released code does."""
    base_rate = _check_number("base_rate", base_rate)
    if not 0.0 <= base_rate <= 1.0:
        raise ValueError(f"base_rate must be a probability in [0, 1], got {base_rate}")
    generation = check_int("generation", generation, 0, COUNTER_LIMIT)
    if every is None or every == 0:
        return base_rate
    every = check_int("every", every, 1, COUNTER_LIMIT)
    return math.ldexp(base_rate, -(generation // every))


def _check_counters(pop_batch: int, seed: int, generation: int, genome_offset: int) -> None:
    check_int("seed", seed, 0, SEED_LIMIT)
    check_int("generation", generation, 0, COUNTER_LIMIT)
    check_int("genome_offset", genome_offset, 0, COUNTER_LIMIT)
    if genome_offset + pop_batch > COUNTER_LIMIT:
        raise ValueError(f"genome_offset + batch must be at most 2^32, got {genome_offset} + {pop_batch}")


def _check_cppn_tensors(pop: CPPNPopulation) -> None:
    b, dev = pop.batch, pop.device
    check_tensor(pop.num_nodes, "num_nodes", torch.int32, (b,), dev)
    check_tensor(pop.num_edges, "num_edges", torch.int32, (b,), dev)
    check_tensor(pop.node_activation, "node_activation", torch.int32, (b, pop.max_nodes), dev)
    check_tensor(pop.edge_src, "edge_src", torch.int32, (b, pop.max_edges), dev)
    check_tensor(pop.edge_dst, "edge_dst", torch.int32, (b, pop.max_edges), dev)
    check_tensor(pop.edge_weight, "edge_weight", torch.float32, (b, pop.max_edges), dev)


def mutate_cppn(
    pop: CPPNPopulation,
    *,
    seed: int,
    generation: int,
    params: CPPNMutation = CPPNMutation(),
    genome_offset: int = 0,
    check: bool = True,
) -> None:
    """Mutate every genome of `pop` in place with the draws of (seed, generation).

    From a valid genome the child is always valid (acyclic, no dangling edge, within capacity); a genome at
    capacity skips the operator that would grow it. A genome whose counts or fields are invalid is left
    unchanged; with `check` the first one raises GenomeError after the call (on CUDA this reads the error
    flags back, which waits for the mutation to finish).
    """
    if not isinstance(pop, CPPNPopulation):
        raise ValueError(f"mutate_cppn needs a CPPNPopulation, got {type(pop).__name__}")
    if not isinstance(params, CPPNMutation):
        raise ValueError(f"params must be a CPPNMutation, got {type(params).__name__}")
    _check_counters(pop.batch, seed, generation, genome_offset)
    _check_cppn_tensors(pop)
    core = params.core_params()
    device = pop.device
    errors = torch.empty(pop.batch, 3, dtype=torch.int32, device=device)
    view = pop.core_view()
    if device.type == "cpu":
        invalid = _core.mutate_cppn_cpu(view, core, seed, generation, genome_offset, errors.data_ptr())
        if check and invalid:
            raise_first_error(errors, pop)
    elif device.type == "cuda":
        resolve_backend("cuda")  # raises, saying why, when the CUDA backend cannot be used
        rows = min(max(pop.batch, 1), CUDA_CHUNK)
        workspace = torch.empty(
            rows * _core.mutation_workspace_ints(pop.max_nodes, pop.max_edges), dtype=torch.int32, device=device
        )
        with torch.cuda.device(device):
            _core.mutate_cppn_cuda(
                view, core, seed, generation, genome_offset, errors.data_ptr(), workspace.data_ptr(), rows,
                cuda_stream_handle(device),
            )
        if check and bool((errors[:, 0] != 0).any()):
            raise_first_error(errors.cpu(), pop)
    else:
        raise ValueError(f"no backend mutates on device {device}")


def mutate_pixels(
    pop: PixelPopulation,
    *,
    seed: int,
    generation: int,
    params: PixelMutation = PixelMutation(),
    rate: float | None = None,
    genome_offset: int = 0,
) -> None:
    """Mutate every genome of `pop` in place with the draws of (seed, generation): each gene with
    probability `rate` (default params.rate; see :func:`halving_rate`) by polynomial mutation within
    [0, 1]. With params.crossover, children (0, 1), (2, 3), ... first undergo SBX as a pair with
    probability params.crossover_rate (each gene with probability 1/2)."""
    if not isinstance(pop, PixelPopulation):
        raise ValueError(f"mutate_pixels needs a PixelPopulation, got {type(pop).__name__}")
    if not isinstance(params, PixelMutation):
        raise ValueError(f"params must be a PixelMutation, got {type(params).__name__}")
    _check_counters(pop.batch, seed, generation, genome_offset)
    check_tensor(pop.genes, "genes", torch.float32, (pop.batch, None, None, None), pop.device)
    core = params.core_params(rate)
    _raise_if(_core.check_pixel_mutation_params(core))
    device = pop.device
    if device.type == "cpu":
        _core.mutate_pixels_cpu(pop.genes.data_ptr(), pop.batch, pop.genes_per_genome, core, seed, generation,
                                genome_offset)
    elif device.type == "cuda":
        resolve_backend("cuda")
        with torch.cuda.device(device):
            _core.mutate_pixels_cuda(pop.genes.data_ptr(), pop.batch, pop.genes_per_genome, core, seed, generation,
                                     genome_offset, cuda_stream_handle(device))
    else:
        raise ValueError(f"no backend mutates on device {device}")


def _index_tensor(index: torch.Tensor | Sequence[int], device: torch.device) -> torch.Tensor:
    if not isinstance(index, torch.Tensor):
        index = torch.as_tensor(np.asarray(index, dtype=np.int64).reshape(-1), device=device)
    return check_tensor(index, "index", torch.int64, (None,), device)


def _raise_bad_index(first_bad: int, index: torch.Tensor, batch: int) -> None:
    if first_bad >= 0:
        raise ValueError(f"index[{first_bad}] = {int(index[first_bad])} is out of range for a population of {batch}")


def select_parents(
    pop: CPPNPopulation | PixelPopulation,
    index: torch.Tensor | Sequence[int],
    *,
    out: CPPNPopulation | PixelPopulation | None = None,
    check: bool = True,
) -> CPPNPopulation | PixelPopulation:
    """The child population: child i is a copy of genome index[i] of `pop` (int64, on pop's device;
    repeats allowed), copied by the core on pop's backend (on CUDA, on the current stream).

    `out`: a population of the same kind, capacities and device with len(index) genomes to write into.
    Indices are range-checked by the core itself (on CUDA, inside the kernel, into a device flag): a child
    whose index is out of range is written as a bare genome (CPPN: inputs and outputs, no edges) or zeros
    (pixels); with `check` the first such index raises ValueError (on CUDA this reads the flag back, which
    waits for the copy).
    """
    if not isinstance(pop, (CPPNPopulation, PixelPopulation)):
        raise ValueError(f"select_parents needs a CPPNPopulation or PixelPopulation, got {type(pop).__name__}")
    device = pop.device
    idx = _index_tensor(index, device)
    count = idx.shape[0]
    if isinstance(pop, CPPNPopulation):
        _check_cppn_tensors(pop)
        if out is None:
            out = CPPNPopulation(
                torch.empty(count, dtype=torch.int32, device=device),
                torch.empty(count, dtype=torch.int32, device=device),
                torch.empty(count, pop.max_nodes, dtype=torch.int32, device=device),
                torch.empty(count, pop.max_edges, dtype=torch.int32, device=device),
                torch.empty(count, pop.max_edges, dtype=torch.int32, device=device),
                torch.empty(count, pop.max_edges, dtype=torch.float32, device=device),
                num_outputs=pop.num_outputs,
            )
        elif not isinstance(out, CPPNPopulation) or (out.batch, out.num_outputs, out.max_nodes, out.max_edges) != (
            count, pop.num_outputs, pop.max_nodes, pop.max_edges
        ):
            raise ValueError(
                f"out must be a CPPNPopulation of {count} genomes with num_outputs={pop.num_outputs}, "
                f"max_nodes={pop.max_nodes}, max_edges={pop.max_edges}"
            )
        else:
            _check_cppn_tensors(out)
            if out.device != device:
                raise ValueError(f"out is on {out.device}, expected {device}")
        if device.type == "cpu":
            first_bad = _core.select_cppn_cpu(pop.core_view(), idx.data_ptr(), out.core_view())
        else:
            first_bad = _select_cuda(
                lambda flag, stream: _core.select_cppn_cuda(pop.core_view(), idx.data_ptr(), out.core_view(), flag,
                                                            stream),
                device, check,
            )
    else:
        check_tensor(pop.genes, "genes", torch.float32, (pop.batch, None, None, None), device)
        shape = (count, pop.channels, pop.height, pop.width)
        if out is None:
            out = PixelPopulation(torch.empty(shape, dtype=torch.float32, device=device))
        elif not isinstance(out, PixelPopulation):
            raise ValueError(f"out must be a PixelPopulation, got {type(out).__name__}")
        else:
            check_tensor(out.genes, "out.genes", torch.float32, shape, device)
        row = pop.genes_per_genome
        if device.type == "cpu":
            first_bad = _core.select_rows_cpu(pop.genes.data_ptr(), pop.batch, row, idx.data_ptr(), count,
                                              out.genes.data_ptr())
        else:
            first_bad = _select_cuda(
                lambda flag, stream: _core.select_rows_cuda(pop.genes.data_ptr(), pop.batch, row, idx.data_ptr(),
                                                            count, out.genes.data_ptr(), flag, stream),
                device, check,
            )
    if check:
        _raise_bad_index(first_bad, idx, pop.batch)
    return out


def _select_cuda(launch, device: torch.device, check: bool) -> int:
    """Runs a CUDA selection; returns the first out-of-range position (-1: none, or not read back)."""
    if device.type != "cuda":
        raise ValueError(f"no backend selects on device {device}")
    resolve_backend("cuda")
    flag = torch.empty(1, dtype=torch.int64, device=device)
    with torch.cuda.device(device):
        launch(flag.data_ptr(), cuda_stream_handle(device))
    return int(flag.item()) if check else -1
