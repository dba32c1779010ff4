"""What an analysis reads: finished run folders (or the done runs of a sweep folder), and the classifier each
run was scored with, rebuilt from its config.json; scoring in batches on the run's device."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fooling_ext.classifiers.choice_cache import default_fast_inference
from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.inference import apply_recorded
from fooling_ext.classifiers.library import is_library_model
from fooling_ext.classifiers.loading import BUILTIN_MODELS, CUSTOM_MODEL, load_classifier
from fooling_ext.classifiers.protocol import ImageScorer
from fooling_ext.classifiers.spec import InputSpec
from fooling_ext.core.backend import resolve_device
from fooling_ext.runs.archive_file import read_archive
from fooling_ext.runs.folder import RunFolder, RunFolderError
from fooling_ext.search.config import upgrade_recorded_config
from fooling_ext.search.models import PROBE_LIMIT, recorded_classifier

SCORE_BATCH = 256  # images per call to the classifier
DONE = "done"


@dataclass
class RunData:
    """A finished run: its folder, configuration and, per cell, the elite's image (uint8 [C, H, W]) and the
    confidence the run recorded (0 for empty cells)."""

    path: Path
    config: dict[str, Any]
    class_names: list[str]
    images: np.ndarray
    confidence: np.ndarray
    occupied: np.ndarray

    def __repr__(self) -> str:
        return (
            f"RunData({self.path}: {self.model} / {self.encoding}, {len(self.class_names)} classes, "
            f"{int(self.occupied.sum())} occupied)"
        )

    @property
    def model(self) -> str:
        return str(self.config.get("classifier", {}).get("name", self.config.get("run", {}).get("model", "?")))

    @property
    def encoding(self) -> str:
        return str(self.config.get("run", {}).get("encoding", self.config.get("encoding", {}).get("encoding", "?")))

    @property
    def seed(self) -> Any:
        return self.config.get("run", {}).get("seed")

    @property
    def label(self) -> str:
        return f"seed {self.seed}" if self.seed is not None else self.path.name

    def cells(self, top: int | None = None, min_confidence: float | None = None) -> np.ndarray:
        """The occupied cells (in class order); with `min_confidence`, only those whose recorded confidence is
        >= it (a ValueError naming the threshold and the run's best when none is); then with `top`, only the
        `top` most confident of those."""
        return self.selection(top, min_confidence)[0]

    def selection(self, top: int | None = None, min_confidence: float | None = None) -> tuple[np.ndarray, str]:
        """:meth:`cells` and which classes they are in words, as the reports give it ("classes >= 90% in the
        run: 209 of 1000")."""
        cells = np.flatnonzero(self.occupied)
        if min_confidence is not None:
            cells = cells[at_least(self.confidence[cells], min_confidence)]
            if not len(cells):
                best = int(np.argmax(np.where(self.occupied, self.confidence, -1.0)))
                raise ValueError(
                    f"no class of {self.path} has an elite >= the minimum confidence "
                    f"{threshold_text(min_confidence)}: its best is "
                    f"{confidence_text(self.confidence[best], min_confidence)} ({self.class_text(best)})"
                )
        passing = len(cells)
        if top is not None and top < len(cells):
            cells = np.sort(cells[np.argsort(-self.confidence[cells], kind="stable")[:top]])
        return cells, selection_text(len(cells), passing, len(self.occupied), min_confidence)

    def class_text(self, cell: int) -> str:
        """A class as the messages name it: "class 3, 'cat'"."""
        name = self.class_names[cell] if cell < len(self.class_names) else str(cell)
        return f"class {cell}, {name!r}"

    def float_images(self, cells: Sequence[int] | np.ndarray) -> torch.Tensor:
        """The elites of `cells` as float32 [N, C, H, W] in [0, 1]."""
        return torch.from_numpy(self.images[np.asarray(cells, dtype=np.int64)]).float().div_(255.0)


def at_least(confidence: np.ndarray | float, threshold: float) -> np.ndarray:
    """Where a recorded confidence is >= `threshold`, compared as the archive records it (float32), so that an
    elite recorded as 0.9 passes 0.9."""
    return np.asarray(confidence, dtype=np.float32) >= np.float32(threshold)


def threshold_text(threshold: float) -> str:
    """A threshold in percent as the reports give it: 0.9 -> "90%", 0.999 -> "99.9%"."""
    return f"{100 * threshold:g}%"


def confidence_text(confidence: float, threshold: float) -> str:
    """A confidence in percent beside a threshold, with the digits that show it below the threshold when it is
    (89.99%, not 90.00%, beside 90%)."""
    for digits in range(2, 9):
        text = f"{100 * confidence:.{digits}f}"
        if bool(at_least(confidence, threshold)) or float(text) < 100 * threshold:
            return f"{text}%"
    return f"{100 * confidence!r}%"


def selection_text(
    analysed: int, passing: int, total: int, min_confidence: float | None, *, every_run: bool = False
) -> str:
    """Which classes an analysis took, in words: "classes >= 90% in the run: 209 of 1000", "the 100 most
    confident of the 209 classes >= 90% in the run: 100 of 1000", "classes with an elite in the run: 10 of 10".
    `passing`: the classes before --top chose among them; `every_run`: a diversity analysis (a class must pass
    in every run, and --top ranks by the mean confidence over the runs)."""
    where = "in every run" if every_run else "in the run"
    pool = "classes with an elite" if min_confidence is None else f"classes >= {threshold_text(min_confidence)}"
    if analysed < passing:
        ranked = "with the highest mean confidence" if every_run else "most confident"
        return f"the {analysed} {ranked} of the {passing} {pool} {where}: {analysed} of {total}"
    return f"{pool} {where}: {analysed} of {total}"


def load_run(path: str | os.PathLike) -> RunData:
    """A finished run folder (config.json and archive.npz); errors name the folder and what is missing."""
    folder = RunFolder(path)
    if not folder.path.exists():
        raise FileNotFoundError(f"no run folder at {folder.path}")
    if not folder.path.is_dir():
        raise ValueError(f"{folder.path} is not a folder")
    if not folder.config_path.is_file():
        raise ValueError(f"{folder.path} is not a run folder (no config.json)")
    if not folder.archive_path.is_file():
        raise ValueError(f"{folder.path} holds no finished run (no archive.npz; finish or resume it first)")
    try:
        config = upgrade_recorded_config(folder.read_config())
    except RunFolderError as exc:
        raise ValueError(str(exc)) from exc
    meta, arrays = read_archive(folder.archive_path, ("images", "confidence", "occupied"))
    names = [str(name) for name in meta.get("class_names", config.get("classifier", {}).get("class_names", []))]
    occupied = arrays["occupied"].astype(bool)
    if not occupied.any():
        raise ValueError(f"{folder.path}: the archive has no elite")
    confidence = np.where(occupied, arrays["confidence"], 0.0).astype(np.float64)
    return RunData(folder.path, config, names, arrays["images"], confidence, occupied)


def is_sweep(path: str | os.PathLike) -> bool:
    return (Path(path) / "sweep.json").is_file()


def sweep_runs(path: str | os.PathLike) -> list[Path]:
    """The folders of a sweep's done runs, in the sweep's order."""
    path = Path(path)
    try:
        data = json.loads((path / "sweep.json").read_text())
    except (OSError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise ValueError(f"cannot read {path / 'sweep.json'}: {exc}") from exc
    entries = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path / 'sweep.json'} lists no runs")
    folders = [
        path / str(entry.get("folder", Path("runs", str(entry.get("name", "")))))
        for entry in entries
        if isinstance(entry, dict) and entry.get("status") == DONE
    ]
    if not folders:
        raise ValueError(f"the sweep {path} has no done run")
    return folders


def expand_runs(paths: Sequence[str | os.PathLike]) -> list[RunData]:
    """Run folders as given, a sweep folder standing for its done runs; the same folder twice is an error."""
    runs: list[RunData] = []
    seen: dict[Path, str] = {}
    for given in paths:
        for folder in sweep_runs(given) if is_sweep(given) else [Path(given)]:
            key = Path(folder).resolve()
            if key in seen:
                raise ValueError(f"{folder} is given twice (also as {seen[key]})")
            seen[key] = str(folder)
            runs.append(load_run(folder))
    return runs


def group_key(run: RunData) -> tuple[str, str]:
    """What runs must share to be compared: the model and the encoding."""
    return run.model, run.encoding


def group_runs(runs: Sequence[RunData]) -> dict[tuple[str, str], list[RunData]]:
    groups: dict[tuple[str, str], list[RunData]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    return groups


def run_classifier(
    run: RunData,
    *,
    model: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    fast_inference: bool | None = None,
) -> ImageScorer:
    """The classifier the run scored its renders with: the recorded model (or `model`, where it moved), its
    recorded input spec (already adapted to the render size) and class names, on `device` (default: the run's
    backend). The recorded model is loaded only when it is built in or a file inside the run folder that runs
    no code (load_classifier's confine_to); `model` is the caller's choice. A run against several models is
    scored by all of them combined, as it was evolved (search.models.recorded_classifier).

    With fast inference (`fast_inference`, default on unless ``$FOOLING_FAST_INFERENCE`` says 0) it scores with
    the engine and settings the run recorded, checked on the run's elites against strict float32 (plain
    PyTorch when the check fails), so an analysis scores an elite as the run did."""
    classifier = _recorded_classifier(run, model, device)
    fast = default_fast_inference() if fast_inference is None else fast_inference
    recorded = (run.config.get("inference") or {}).get("chosen")
    if fast and recorded and isinstance(classifier, Classifier) and run.occupied.any():
        elites = torch.from_numpy(run.images[run.occupied][:PROBE_LIMIT]).float().div_(255)
        trial = apply_recorded(classifier, elites.to(classifier.device), recorded).trials[0]
        if not trial.accepted:
            why = trial.reason or f"result outside tolerance (max |p - p_float32| {trial.max_abs_error:.2e})"
            print(
                f"{trial.settings.describe()}, as {run.path} recorded, not used, PyTorch kept: {why}", file=sys.stderr
            )
    return classifier


def _recorded_classifier(run: RunData, model, device) -> ImageScorer:
    recorded = run.config.get("classifier", {})
    source = model if model is not None else run.config.get("run", {}).get("model")
    if source is None or "spec" not in recorded:
        raise ValueError(f"{run.path}/config.json does not say which classifier the run used")
    device = resolve_device(device if device is not None else run.config.get("run", {}).get("backend", "auto"))
    if run.config.get("run", {}).get("models") is not None:  # several models: scored combined, as the run was
        return recorded_classifier(run.config, device, model=None if model is None else [str(model)], folder=run.path)
    source = str(source)
    if model is None and source == CUSTOM_MODEL:
        raise ValueError(
            f"{run.path} was made with a classifier given in memory "
            f"({recorded.get('description')}): pass model=PATH, a file of the same model"
        )
    if source not in BUILTIN_MODELS and not is_library_model(source) and not Path(source).exists():
        raise FileNotFoundError(f"the model of {run.path} ({source}) is not there any more; pass --model")
    return load_classifier(
        source,
        spec=InputSpec(**recorded["spec"]),
        class_names=run.class_names,
        device=device,
        confine_to=run.path if model is None else None,
    )


def class_confidence(
    classifier: ImageScorer, images: torch.Tensor, classes: np.ndarray | Sequence[int], batch: int = SCORE_BATCH
) -> np.ndarray:
    """Probability of class classes[i] for image i (float64 [N]); images float [N, C, H, W] in [0, 1]."""
    class_rows = torch.as_tensor(np.asarray(classes, dtype=np.int64))
    out = np.empty(len(images), dtype=np.float64)
    for start in range(0, len(images), batch):
        probabilities = classifier.probabilities(images[start : start + batch].to(classifier.device))
        rows = class_rows[start : start + batch].to(probabilities.device)
        out[start : start + batch] = probabilities.gather(1, rows[:, None])[:, 0].double().cpu().numpy()
    return out


def top_class(classifier: ImageScorer, images: torch.Tensor, batch: int = SCORE_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """(label, confidence) of each image's most probable class."""
    labels, confidences = [], []
    for start in range(0, len(images), batch):
        probabilities = classifier.probabilities(images[start : start + batch].to(classifier.device))
        confidence, label = probabilities.max(dim=1)
        labels.append(label.cpu().numpy())
        confidences.append(confidence.double().cpu().numpy())
    return np.concatenate(labels), np.concatenate(confidences)


def features_of(classifier: ImageScorer, images: torch.Tensor, batch: int = SCORE_BATCH) -> np.ndarray | None:
    """Penultimate-layer activations [N, D] (float32), or None when the classifier cannot give them."""
    extract = getattr(classifier, "features", None)
    if not callable(extract):
        return None
    chunks = []
    for start in range(0, len(images), batch):
        try:
            chunks.append(extract(images[start : start + batch].to(classifier.device)).float().cpu().numpy())
        except ValueError:
            return None
    return np.concatenate(chunks).reshape(len(images), -1)
