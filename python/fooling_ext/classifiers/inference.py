"""Choosing the fastest inference settings that keep a classifier's probabilities right.

Evolution scores hundreds of images per generation, so the classifier dominates a run's time. Reduced
precision (float16 / bfloat16 autocast) and the channels-last memory layout can make a convolutional network
several times faster on a GPU, but they also change its outputs, and a fooling image's fitness *is* its
probability. :func:`choose_inference_settings` therefore measures each candidate on a probe batch of the images
the run will actually score, keeps only the candidates whose probabilities stay within ``tolerance`` (max abs,
default 1e-3) of strict float32, and applies the fastest of those to the classifier.

Candidates: on a GPU, strict float32 / float32 with TF32 / float16 / bfloat16 autocast, each with and without
channels-last; on a CPU, float32 with and without channels-last (reduced-precision autocast on a CPU is slow or
inexact). Strict float32 means TF32 off: PyTorch lets cuDNN convolutions use TF32 by default on GPUs that have
it, so a :class:`~fooling_ext.classifiers.classifier.Classifier` scores in strict float32 unless its ``tf32``
setting is on, and TF32 is measured here like any other candidate instead of being taken as the reference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from fooling_ext.classifiers.precision import strict_float32

DEFAULT_TOLERANCE = 1e-3
_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


@dataclass(frozen=True)
class InferenceSettings:
    """How a classifier runs its model: the autocast dtype (float32: no autocast), the memory layout, and
    for float32 on a GPU whether cuDNN convolutions and matrix products may use TF32 (off: strict float32)."""

    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    tf32: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPE_NAMES:
            raise ValueError(f"dtype must be one of {list(_DTYPE_NAMES.values())}, got {self.dtype}")
        if self.tf32 and self.dtype != torch.float32:
            raise ValueError(f"tf32 applies to float32 only, not to {_DTYPE_NAMES[self.dtype]} autocast")

    def describe(self) -> str:
        if self.dtype != torch.float32:
            precision = f"{_DTYPE_NAMES[self.dtype]} autocast"
        else:
            precision = "float32 (TF32)" if self.tf32 else "float32"
        return f"{precision}, {'channels-last' if self.channels_last else 'contiguous'}"

    def to_dict(self) -> dict[str, object]:
        return {"dtype": _DTYPE_NAMES[self.dtype], "channels_last": self.channels_last, "tf32": self.tf32}


@dataclass(frozen=True)
class Trial:
    """One candidate as measured: best seconds per probe batch and its largest probability error."""

    settings: InferenceSettings
    seconds: float
    max_abs_error: float
    accepted: bool

    def to_dict(self) -> dict[str, object]:
        return {**self.settings.to_dict(), "seconds": self.seconds, "max_abs_error": self.max_abs_error,
                "accepted": self.accepted}


@dataclass(frozen=True)
class InferenceChoice:
    """The settings chosen, every trial behind the choice, and the tolerance it was made with."""

    settings: InferenceSettings
    trials: tuple[Trial, ...]
    tolerance: float
    probe_batch: int

    def to_dict(self) -> dict[str, object]:
        return {"chosen": self.settings.to_dict(), "tolerance": self.tolerance, "probe_batch": self.probe_batch,
                "trials": [trial.to_dict() for trial in self.trials]}

    def summary(self) -> str:
        lines = [f"inference settings: {self.settings.describe()} (probe batch {self.probe_batch}, "
                 f"tolerance {self.tolerance:g})"]
        for trial in self.trials:
            verdict = "kept" if trial.accepted else "rejected"
            lines.append(f"  {trial.settings.describe():<30} {self.probe_batch / trial.seconds:>10,.0f} images/s  "
                         f"max |p - p_float32| {trial.max_abs_error:.2e}  {verdict}")
        return "\n".join(lines)


def candidate_settings(device: torch.device) -> list[InferenceSettings]:
    """The settings worth trying on `device`, float32 contiguous first."""
    if device.type != "cuda":
        return [InferenceSettings(torch.float32, channels_last) for channels_last in (False, True)]
    precisions = ((torch.float32, False), (torch.float32, True), (torch.float16, False), (torch.bfloat16, False))
    return [InferenceSettings(dtype, channels_last, tf32) for dtype, tf32 in precisions
            for channels_last in (False, True)]


def current_settings(classifier) -> InferenceSettings:
    return InferenceSettings(classifier.dtype, bool(classifier.channels_last), bool(getattr(classifier, "tf32", False)))


def apply_settings(classifier, settings: InferenceSettings):
    """Make `classifier` run with `settings` (in place; returns it). A module's weights follow the layout."""
    classifier.dtype = settings.dtype
    classifier.channels_last = settings.channels_last
    classifier.tf32 = settings.tf32
    if isinstance(classifier.model, nn.Module):
        layout = torch.channels_last if settings.channels_last else torch.contiguous_format
        classifier.model.to(memory_format=layout)
    return classifier


def pick_fastest(trials: Sequence[Trial], fallback: InferenceSettings) -> InferenceSettings:
    """The fastest accepted trial's settings; `fallback` when none was accepted."""
    accepted = [trial for trial in trials if trial.accepted]
    if not accepted:
        return fallback
    return min(accepted, key=lambda trial: trial.seconds).settings


def choose_inference_settings(
    classifier,
    images: torch.Tensor,
    *,
    candidates: Sequence[InferenceSettings] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    repeats: int = 3,
) -> InferenceChoice:
    """Measure `candidates` (default: :func:`candidate_settings` for the classifier's device) on `images`,
    apply the fastest whose probabilities stay within `tolerance` of strict float32, and return the choice.

    `images`: a probe batch as the run will score them (same size and batch). Each candidate runs once to warm
    up (cuDNN picks its algorithms, caches fill), then `repeats` times; its time is the best of those. When no
    candidate is accepted the classifier keeps the settings it had.
    """
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    device = classifier.device
    candidates = list(candidate_settings(device) if candidates is None else candidates)
    if not candidates:
        raise ValueError("no candidate settings to try")
    original = current_settings(classifier)
    apply_settings(classifier, InferenceSettings())
    with strict_float32(device):
        reference = classifier.probabilities(images)
    trials = []
    for settings in candidates:
        apply_settings(classifier, settings)
        probabilities = classifier.probabilities(images)  # warm-up, and the values that are checked
        error = float((probabilities - reference).abs().max())
        seconds = min(_timed(classifier, images) for _ in range(repeats))
        trials.append(Trial(settings, seconds, error, error <= tolerance))
    chosen = pick_fastest(trials, original)
    apply_settings(classifier, chosen)
    return InferenceChoice(chosen, tuple(trials), tolerance, len(images))


def _timed(classifier, images: torch.Tensor) -> float:
    _synchronize(classifier.device)
    start = time.perf_counter()
    classifier.probabilities(images)
    _synchronize(classifier.device)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
