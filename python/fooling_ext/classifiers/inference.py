"""Choosing the fastest inference settings that keep a classifier's probabilities right.

Evolution scores hundreds of images per generation, so the classifier dominates a run's time. Reduced
precision (float16 / bfloat16 autocast) and the channels-last memory layout can make a convolutional network
several times faster on a GPU, but they also change its outputs, and a fooling image's fitness *is* its
probability. :func:`choose_inference_settings` therefore measures each candidate on a probe batch of the images
the run will actually score, keeps only the candidates whose probabilities stay within ``tolerance`` (max abs,
default 1e-3) of strict float32, and applies the fastest of those to the classifier.

Candidates: on a GPU, strict float32 / float32 with TF32 / float16 / bfloat16 autocast, each with and without
channels-last; on a CPU, float32 with and without channels-last (reduced-precision autocast on a CPU is slow or
inexact). Beside PyTorch eager, the engines of :mod:`~fooling_ext.classifiers.engines`: ONNX Runtime (its CPU
provider on a CPU, its CUDA provider on a GPU where the installed onnxruntime has one) by default, torch.compile
when asked for (``engines=``): its first compile takes minutes on a CPU (112 s for EfficientNet-Lite0 on 2 cores,
for 1.6x where ONNX Runtime gives 7x), more than a short run saves. An engine that cannot run the model
(export failed, no provider) is a rejected trial with its reason, never an error. Strict float32 means TF32
off: PyTorch lets cuDNN convolutions use TF32 by default on GPUs that have
it, so a :class:`~fooling_ext.classifiers.classifier.Classifier` scores in strict float32 unless its ``tf32``
setting is on, and TF32 is measured here like any other candidate instead of being taken as the reference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from fooling_ext.classifiers.engines import ENGINES, EngineUnavailable, engine_runner
from fooling_ext.classifiers.precision import strict_float32

DEFAULT_TOLERANCE = 1e-3
_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


@dataclass(frozen=True)
class InferenceSettings:
    """How a classifier runs its model: the engine (PyTorch eager, torch.compile, ONNX Runtime), and for
    eager the autocast dtype (float32: no autocast), the memory layout, and for float32 on a GPU whether cuDNN
    convolutions and matrix products may use TF32 (off: strict float32)."""

    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    tf32: bool = False
    engine: str = "eager"

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPE_NAMES:
            raise ValueError(f"dtype must be one of {list(_DTYPE_NAMES.values())}, got {self.dtype}")
        if self.tf32 and self.dtype != torch.float32:
            raise ValueError(f"tf32 applies to float32 only, not to {_DTYPE_NAMES[self.dtype]} autocast")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}, got {self.engine!r}")
        if self.engine == "onnxruntime" and (self.dtype != torch.float32 or self.channels_last or self.tf32):
            raise ValueError("ONNX Runtime runs the exported float32 model: no autocast, layout or TF32 setting")

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> InferenceSettings:
        """The settings :meth:`to_dict` recorded (runs recorded before engines existed ran eager)."""
        dtypes = {name: dtype for dtype, name in _DTYPE_NAMES.items()}
        return cls(
            dtypes[str(values["dtype"])],
            bool(values["channels_last"]),
            bool(values["tf32"]),
            str(values.get("engine", "eager")),
        )

    def describe(self) -> str:
        if self.engine == "onnxruntime":
            return "ONNX Runtime"
        if self.dtype != torch.float32:
            precision = f"{_DTYPE_NAMES[self.dtype]} autocast"
        else:
            precision = "float32 (TF32)" if self.tf32 else "float32"
        layout = f"{precision}, {'channels-last' if self.channels_last else 'contiguous'}"
        return f"torch.compile, {layout}" if self.engine == "compile" else layout

    def to_dict(self) -> dict[str, object]:
        values = {"dtype": _DTYPE_NAMES[self.dtype], "channels_last": self.channels_last, "tf32": self.tf32}
        return values if self.engine == "eager" else {"engine": self.engine, **values}  # eager: as recorded before


@dataclass(frozen=True)
class Trial:
    """One candidate as measured: best seconds per probe batch and its largest probability error; a candidate
    that could not run has NaN for both and the reason."""

    settings: InferenceSettings
    seconds: float
    max_abs_error: float
    accepted: bool
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        def measured(value: float) -> float | None:  # NaN: not measured (JSON has no NaN)
            return value if value == value else None

        return {
            **self.settings.to_dict(),
            "seconds": measured(self.seconds),
            "max_abs_error": measured(self.max_abs_error),
            "accepted": self.accepted,
            **({"reason": self.reason} if self.reason else {}),
        }


@dataclass(frozen=True)
class InferenceChoice:
    """The settings chosen, every trial behind the choice, and the tolerance it was made with; `engine`: the
    chosen engine's version, the exported file's digest and the seconds export and session creation took."""

    settings: InferenceSettings
    trials: tuple[Trial, ...]
    tolerance: float
    probe_batch: int
    engine: dict[str, object] | None = None
    kept_from: str | None = None  # the file of an earlier measurement this choice was kept from (choice_cache)

    def to_dict(self) -> dict[str, object]:
        return {
            "chosen": self.settings.to_dict(),
            "tolerance": self.tolerance,
            "probe_batch": self.probe_batch,
            "engine": self.engine or {"engine": "eager", "version": str(torch.__version__)},
            "trials": [trial.to_dict() for trial in self.trials],
            **({"kept_from": self.kept_from} if self.kept_from else {}),
        }

    def fallbacks(self) -> list[str]:
        """One line per engine tried and not chosen: why the run does not use it."""
        chosen = next((t for t in self.trials if t.settings == self.settings), None)
        lines = []
        for engine in dict.fromkeys(t.settings.engine for t in self.trials):
            if engine == self.settings.engine or engine == "eager":
                continue
            trial = min(
                (t for t in self.trials if t.settings.engine == engine),
                key=lambda t: (not t.accepted, t.seconds if t.seconds == t.seconds else math.inf),
            )
            if trial.reason:
                why = trial.reason
            elif not trial.accepted:
                why = f"result outside tolerance (max |p - p_float32| {trial.max_abs_error:.2e} > {self.tolerance:g})"
            else:
                why = (
                    f"slower ({self.probe_batch / trial.seconds:,.0f} images/s against "
                    f"{self.probe_batch / chosen.seconds:,.0f})"
                    if chosen is not None
                    else "slower"
                )
            lines.append(f"{trial.settings.describe()} not used, PyTorch kept: {why}")
        return lines

    def summary(self) -> str:
        engine = self.engine or {}
        built = ""
        if engine.get("engine") == "onnxruntime":
            built = (
                f"; onnxruntime {engine['version']} {engine['provider']}, {engine['threads']} thread(s), "
                f"onnx {str(engine['onnx_sha256'])[:12]}, export {engine['export_seconds']:.1f} s"
                f"{' (cached)' if not engine['export_seconds'] else ''}, "
                f"session {engine['session_seconds']:.2f} s"
            )
        kept = f"; as measured before, kept in {self.kept_from}" if self.kept_from else ""
        lines = [
            f"inference settings: {self.settings.describe()} (probe batch {self.probe_batch}, "
            f"tolerance {self.tolerance:g}{built}{kept})"
        ]
        for trial in self.trials:
            if trial.reason:
                lines.append(f"  {trial.settings.describe():<30} unavailable: {trial.reason}")
                continue
            if trial.seconds != trial.seconds:  # recorded by the run, checked, not timed
                lines.append(
                    f"  {trial.settings.describe():<30} as recorded  max |p - p_float32| "
                    f"{trial.max_abs_error:.2e}  {'kept' if trial.accepted else 'rejected'}"
                )
                continue
            verdict = "kept" if trial.accepted else "rejected"
            lines.append(
                f"  {trial.settings.describe():<30} {self.probe_batch / trial.seconds:>10,.0f} images/s  "
                f"max |p - p_float32| {trial.max_abs_error:.2e}  {verdict}"
            )
        lines += self.fallbacks()
        return "\n".join(lines)


DEFAULT_ENGINES = ("eager", "onnxruntime")


def candidate_settings(device: torch.device, engines: Sequence[str] = DEFAULT_ENGINES) -> list[InferenceSettings]:
    """The settings worth trying on `device` with `engines`, eager float32 contiguous first."""
    unknown = [engine for engine in engines if engine not in ENGINES]
    if unknown or "eager" not in engines:
        raise ValueError(f"engines must include 'eager' and be among {list(ENGINES)}, got {list(engines)}")
    if device.type != "cuda":
        eager = [InferenceSettings(torch.float32, channels_last) for channels_last in (False, True)]
    else:
        precisions = ((torch.float32, False), (torch.float32, True), (torch.float16, False), (torch.bfloat16, False))
        eager = [
            InferenceSettings(dtype, channels_last, tf32)
            for dtype, tf32 in precisions
            for channels_last in (False, True)
        ]
    compiled = [InferenceSettings(channels_last=True, engine="compile")] if "compile" in engines else []
    onnx = [InferenceSettings(engine="onnxruntime")] if "onnxruntime" in engines else []
    return eager + compiled + onnx


def current_settings(classifier) -> InferenceSettings:
    runner = getattr(classifier, "engine", None)
    if runner is not None and runner.engine == "onnxruntime":
        return InferenceSettings(engine="onnxruntime")
    return InferenceSettings(
        classifier.dtype,
        bool(classifier.channels_last),
        bool(getattr(classifier, "tf32", False)),
        runner.engine if runner is not None else "eager",
    )


def apply_settings(classifier, settings: InferenceSettings):
    """Make `classifier` run with `settings` (in place; returns it). A module's weights follow the layout. An
    engine is built (exported, compiled) for the classifier's model input shape, or taken from this process's
    cache; EngineUnavailable says why it cannot be, and leaves the classifier as it was."""
    runner = None
    if settings.engine != "eager":
        runner = engine_runner(
            settings.engine, classifier.model, tuple(classifier.spec.model_input_shape), classifier.device
        )
    classifier.engine = runner
    classifier.dtype = settings.dtype
    classifier.channels_last = settings.channels_last
    classifier.tf32 = settings.tf32
    if isinstance(classifier.model, nn.Module):
        layout = torch.channels_last if settings.channels_last else torch.contiguous_format
        # torch's stub of Module.to lacks memory_format, which Module.to takes (its documentation).
        classifier.model.to(memory_format=layout)  # type: ignore[call-overload]
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
    engines: Sequence[str] = DEFAULT_ENGINES,
    tolerance: float = DEFAULT_TOLERANCE,
    repeats: int = 3,
) -> InferenceChoice:
    """Measure `candidates` (default: :func:`candidate_settings` for the classifier's device and `engines`) on
    `images`, apply the fastest whose probabilities stay within `tolerance` of strict float32 (eager), and return
    the choice. A candidate whose engine cannot run the model, or fails on the probe batch, is rejected with
    its reason.

    `images`: a probe batch as the run will score them (same size and batch). Each candidate runs once to warm
    up (cuDNN picks its algorithms, caches fill), then `repeats` times; its time is the best of those. When no
    candidate is accepted the classifier keeps the settings it had.
    """
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    device = classifier.device
    candidates = list(candidate_settings(device, engines) if candidates is None else candidates)
    if not candidates:
        raise ValueError("no candidate settings to try")
    original = current_settings(classifier)
    apply_settings(classifier, InferenceSettings())
    with strict_float32(device):
        reference = classifier.probabilities(images)
    trials = []
    for settings in candidates:
        try:
            apply_settings(classifier, settings)
            probabilities = classifier.probabilities(images)  # warm-up, and the values that are checked
        except EngineUnavailable as exc:
            trials.append(Trial(settings, math.nan, math.nan, False, str(exc)))
            continue
        except Exception as exc:  # an engine that fails on real inputs is not used; eager errors are the model's
            if settings.engine == "eager":
                raise
            trials.append(
                Trial(
                    settings,
                    math.nan,
                    math.nan,
                    False,
                    f"failed on the probe batch: {type(exc).__name__}: {str(exc).strip()[:200]}",
                )
            )
            continue
        error = float((probabilities - reference).abs().max())
        seconds = min(_timed(classifier, images) for _ in range(repeats))
        trials.append(Trial(settings, seconds, error, error <= tolerance))
    chosen = pick_fastest(trials, original)
    apply_settings(classifier, chosen)
    return InferenceChoice(chosen, tuple(trials), tolerance, len(images), engine_info(classifier))


def apply_recorded(
    classifier, images: torch.Tensor, recorded: dict[str, object], *, tolerance: float = DEFAULT_TOLERANCE
) -> InferenceChoice:
    """Apply the settings a run recorded (re-exporting as needed), checked on `images` against strict float32
    like a measured candidate; when they cannot be built or leave the tolerance, plain float32 eager, with
    the reason in the returned choice's only trial."""
    settings = InferenceSettings.from_dict(recorded)
    apply_settings(classifier, InferenceSettings())
    with strict_float32(classifier.device):
        reference = classifier.probabilities(images)
    try:
        apply_settings(classifier, settings)
        error = float((classifier.probabilities(images) - reference).abs().max())
        trial = Trial(settings, math.nan, error, error <= tolerance)
    except EngineUnavailable as exc:
        trial = Trial(settings, math.nan, math.nan, False, str(exc))
    if not trial.accepted:
        apply_settings(classifier, InferenceSettings())
    chosen = settings if trial.accepted else InferenceSettings()
    return InferenceChoice(chosen, (trial,), tolerance, len(images), engine_info(classifier))


def engine_info(classifier) -> dict[str, object]:
    """The engine the classifier runs on: its name and version, and for ONNX Runtime the exported file's
    digest and the seconds export and session creation took."""
    runner = getattr(classifier, "engine", None)
    return dict(runner.info) if runner is not None else {"engine": "eager", "version": str(torch.__version__)}


def _timed(classifier, images: torch.Tensor) -> float:
    _synchronize(classifier.device)
    start = time.perf_counter()
    classifier.probabilities(images)
    _synchronize(classifier.device)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
