"""The Classifier: a model plus its input spec; images in [0, 1] in, class probabilities out.

Every experiment scores images through a :class:`Classifier`: the fitness of an image for class j is the
probability the classifier gives class j. It wraps a callable model (an ``nn.Module``, a ``torch.export``
program, or a TorchScript module) together with an :class:`~fooling_ext.classifiers.spec.InputSpec` that says
what the model expects: channels and size, how [0, 1] maps to its input (scale, mean, std), whether it returns
logits or probabilities, whether to resize, and whether to average over the paper's 10 crops.

Non-finite model outputs never become a fitness: such rows are counted in ``nonfinite_count``, replaced by all-zero
probabilities (no confidence in any class), and reported by one ``RuntimeWarning`` per classifier.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fooling_ext.classifiers.engines import torch_threads_around
from fooling_ext.classifiers.messages import first_line, format_shape
from fooling_ext.classifiers.precision import float32_precision
from fooling_ext.classifiers.spec import InputSpec
from fooling_ext.core.backend import resolve_device

ImageBatch = torch.Tensor | np.ndarray

DEFAULT_MAX_BATCH = 256
RANGE_TOLERANCE = 1e-6
# How far a probability row may sum from 1 and still count as a probability distribution.
_SUM_TOLERANCE = 1e-3
_FAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class Classifier:
    """A model plus its :class:`InputSpec`: images in [0, 1] -> class probabilities [B, K].

    ``probabilities`` is the fitness path (no autograd, chunks of at most ``max_batch`` model inputs, so memory
    stays bounded for any population size); ``differentiable_probabilities`` and ``log_probabilities`` keep the
    graph for gradient ascent. Results stay on the classifier's ``device``; images may come from any device, or
    as NumPy arrays.

    ``name`` labels the model in messages and reports; ``description`` says in a sentence what it is (for the
    built-in ImageNet model: that it stands in for the paper's CaffeNet), for reports to print. ``source`` is
    the built-in name or the file :func:`~fooling_ext.classifiers.loading.load_classifier` loaded the model
    from, None for a model given in memory (a run records it as its model).

    At construction a blank image is run through the model to learn the number of classes and to check the
    output's shape against ``class_names``. An ``nn.Module`` is switched to eval mode and moved to ``device``
    (the caller's module object itself, as ``nn.Module.to`` does). ``channels_last`` (which converts the module's
    weights) and a ``dtype`` of float16 or bfloat16 (autocast) are optional speed-ups; channels-last also speeds
    up convolutional networks such as EfficientNet on CPUs. On a GPU, float32 means strict IEEE float32 (no TF32
    in cuDNN convolutions and CUDA matrix products, whatever PyTorch's global flags say) unless ``tf32`` is set,
    which :func:`~fooling_ext.classifiers.inference.choose_inference_settings` does only when TF32 keeps the
    probabilities within its tolerance.
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
        tf32: bool = False,
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
        self.source: str | None = None
        self.max_batch = max_batch
        self.channels_last = channels_last
        self.dtype = dtype
        self.tf32 = bool(tf32)
        self.engine = None  # an EngineRunner (fooling_ext.classifiers.engines) for probabilities(); None: PyTorch
        self.nonfinite_count = 0
        self._warned_nonfinite = False
        self._model = model
        if isinstance(model, nn.Module):
            with contextlib.suppress(NotImplementedError):  # exported programs keep the mode they were exported in
                model.eval()
        self.to(device)

        probe = self._run_model(torch.zeros((1, *spec.model_input_shape), device=self.device), probe=True)
        self._model_classes = probe.shape[1]
        self.num_classes = self._model_classes  # the classes scored: all, unless leading_classes says fewer
        if class_names is None:
            class_names = [str(label) for label in range(self.num_classes)]
        self.class_names = [str(class_name) for class_name in class_names]
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: the model returns {self.num_classes} classes but {len(self.class_names)} class names "
                "were given"
            )
        if not bool(torch.isfinite(probe).all()):
            noise = torch.rand((2, *spec.model_input_shape), generator=torch.Generator().manual_seed(0))
            if not bool(torch.isfinite(self._run_model(noise.to(self.device), probe=True)).all()):
                raise ValueError(
                    f"{self.name}: the model returned NaN or Inf for a blank image and for random "
                    "images; a classifier must return finite scores"
                )
        self._check_output_kind(probe)

    def with_spec(self, spec: InputSpec) -> Classifier:
        """The same model and settings scoring images as `spec` says (e.g. resized, or cropped from a larger
        render). Shares the model; the preprocessing follows the new spec. A spec whose model input differs
        from this one's is checked on a blank image, as at construction."""
        if not isinstance(spec, InputSpec):
            raise TypeError(f"spec must be an InputSpec, got {type(spec).__name__}")
        if spec.channels != self.spec.channels:
            raise ValueError(f"{self.name} takes {self.spec.channels} channel(s), not {spec.channels}")
        other = copy.copy(self)
        other.spec = spec
        other.to(self.device)
        if spec.model_input_shape != self.spec.model_input_shape:
            other._run_model(torch.zeros((1, *spec.model_input_shape), device=self.device), probe=True)
        return other

    def leading_classes(self, count: int) -> Classifier:
        """The same classifier scoring only its first `count` classes: their probabilities are columns
        [:count] of the full softmax, so probability the model gives the other classes counts for none of
        them (the fooling-class experiments score digits, or ImageNet classes, this way). Shares the model."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= self.num_classes:
            raise ValueError(f"count must be an int in [1, {self.num_classes}], got {count!r}")
        other = copy.copy(self)
        other.num_classes = count
        other.class_names = self.class_names[:count]
        return other

    @property
    def model(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The wrapped model, called with preprocessed inputs of shape [N, *spec.model_input_shape]."""
        return self._model

    def to(self, device: str | torch.device) -> Classifier:
        """Move the model (if it is a module) and the preprocessing constants to ``device``; returns self."""
        self.device = resolve_device(device, core=False)
        if isinstance(self._model, nn.Module):
            self._model.to(self.device)
            if self.channels_last:
                # torch's stub of Module.to lacks memory_format, which Module.to takes (its documentation).
                self._model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        shape = (1, self.spec.channels, 1, 1)
        self._mean = torch.tensor(self.spec.mean, device=self.device).view(shape)
        self._std = torch.tensor(self.spec.std, device=self.device).view(shape)
        return self

    def probabilities(self, images: ImageBatch) -> torch.Tensor:
        """Class probabilities [B, K] (float32, on ``device``) of images [B, C, H, W] in [0, 1], without autograd."""
        per_chunk = max(1, self.max_batch // (10 if self.spec.crops is not None else 1))
        with torch_threads_around(self.engine, per_chunk * math.prod(tuple(getattr(images, "shape", ()))[1:])):
            images = self._validated(images)
            batch = len(images)
            result = torch.empty((batch, self._model_classes), dtype=torch.float32, device=self.device)
            with torch.inference_mode():
                for start in range(0, batch, per_chunk):
                    result[start : start + per_chunk] = self._probabilities(
                        images[start : start + per_chunk], fast=True
                    )
            return self._scored(self._without_nonfinite(result))

    def differentiable_probabilities(self, images: ImageBatch) -> torch.Tensor:
        """Class probabilities [B, K] that keep the autograd graph back to ``images``, in one batch.

        For gradient ascent: give images with ``requires_grad=True`` and differentiate the result (prefer
        ``torch.autograd.grad`` over ``backward`` to keep gradients out of the model's parameters).
        """
        images = self._validated(images)
        probabilities = self._probabilities(images)
        self._check_differentiable(images, probabilities)
        return self._scored(self._without_nonfinite(probabilities))

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
        return self._scored(log_probabilities)

    def predict(self, images: ImageBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The most probable class of each image and its probability: (labels int64 [B], confidences [B])."""
        confidences, labels = self.probabilities(images).max(dim=1)
        return labels, confidences

    def features(self, images: ImageBatch) -> torch.Tensor:
        """Penultimate-layer activations [B, D] (float32, on ``device``) of images in [0, 1], without autograd:
        what the model's last linear layer reads (with 10 crops: their mean). A model may define
        ``penultimate(inputs)`` returning them itself; otherwise the input of its last ``nn.Linear`` module
        (in registration order) is caught with a forward pre-hook. Models without either (exported programs,
        TorchScript files) raise ValueError."""
        images = self._validated(images)
        extract = self._feature_extractor()
        crops = 10 if self.spec.crops is not None else 1
        per_chunk = max(1, self.max_batch // crops)
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), per_chunk):
                values = extract(self._preprocessed(images[start : start + per_chunk])).float().flatten(1)
                chunks.append(values.view(-1, crops, values.shape[1]).mean(dim=1))
        return torch.cat(chunks)

    def _feature_extractor(self) -> Callable[[torch.Tensor], torch.Tensor]:
        own = getattr(self._model, "penultimate", None)
        if callable(own):
            return own
        last = None
        if isinstance(self._model, nn.Module) and not isinstance(self._model, torch.jit.ScriptModule):
            last = next((m for m in reversed(list(self._model.modules())) if isinstance(m, nn.Linear)), None)
        if last is None:
            raise ValueError(
                f"{self.name}: no penultimate layer to read (no nn.Linear module and no penultimate(inputs) method)"
            )

        def extract(inputs: torch.Tensor) -> torch.Tensor:
            seen: list[torch.Tensor] = []
            handle = last.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
            try:
                self._run_model(inputs)
            finally:
                handle.remove()
            return seen[-1]

        return extract

    def __call__(self, images: ImageBatch) -> torch.Tensor:
        return self.probabilities(images)

    def __repr__(self) -> str:
        return (
            f"Classifier(name={self.name!r}, classes={self.num_classes}, input={self.spec.describe()}, "
            f"output={self.spec.output!r}, device={str(self.device)!r})"
        )

    def _scored(self, values: torch.Tensor) -> torch.Tensor:
        """The columns of the scored classes (all, unless :meth:`leading_classes` chose fewer)."""
        return values if self.num_classes == self._model_classes else values[:, : self.num_classes]

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

    def _probabilities(self, images: torch.Tensor, *, fast: bool = False) -> torch.Tensor:
        """fast: on the classifier's engine where it has one (no autograd there); else the PyTorch model."""
        scores = self._model_scores(self._preprocessed(images), fast=fast)
        probabilities = torch.softmax(scores, dim=1) if self.spec.output == "logits" else scores
        if self.spec.crops is not None:
            probabilities = probabilities.view(len(images), 10, self._model_classes).mean(dim=1)
        return probabilities

    def _model_scores(self, inputs: torch.Tensor, *, fast: bool = False) -> torch.Tensor:
        scores = self._run_model(inputs, fast=fast)
        if scores.shape[1] != self._model_classes:
            raise ValueError(
                f"{self.name}: model output has {scores.shape[1]} classes, but the classifier has "
                f"{self._model_classes} class names"
            )
        return scores

    def _run_model(self, inputs: torch.Tensor, *, probe: bool = False, fast: bool = False) -> torch.Tensor:
        """Call the model (with `fast`, on the engine built for this input shape, where there is one) and check
        that it returned a [N, K] tensor; float32 whatever the autocast dtype."""
        engine = self.engine if fast and self.engine is not None else None
        if engine is not None and not engine.current_for(self._model):
            warnings.warn(
                f"{self.name}: the model's weights changed since its {engine.engine} engine was built; "
                "it scores with PyTorch from now on",
                RuntimeWarning,
                stacklevel=2,
            )
            self.engine = engine = None
        if engine is not None and tuple(inputs.shape[1:]) == engine.input_shape:
            if self.channels_last:  # torch.compile of a channels-last module
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            return self._checked_output(engine(inputs), inputs)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        autocast: contextlib.AbstractContextManager[Any]
        if self.dtype != torch.float32:
            autocast = torch.autocast(device_type=self.device.type, dtype=self.dtype)
        elif self.device.type == "cuda":
            autocast = float32_precision(self.device, tf32=self.tf32)
        else:
            autocast = contextlib.nullcontext()
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
            expected = exported_input_shape(self._model)
            hint = f"; it was exported for inputs of shape {format_shape(expected)}" if expected else ""
            raise ValueError(
                f"{self.name}: the model rejected input of shape {format_shape(inputs.shape)} (made from the input "
                f"spec {self.spec.describe()}{hint}): {type(exc).__name__}: {first_line(exc)}"
            ) from exc
        return self._checked_output(output, inputs)

    def _checked_output(self, output: Any, inputs: torch.Tensor) -> torch.Tensor:
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


def exported_input_shape(model: Any) -> list[int | None] | None:
    """The input shape a torch.export program was exported for (None where the size is free), if it is one."""
    if not isinstance(model, torch.fx.GraphModule):
        return None
    for node in model.graph.nodes:
        value = node.meta.get("val") if node.op == "placeholder" else None
        if isinstance(value, torch.Tensor):
            return [size if isinstance(size, int) else None for size in value.shape]
    return None
