"""Models of torchvision and timm by name: ``torchvision:NAME`` and ``timm:NAME`` (the optional extras
``[torchvision]`` and ``[timm]``), built with their pretrained weights through the library's own API and cache.
Input size, normalisation and class names come from the library's metadata:

- torchvision: ``torchvision.models.get_model(NAME, weights="DEFAULT")``; the weights
  (``torchvision.models.get_model_weights(NAME).DEFAULT``) give the class names (``meta["categories"]``) and the
  preprocessing (``transforms()``: ``crop_size``, ``mean``, ``std``). Only classification models
  (``torchvision.models.list_models(module=torchvision.models)``).
- timm: ``timm.create_model(NAME, pretrained=True)``; ``model.pretrained_cfg`` gives ``input_size``, ``mean`` and
  ``std``; the class names are ``timm.data.ImageNetInfo(subset).label_descriptions()`` for the ImageNet subset
  ``timm.data.infer_imagenet_subset(model)`` finds from the number of classes, else "0".."K-1".

The libraries look for the weights in their caches and download what is missing there; when they cannot, the
error names the cache. These loaders were tested against stand-ins exposing this API (tests/test_library_models.py),
not against the real libraries.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import torch
from torch import nn

from fooling_ext.classifiers.messages import first_line
from fooling_ext.classifiers.spec import InputSpec

if TYPE_CHECKING:  # typing.TypeGuard is Python 3.10's; annotations are not evaluated at run time
    from typing import TypeGuard

LIBRARIES = ("torchvision", "timm")


def is_library_model(model: Any) -> TypeGuard[str]:
    """Whether `model` names a model of a library: ``torchvision:NAME`` or ``timm:NAME``."""
    return isinstance(model, str) and ":" in model and model.partition(":")[0] in LIBRARIES


def library_model(model: str) -> tuple[nn.Module, InputSpec, list[str], str]:
    """(module with its pretrained weights, input spec, class names, description) of ``LIBRARY:NAME``."""
    library, _, name = model.partition(":")
    if not name:
        raise ValueError(f"{model!r} names no model: write {library}:NAME (e.g. {library}:resnet18)")
    try:
        module = importlib.import_module(library)
        data = importlib.import_module("timm.data") if library == "timm" else None
    except ImportError as exc:
        raise ImportError(
            f'{library} models need the optional extra: pip install "fooling-ext[{library}]" '
            f"(missing module: {exc.name})"
        ) from exc
    if library == "torchvision":
        return _torchvision(module, name)
    return _timm(module, data, name)


def _torchvision(torchvision: Any, name: str) -> tuple[nn.Module, InputSpec, list[str], str]:
    models = torchvision.models
    known = models.list_models(module=models)
    if name not in known:
        raise ValueError(
            f"torchvision has no classification model called {name!r} (there are {len(known)}, listed "
            "by torchvision.models.list_models(module=torchvision.models))"
        )
    weights = models.get_model_weights(name).DEFAULT
    try:
        module = models.get_model(name, weights="DEFAULT")
    except Exception as exc:  # the weights are not in the cache and cannot be downloaded (no network)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
        if cached.is_file():
            raise ValueError(
                f"torchvision:{name}: its weights {cached} do not load: {type(exc).__name__}: {first_line(exc)}"
            ) from exc
        raise FileNotFoundError(
            f"torchvision:{name}: its weights are not in torchvision's cache ({cached}) and "
            f"could not be downloaded: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    preset = weights.transforms()
    height, width = _pair(preset.crop_size)
    channels = len(preset.mean)
    spec = InputSpec(channels, height, width, mean=tuple(preset.mean), std=tuple(preset.std))
    description = f"{name} from torchvision with its default pretrained weights ({weights})"
    return module, spec, [str(c) for c in weights.meta["categories"]], description


def _timm(timm: Any, data: Any, name: str) -> tuple[nn.Module, InputSpec, list[str], str]:
    if not timm.is_model(name):
        raise ValueError(f"timm has no model called {name!r} (timm.list_models() lists them)")
    try:
        module = timm.create_model(name, pretrained=True)
    except Exception as exc:  # the weights are not in the caches and cannot be downloaded (no network)
        raise FileNotFoundError(
            f"timm:{name}: its pretrained weights could not be loaded: timm looks for them in "
            f"the Hugging Face cache ({_hf_cache()}) and torch's "
            f"({Path(torch.hub.get_dir()) / 'checkpoints'}) and downloads what is missing: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from None
    cfg = module.pretrained_cfg
    channels, height, width = (int(n) for n in cfg["input_size"])
    spec = InputSpec(channels, height, width, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))
    subset = data.infer_imagenet_subset(module)
    if subset:
        names = [str(n) for n in data.ImageNetInfo(subset).label_descriptions()]
    else:
        names = [str(k) for k in range(int(module.num_classes))]
    description = f"{name} from timm with its pretrained weights ({cfg.get('tag') or 'default'})"
    return module, spec, names, description


def _pair(size: Any) -> tuple[int, int]:
    """torchvision's crop_size: an int, or a list of one (square) or two sizes."""
    sizes = [int(size)] if isinstance(size, int) else [int(n) for n in size]
    return (sizes[0], sizes[-1])


def _hf_cache() -> str:
    """Where huggingface_hub keeps downloads (timm fetches weights through it)."""
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
        return os.environ.get("HF_HUB_CACHE", os.path.join(home, "hub"))
