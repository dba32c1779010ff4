"""The compiled core's Python face: populations of genomes, rendering, mutation and selection, each routed to
the CPU or the CUDA backend by :mod:`~fooling_ext.core.backend`, and the NumPy references that test them
(:mod:`fooling_ext.core.reference`). Nothing here knows about classifiers, archives or runs."""

from fooling_ext.core.backend import BACKENDS, build_info, cuda_available, resolve_backend, resolve_device
from fooling_ext.core.cppn import ACTIVATIONS, NUM_INPUTS, CPPNPopulation, GenomeError
from fooling_ext.core.cppn_text import format_genome, parse_genome
from fooling_ext.core.direct import DirectPopulation
from fooling_ext.core.mutation import CPPNMutation, DirectMutation, halving_rate, mutate_cppn, mutate_direct
from fooling_ext.core.population import Population, select_parents
from fooling_ext.core.render import render
from fooling_ext.core.seeds import derive_seed, seeded_rng

__all__ = [
    "ACTIVATIONS",
    "BACKENDS",
    "CPPNMutation",
    "CPPNPopulation",
    "DirectMutation",
    "DirectPopulation",
    "GenomeError",
    "NUM_INPUTS",
    "Population",
    "build_info",
    "cuda_available",
    "derive_seed",
    "format_genome",
    "halving_rate",
    "mutate_cppn",
    "mutate_direct",
    "parse_genome",
    "render",
    "resolve_backend",
    "resolve_device",
    "seeded_rng",
    "select_parents",
]
