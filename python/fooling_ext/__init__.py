"""fooling_ext: find the images a classifier is most wrong about.

A fast reimplementation of Nguyen, Yosinski & Clune, "Deep Neural Networks are Easily Fooled" (CVPR 2015):
MAP-Elites over CPPN (indirect) and pixel (direct) encodings, gradient ascent, and the fooling-class
experiment, with a compiled C++/CUDA core for rendering and mutating whole populations.

Submodules are imported on first use, so ``import fooling_ext`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "build_info": "_backend",
    "resolve_backend": "_backend",
    "CPPNPopulation": "genome",
    "GenomeError": "genome",
    "render": "render",
    "Classifier": "classifier",
    "InputSpec": "classifier",
    "load_classifier": "classifier",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fooling_ext' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"fooling_ext.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = ["__version__", *_EXPORTS]
