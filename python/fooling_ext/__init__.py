"""fooling_ext: find the images a classifier is most wrong about.

A fast reimplementation of Nguyen, Yosinski & Clune, "Deep Neural Networks are Easily Fooled" (CVPR 2015):
MAP-Elites over CPPN (indirect) and direct (pixel) encodings, gradient ascent, and the fooling-class
experiment, with a compiled C++/CUDA core for rendering and mutating whole populations.

The package is layered (docs/architecture.md); each layer imports only those below it:

    cli          the ``fooling`` command: every argparse line
    sweep        many runs as Ray tasks (Ray imported only when a sweep runs)
    gallery      beside sweep: a static HTML site of runs, sweeps and analyses
    analyses     beside experiments: diversity across runs, repeated motifs, global structure
    experiments  gradient ascent, the fooling-class experiments on MNIST and ImageNet
    search       archive, MAP-Elites (ask/tell), encodings, the paper's defaults, evolve()
    runs         run folders, checkpoints, the archive file, tables, images and plots
    classifiers  Classifier, the protocol the search needs, loaders, fast inference, shipped models, data
    core         populations, render, mutation, selection, the CPU/CUDA dispatch, NumPy references
    _core        the compiled C++/CUDA module

This module re-exports the public names.
"""

from __future__ import annotations

import warnings

from fooling_ext._version import __version__
from fooling_ext.analyses import DiversityConfig, RepetitionConfig, StructureConfig, diversity, repetition, structure
from fooling_ext.classifiers import Classifier, ImageScorer, InputSpec, ModelSpec, load_classifier
from fooling_ext.core import (
    CPPNMutation,
    CPPNPopulation,
    DirectMutation,
    DirectPopulation,
    GenomeError,
    Population,
    build_info,
    cuda_available,
    halving_rate,
    mutate_cppn,
    mutate_direct,
    render,
    resolve_backend,
    resolve_device,
    select_parents,
)
from fooling_ext.experiments import GradientConfig, GradientResult, gradient_ascent
from fooling_ext.search import (
    AddResult,
    Archive,
    CPPNEncoding,
    DirectEncoding,
    EvolveConfig,
    EvolveResult,
    MapElites,
    RunInterrupted,
    evolve,
    make_encoding,
    resume,
)
from fooling_ext.sweep import SweepSpec, run_sweep

__all__ = [
    "__version__",
    "AddResult",
    "Archive",
    "CPPNEncoding",
    "CPPNMutation",
    "CPPNPopulation",
    "Classifier",
    "DirectEncoding",
    "DirectMutation",
    "DirectPopulation",
    "DiversityConfig",
    "EvolveConfig",
    "EvolveResult",
    "GenomeError",
    "GradientConfig",
    "GradientResult",
    "ImageScorer",
    "InputSpec",
    "MapElites",
    "ModelSpec",
    "Population",
    "RepetitionConfig",
    "RunInterrupted",
    "StructureConfig",
    "SweepSpec",
    "build_info",
    "cuda_available",
    "diversity",
    "evolve",
    "gradient_ascent",
    "halving_rate",
    "load_classifier",
    "make_encoding",
    "mutate_cppn",
    "mutate_direct",
    "render",
    "repetition",
    "resolve_backend",
    "resolve_device",
    "resume",
    "run_sweep",
    "select_parents",
    "structure",
]

# Names of the direct encoding before it had one word everywhere; they keep working, with a warning.
_RENAMED = {"PixelPopulation": "DirectPopulation", "PixelMutation": "DirectMutation", "mutate_pixels": "mutate_direct"}


def __getattr__(name: str):
    if name in _RENAMED:
        warnings.warn(f"fooling_ext.{name} is now fooling_ext.{_RENAMED[name]}", DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module 'fooling_ext' has no attribute {name!r}")
