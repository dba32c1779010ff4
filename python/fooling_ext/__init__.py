"""fooling_ext: find the images a classifier is most wrong about.

A fast reimplementation of Nguyen, Yosinski & Clune, "Deep Neural Networks are Easily Fooled" (CVPR 2015):
MAP-Elites over CPPN (indirect) and direct (pixel) encodings, gradient ascent, and the fooling-class
experiment, with a compiled C++/CUDA core for rendering and mutating whole populations.

The package is layered (docs/architecture.md); each layer imports only those below it:

    cli          the ``fooling`` command: every argparse line
    sweep        many runs as Ray tasks (Ray imported only when a sweep runs)
    gallery      beside sweep: a static HTML site of runs, sweeps and analyses
    analyses     beside experiments: diversity across runs, repeated motifs, global structure, transfer
    experiments  gradient ascent, the fooling-class experiments on MNIST and ImageNet
    search       archive, MAP-Elites (ask/tell), encodings, the paper's defaults, evolve()
    runs         run folders, checkpoints, the archive file, tables, images and plots
    classifiers  Classifier, the protocol the search needs, loaders, fast inference, shipped models, data
    core         populations, render, mutation, selection, the CPU/CUDA dispatch, NumPy references
    _core        the compiled C++/CUDA module

This module re-exports the public names, each imported when first used.
"""

from __future__ import annotations

import importlib
import warnings

from fooling_ext._version import __version__

# The public names and the module of each, imported on first use: `import fooling_ext` (and the `fooling`
# command, which imports it first) stays free of torch until a name that needs it is used.
_EXPORTS = {
    "fooling_ext.analyses": (
        "DiversityConfig",
        "RepetitionConfig",
        "StructureConfig",
        "TransferConfig",
        "diversity",
        "repetition",
        "structure",
        "transfer",
    ),
    "fooling_ext.classifiers": (
        "Classifier",
        "CombinedClassifier",
        "ImageScorer",
        "InputSpec",
        "ModelSpec",
        "load_classifier",
    ),
    "fooling_ext.core": (
        "CPPNMutation",
        "CPPNPopulation",
        "DirectMutation",
        "DirectPopulation",
        "GenomeError",
        "Population",
        "build_info",
        "cuda_available",
        "halving_rate",
        "mutate_cppn",
        "mutate_direct",
        "render",
        "resolve_backend",
        "resolve_device",
        "select_parents",
    ),
    "fooling_ext.experiments": ("GradientConfig", "GradientResult", "gradient_ascent"),
    "fooling_ext.search": (
        "AddResult",
        "Archive",
        "CPPNEncoding",
        "DirectEncoding",
        "EvolveConfig",
        "EvolveResult",
        "MapElites",
        "RunInterrupted",
        "evolve",
        "make_encoding",
        "pack_run",
        "resume",
        "unpack_run",
    ),
    "fooling_ext.sweep": ("SweepSpec", "run_sweep"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "__version__",
    "AddResult",
    "Archive",
    "CPPNEncoding",
    "CPPNMutation",
    "CPPNPopulation",
    "Classifier",
    "CombinedClassifier",
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
    "TransferConfig",
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
    "pack_run",
    "render",
    "repetition",
    "resolve_backend",
    "resolve_device",
    "resume",
    "run_sweep",
    "select_parents",
    "structure",
    "transfer",
    "unpack_run",
]

# Names of the direct encoding before it had one word everywhere; they keep working, with a warning.
_RENAMED = {"PixelPopulation": "DirectPopulation", "PixelMutation": "DirectMutation", "mutate_pixels": "mutate_direct"}


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
        globals()[name] = value  # once imported, an ordinary attribute
        return value
    if name in _RENAMED:
        warnings.warn(f"fooling_ext.{name} is now fooling_ext.{_RENAMED[name]}", DeprecationWarning, stacklevel=2)
        return __getattr__(_RENAMED[name])
    raise AttributeError(f"module 'fooling_ext' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
