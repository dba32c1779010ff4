"""Batched mutation of CPPN and direct-encoding populations, on the CPU and CUDA backends.

One call mutates a whole population in place. The backend follows the population's device (CUDA work runs
on torch's current stream, with no host round trip unless `check` asks for one). Every random decision
comes from Philox4x32-10 keyed by `seed` with the counter (generation, genome, purpose, index), where
genome is the child's index in the population plus `genome_offset` (for populations mutated in chunks).
So the same (seed, generation) gives the same children on every run and on both backends, and
:mod:`fooling_ext.core.reference.mutation` reproduces them exactly in NumPy.

The defaults are the paper's (and the original code's) settings:

- CPPN (:class:`CPPNMutation`): each weight with p = 0.1 by polynomial mutation (eta = 15) within
  [-10, 10]; each non-input node's activation redrawn with p = 0.1; add a feed-forward connection
  (p = 0.5; the original's rule: a source among the inputs and hidden nodes, a target among the nodes that
  are not inputs nor its ancestors, parallel edges allowed), delete a connection (p = 0.3), split a
  connection with a new node (p = 0.5), delete a hidden node (p = 0.2), in that order.
- Direct (:class:`DirectMutation`): each gene with p = 0.1 by polynomial mutation (eta = 15) within [0, 1];
  SBX crossover (rate 0.5 per pair, every gene of a crossing pair, eta_c = 10) off. :func:`halving_rate`
  gives the paper's schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fooling_ext import _core
from fooling_ext.core.backend import launch
from fooling_ext.core.checks import check_int, check_number
from fooling_ext.core.cppn import CPPNPopulation, activation_ids, raise_first_error
from fooling_ext.core.direct import DirectPopulation

COUNTER_LIMIT = 2**32
SEED_LIMIT = 2**64

_CPPN_PROBABILITIES = ("p_weight", "p_activation", "p_add_edge", "p_delete_edge", "p_add_node", "p_delete_node")


MAX_ADD_EDGE_ATTEMPTS = 10_000

# How "add connection" picks its pair (AddEdgeMode in cpp/include/fooling/mutation.h).
ADD_EDGE_MODES = {"original": 0, "rejection": 1}

# Bits of the per-genome flags mutate_cppn returns: the growing operator fired but capacity blocked it.
BLOCKED_ADD_EDGE = 1  # add connection, with the edges at capacity
BLOCKED_ADD_NODE = 2  # add node, with no free node or edge slot


def _raise_if(message: str) -> None:
    if message:
        raise ValueError(message)


@dataclass(frozen=True)
class CPPNMutation:
    """CPPN mutation parameters; the defaults are the paper's. Checked on construction (ValueError naming
    the field). `activations`: the names a redrawn or new node may take (None: all).

    `add_edge`: how "add connection" picks its pair. "original" (default), as the original code's
    gen_dnn_ff: the source uniform among the inputs and hidden nodes, then the target uniform among the
    non-input nodes that are neither the source nor one of its ancestors (nothing is added when there is
    none); an edge parallel to an existing one may be added. "rejection": pairs drawn uniformly, a pair that
    duplicates an edge or closes a cycle rejected, up to `add_edge_attempts` pairs (the rule of runs
    recorded before "original" existed)."""

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
    add_edge: str = "original"
    add_edge_attempts: int = 10

    def __post_init__(self) -> None:
        if self.add_edge not in ADD_EDGE_MODES:
            raise ValueError(f"add_edge must be one of {tuple(ADD_EDGE_MODES)}, got {self.add_edge!r}")
        if self.activations is not None:
            if isinstance(self.activations, str):
                raise ValueError(f"activations must be a sequence of names, got the string {self.activations!r}")
            object.__setattr__(self, "activations", tuple(self.activations))
        _raise_if(_core.check_cppn_mutation_params(self.core_params()))

    def core_params(self) -> _core.CppnMutationParams:
        """The parameters as the core reads them (probabilities and bounds as float32)."""
        p = _core.CppnMutationParams()
        for name in (*_CPPN_PROBABILITIES, "eta", "weight_min", "weight_max"):
            setattr(p, name, check_number(name, getattr(self, name)))
        try:
            p.activations = sum(1 << i for i in set(activation_ids(self.activations)))
        except ValueError as exc:
            raise ValueError(f"activations: {exc}") from None
        # Each attempt draws two nodes; a genome whose every pair is taken would spin through all of them, so
        # the count is bounded.
        p.add_edge_attempts = check_int("add_edge_attempts", self.add_edge_attempts, 1, MAX_ADD_EDGE_ATTEMPTS + 1)
        p.add_edge = ADD_EDGE_MODES[self.add_edge]
        return p


@dataclass(frozen=True)
class DirectMutation:
    """Direct-encoding mutation parameters; the defaults are the original code's (crossover off, as the
    paper describes none). Checked on construction (ValueError naming the field)."""

    rate: float = 0.1
    eta: float = 15.0
    crossover: bool = False
    crossover_rate: float = 0.5
    eta_c: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.crossover, (bool, np.bool_)):
            raise ValueError(f"crossover must be a bool, got {self.crossover!r}")
        _raise_if(_core.check_pixel_mutation_params(self.core_params()))

    def core_params(self, rate: float | None = None) -> _core.PixelMutationParams:
        """The parameters as the core reads them; `rate` overrides the per-gene rate."""
        p = _core.PixelMutationParams()
        p.rate = check_number("rate", self.rate if rate is None else rate)
        p.eta = check_number("eta", self.eta)
        p.crossover = int(bool(self.crossover))
        p.crossover_rate = check_number("crossover_rate", self.crossover_rate)
        p.eta_c = check_number("eta_c", self.eta_c)
        return p


def halving_rate(base_rate: float, generation: int, every: int | None = 1000) -> float:
    """The paper's schedule for the direct encoding's mutation rate: base_rate halved every `every`
    generations (base_rate * 0.5 ** (generation // every)); every = None or 0 keeps it fixed, as the released
    code does."""
    base_rate = check_number("base_rate", base_rate)
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


def mutate_cppn(
    pop: CPPNPopulation,
    *,
    seed: int,
    generation: int,
    params: CPPNMutation = CPPNMutation(),
    genome_offset: int = 0,
    check: bool = True,
) -> torch.Tensor:
    """Mutate every genome of `pop` in place with the draws of (seed, generation).

    From a valid genome the child is always valid (acyclic, no dangling edge, within capacity); a genome at
    capacity skips the operator that would grow it. A genome that is not valid (counts, fields, a cycle) is left
    unchanged; with `check` the first one raises GenomeError after the call (on CUDA this reads the error
    flags back, which waits for the mutation to finish).

    Returns int32 [B] on the population's device: for each child, the operators that fired but that capacity
    blocked (BLOCKED_ADD_EDGE: add connection with the edges full; BLOCKED_ADD_NODE: add node with no free node
    or edge slot; 0 for none, and for an invalid genome).
    """
    if not isinstance(pop, CPPNPopulation):
        raise ValueError(f"mutate_cppn needs a CPPNPopulation, got {type(pop).__name__}")
    if not isinstance(params, CPPNMutation):
        raise ValueError(f"params must be a CPPNMutation, got {type(params).__name__}")
    _check_counters(pop.batch, seed, generation, genome_offset)
    core = params.core_params()
    errors = torch.empty(pop.batch, 3, dtype=torch.int32, device=pop.device)
    blocked = torch.zeros(pop.batch, dtype=torch.int32, device=pop.device)
    invalid = launch(
        "mutate_cppn",
        pop.device,
        pop.core_view(),
        core,
        seed,
        generation,
        genome_offset,
        errors.data_ptr(),
        blocked.data_ptr(),
        genomes=pop,
    )
    if check and (invalid is None or invalid > 0):  # None: on CUDA the count is only in `errors`
        raise_first_error(errors, pop)
    return blocked


def mutate_direct(
    pop: DirectPopulation,
    *,
    seed: int,
    generation: int,
    params: DirectMutation = DirectMutation(),
    rate: float | None = None,
    genome_offset: int = 0,
) -> None:
    """Mutate every genome of `pop` in place with the draws of (seed, generation): each gene with
    probability `rate` (default params.rate; see :func:`halving_rate`) by polynomial mutation within
    [0, 1]. With params.crossover, children (0, 1), (2, 3), ... first undergo SBX as a pair with
    probability params.crossover_rate (every gene of the pair, as the original does; genes whose parents agree
    to within float epsilon keep their values)."""
    if not isinstance(pop, DirectPopulation):
        raise ValueError(f"mutate_direct needs a DirectPopulation, got {type(pop).__name__}")
    if not isinstance(params, DirectMutation):
        raise ValueError(f"params must be a DirectMutation, got {type(params).__name__}")
    _check_counters(pop.batch, seed, generation, genome_offset)
    pop.check_tensors()
    core = params.core_params(rate)
    _raise_if(_core.check_pixel_mutation_params(core))
    launch(
        "mutate_pixels",
        pop.device,
        pop.genes.data_ptr(),
        pop.batch,
        pop.genes_per_genome,
        core,
        seed,
        generation,
        genome_offset,
    )
