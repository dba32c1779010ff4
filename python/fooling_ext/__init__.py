"""fooling_ext: find the images a classifier is most wrong about.

A fast reimplementation of Nguyen, Yosinski & Clune, "Deep Neural Networks are Easily Fooled" (CVPR 2015):
MAP-Elites over CPPN (indirect) and pixel (direct) encodings, gradient ascent, and the fooling-class
experiment, with a compiled C++/CUDA core for rendering and mutating whole populations.
"""

from __future__ import annotations

__version__ = "0.1.0"

from fooling_ext._backend import build_info, cuda_available, resolve_backend
from fooling_ext.archive import AddResult, Archive
from fooling_ext.classifier import Classifier, InputSpec, ModelSpec, load_classifier
from fooling_ext.encodings import CPPNEncoding, DirectEncoding, make_encoding
from fooling_ext.evolve import EvolveConfig, EvolveResult, evolve
from fooling_ext.genome import CPPNPopulation, GenomeError
from fooling_ext.gradient import GradientConfig, GradientResult, gradient_ascent
from fooling_ext.map_elites import MapElites
from fooling_ext.mutation import CPPNMutation, PixelMutation, halving_rate, mutate_cppn, mutate_pixels, select_parents
from fooling_ext.pixels import PixelPopulation
from fooling_ext.render import render

__all__ = [
    "__version__",
    "AddResult",
    "Archive",
    "CPPNEncoding",
    "CPPNMutation",
    "CPPNPopulation",
    "Classifier",
    "DirectEncoding",
    "EvolveConfig",
    "EvolveResult",
    "GenomeError",
    "GradientConfig",
    "GradientResult",
    "InputSpec",
    "MapElites",
    "ModelSpec",
    "PixelMutation",
    "PixelPopulation",
    "build_info",
    "cuda_available",
    "evolve",
    "gradient_ascent",
    "halving_rate",
    "load_classifier",
    "make_encoding",
    "mutate_cppn",
    "mutate_pixels",
    "render",
    "resolve_backend",
    "select_parents",
]
