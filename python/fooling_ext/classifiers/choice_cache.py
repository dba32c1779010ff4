"""Fast inference on by default: its choice measured once per model and machine, then kept.

Fast inference picks the fastest engine and settings whose probabilities stay within the tolerance of strict
float32, by timing them on the run's probe batch (:func:`~fooling_ext.classifiers.inference.choose_inference_settings`).
Timings move with the machine's load, and engines differ in the last bits of a probability, so a choice made
afresh by every run would let two runs of one seed score with different engines and end in different archives.
So the first run of a model on a machine measures, and keeps its choice in the cache folder (``inference/KEY.json``
beside the exported models' ``onnx/``, see :func:`~fooling_ext.classifiers.engines.cache_dir`); later runs apply
that choice, checked against strict float32 on their own probe batch like a measured candidate (one that fails
the check is measured again). KEY is a digest of the model, its input shape, the probe batch size, the device and
machine, the thread count, the engines tried, the tolerance and the versions of torch and ONNX Runtime. A lock
makes processes that start together (a sweep's workers) wait for one measurement. Deleting the file, or the
folder, measures again.

``FOOLING_FAST_INFERENCE=0`` (or ``--no-fast-inference``, ``fast_inference=False``) turns fast inference off:
plain PyTorch, float32, as the model was given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

from fooling_ext.classifiers.engines import _write_atomically, cache_dir, model_digest, onnxruntime_version
from fooling_ext.classifiers.inference import (
    DEFAULT_ENGINES,
    DEFAULT_TOLERANCE,
    InferenceChoice,
    apply_recorded,
    choose_inference_settings,
)

FAST_INFERENCE_ENV = "FOOLING_FAST_INFERENCE"
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def default_fast_inference() -> bool:
    """Whether fast inference is on when a run does not say: ``$FOOLING_FAST_INFERENCE`` (1/0, true/false,
    yes/no, on/off), else on."""
    value = os.environ.get(FAST_INFERENCE_ENV, "").strip().lower()
    if value in _ON or value == "":
        return True
    if value in _OFF:
        return False
    raise ValueError(
        f"{FAST_INFERENCE_ENV} must be 1 or 0 (true/false, yes/no, on/off), got {os.environ[FAST_INFERENCE_ENV]!r}"
    )


def machine(device: torch.device) -> str:
    """The hardware a timing holds for: the GPU's name, or the CPU's model and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{platform.machine()} {model} x{os.cpu_count()}"


def choice_key(classifier, probe_batch: int, engines: Sequence[str], tolerance: float) -> str:
    parts = [
        model_digest(classifier.model),
        "x".join(map(str, classifier.spec.model_input_shape)),
        str(probe_batch),
        str(classifier.device.type),
        machine(classifier.device),
        str(torch.get_num_threads()),
        ",".join(engines),
        repr(tolerance),
        str(torch.__version__),
        str(onnxruntime_version()),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def choose_once(
    classifier, images: torch.Tensor, *, engines: Sequence[str] = DEFAULT_ENGINES, tolerance: float = DEFAULT_TOLERANCE
) -> InferenceChoice:
    """The inference settings this machine chose for this model and probe batch, applied to `classifier`:
    kept from the first measurement (see the module's docstring), or measured now and kept. The returned
    choice's `kept_from` names the file a kept choice came from."""
    folder = cache_dir() / "inference"
    path = folder / f"{choice_key(classifier, len(images), engines, tolerance)}.json"
    with _locked(folder, path):
        recorded = _read_choice(path)
        if recorded is not None:
            try:
                choice = apply_recorded(classifier, images, recorded, tolerance=tolerance)
            except (KeyError, ValueError, TypeError):  # not settings this version knows: measured again
                choice = None
            if choice is not None and choice.trials[0].accepted:
                return dataclasses.replace(choice, kept_from=str(path))
        choice = choose_inference_settings(classifier, images, engines=engines, tolerance=tolerance)
        with contextlib.suppress(OSError):  # a cache that cannot be written costs a measurement per run, no more
            _write_atomically(
                path,
                json.dumps(
                    {
                        **choice.to_dict(),
                        "machine": machine(classifier.device),
                        "threads": torch.get_num_threads(),
                        "measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    },
                    indent=1,
                ).encode(),
            )
        return choice


def _read_choice(path: Path) -> dict[str, object] | None:
    """The settings a kept choice recorded; None when there is none or the file is not one (measured again)."""
    try:
        chosen = json.loads(path.read_text())["chosen"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return chosen if isinstance(chosen, dict) else None


@contextlib.contextmanager
def _locked(folder: Path, path: Path):
    """An exclusive lock on PATH.lock while a choice is read or measured and written; without a writable
    folder or fcntl, no lock (each process then measures for itself)."""
    try:
        import fcntl

        folder.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_suffix(".lock"), "a")
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock
