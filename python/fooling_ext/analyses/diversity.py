"""``fooling analyze diversity``: do different runs find different patterns for the same class?

The paper reports that runs with different seeds produce different images for the same class. For runs of one
model and encoding, per class present in every run, the analysis sets how different the class's elites are
across runs (``same class``: the mean distance over pairs of runs) against how different two classes' elites
are within one run (``other classes``: the mean distance to the other classes' elites of the same run). It
does so in pixel space (root-mean-square difference of the images, area-averaged to at most 64 x 64 pixels)
and in the classifier's feature space (cosine distance of the penultimate layer's activations, where the
classifier gives them). It also counts how often a class's elite in one run has, among all elites of another
run, the same class's elite as its nearest neighbour (chance: one over the number of classes).

The ratio same class / other classes near 1 means a class's elites are as different across runs as different
classes are: "different runs, different patterns" holds. Near 0 means runs converge on one pattern per class;
so does a high share of classes whose nearest elite in another run is their own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import fooling_ext.analyses.figures as figures
from fooling_ext.analyses.folder import AnalysisFolder, markdown_table, percent, progress_bar
from fooling_ext.analyses.sources import (
    SCORE_BATCH,
    RunData,
    at_least,
    confidence_text,
    expand_runs,
    features_of,
    group_runs,
    is_sweep,
    run_classifier,
    selection_text,
    threshold_text,
)
from fooling_ext.classifiers.protocol import ImageScorer
from fooling_ext.core.checks import check_real, check_whole
from fooling_ext.runs.folder import check_out_path
from fooling_ext.runs.images import labelled_grid, safe_name
from fooling_ext.runs.report import format_confidence

HOLDS, PARTLY = 0.8, 0.5  # median ratio same class / other classes in pixel space
CONVERGED = 0.25  # share of classes whose nearest elite in another run is their own, above which runs converge


@dataclass
class DiversityConfig:
    """The settings of :func:`diversity`; :meth:`check` raises ValueError naming a bad one."""

    pixel_side: int = 64  # images area-averaged to at most this side before pixel distances
    grid_classes: int = 10  # rows of the classes x runs grid (the most confident classes)
    batch: int = SCORE_BATCH
    top: int | None = None  # only the classes with the highest mean confidence over the runs (default: all)
    min_confidence: float | None = None  # only the classes whose elite is >= this in every run (default: all)

    def check(self) -> None:
        for name in ("pixel_side", "grid_classes", "batch"):
            check_whole(name, getattr(self, name), 1)
        if self.top is not None:
            check_whole("top", self.top, 1)
        if self.min_confidence is not None:
            check_real("min_confidence", self.min_confidence, 0.0, 1.0)


def diversity(
    runs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    config: DiversityConfig | None = None,
    classifier: ImageScorer | None = None,
    model: str | None = None,
    device: Any = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Compare the elites of runs of one model and encoding into the analysis folder `out`; returns the summary.
    `progress`: a progress bar on stderr over the images the classifier reads.

    A sweep folder stands for its done runs. When sweeps bring runs of several models or encodings, each group
    gets its own analysis folder, ``out/<model>-<encoding>``, and the result maps each group to its summary."""
    config = config or DiversityConfig()
    check_out_path(out, runs)
    config.check()
    loaded = expand_runs(runs)
    groups = group_runs(loaded)
    if len(groups) > 1:
        kinds = "; ".join(f"{m}/{e}: {', '.join(str(r.path) for r in rs)}" for (m, e), rs in groups.items())
        if not any(is_sweep(path) for path in runs):
            raise ValueError(f"diversity compares runs of one model and encoding; these differ: {kinds}")
        return {
            f"{m}/{e}": _analyse(
                rs,
                Path(out) / f"{safe_name(m)}-{safe_name(e)}",
                runs,
                config,
                classifier,
                model,
                device,
                overwrite,
                progress,
            )
            for (m, e), rs in groups.items()
        }
    return _analyse(loaded, Path(out), runs, config, classifier, model, device, overwrite, progress)


def _analyse(
    runs: list[RunData], out: Path, given, config, classifier, model, device, overwrite, progress
) -> dict[str, Any]:
    first = runs[0]
    if len(runs) < 2:
        raise ValueError(f"diversity needs at least two runs of {first.model}/{first.encoding}; got {first.path} only")
    for run in runs[1:]:
        if run.class_names != first.class_names:
            raise ValueError(f"{run.path} and {first.path} have different classes")
        if run.images.shape[1:] != first.images.shape[1:]:
            raise ValueError(
                f"{run.path} and {first.path} have images of different sizes "
                f"({list(run.images.shape[1:])} and {list(first.images.shape[1:])})"
            )
    classes, analysed = select_classes(runs, config.top, config.min_confidence)
    clf = classifier if classifier is not None else run_classifier(first, model=model, device=device)
    with AnalysisFolder(out).writing(overwrite=overwrite) as folder:
        pixels = [pixel_vectors(run.float_images(classes), config.pixel_side) for run in runs]
        spaces: dict[str, dict[str, Any]] = {"pixel": compare(pixels, rms_distances)}
        with progress_bar(len(runs) * len(classes), "diversity", progress) as bar:
            features = []
            for run in runs:
                features.append(features_of(clf, run.float_images(classes), config.batch))
                bar.update(len(classes))
        present = [f for f in features if f is not None]
        if len(present) == len(features):
            spaces["feature"] = compare(present, cosine_distances)
        rows = []
        for i, cell in enumerate(classes):
            row = {
                "class": int(cell),
                "name": first.class_names[cell],
                "mean_confidence": float(np.mean([run.confidence[cell] for run in runs])),
            }
            for space, result in spaces.items():
                row.update(
                    {
                        f"{space}_{key}": float(result[field][i])
                        for key, field in (
                            ("same", "same"),
                            ("other", "other"),
                            ("ratio", "ratio"),
                            ("nearest_same", "hits"),
                        )
                    }
                )
            rows.append(row)
        summary: dict[str, Any] = {
            "model": first.model,
            "encoding": first.encoding,
            "runs": len(runs),
            "seeds": [run.seed for run in runs],
            "classes": int(len(classes)),
            "classes_analysed": analysed,
            "settings": asdict(config),
            "chance_nearest_same": 1.0 / len(classes),
        }
        for space, result in spaces.items():
            summary[space] = {
                "median_same": float(np.median(result["same"])),
                "median_other": float(np.median(result["other"])),
                "median_ratio": float(np.median(result["ratio"])),
                "nearest_same": float(np.mean(result["hits"])),
                "identical_pairs": float(result["identical"]),
            }
        if "feature" not in spaces:
            summary["feature"] = None
        summary["verdict"], summary["conclusion"] = conclusion(summary)
        folder.write_csv("per_class.csv", rows)
        panels = [
            (
                f"{space} distance" + (" (RMS, images in [0, 1])" if space == "pixel" else " (1 - cosine)"),
                {"same class, across runs": result["same"], "other classes, within a run": result["other"]},
            )
            for space, result in spaces.items()
        ]
        figures.histograms(
            folder.path / "histogram.png",
            panels,
            f"{first.model} / {first.encoding}: {len(runs)} runs, {len(classes)} classes",
        )
        _grid(folder, runs, classes, config.grid_classes)
        folder.write_report(report_text(runs, summary, rows))
        folder.write_analysis("diversity", [str(run.path) for run in runs], summary)
        return summary


def select_classes(runs: Sequence[RunData], top: int | None, min_confidence: float | None) -> tuple[np.ndarray, str]:
    """The classes compared, and which they are in words: those filled in every run, with `min_confidence`
    those whose elite is >= it in every run, then with `top` the `top` of highest mean confidence over the
    runs. A ValueError when fewer than two are left, naming the threshold and the best confidences."""
    classes = np.flatnonzero(np.logical_and.reduce([run.occupied for run in runs]))
    if min_confidence is not None:
        high = np.logical_and.reduce([at_least(run.confidence[classes], min_confidence) for run in runs])
        if high.sum() < 2 and len(classes) > high.sum():
            weakest = np.where(high, -1.0, np.min([run.confidence[classes] for run in runs], axis=0))
            best = int(classes[np.argmax(weakest)])
            have = "none is" if not high.any() else f"only {runs[0].class_text(int(classes[high][0]))} is"
            raise ValueError(
                f"diversity needs at least two classes whose elite is >= the minimum confidence "
                f"{threshold_text(min_confidence)} in every run; {have}, the next is {runs[0].class_text(best)} at "
                f"{confidence_text(float(weakest.max()), min_confidence)} in its weakest run; each run's best: "
                + ", ".join(
                    f"{confidence_text(float(run.confidence.max()), min_confidence)} ({run.label})" for run in runs
                )
            )
        passing = classes[high]
        classes = passing
    count = len(classes)
    if top is not None and top < len(classes):
        mean = np.mean([run.confidence[classes] for run in runs], axis=0)
        classes = np.sort(classes[np.argsort(-mean, kind="stable")[:top]])
    if len(classes) < 2:
        raise ValueError("diversity needs at least two classes filled in every run")
    total = len(runs[0].occupied)
    return classes, selection_text(len(classes), count, total, min_confidence, every_run=True)


def pixel_vectors(images: torch.Tensor, side: int) -> np.ndarray:
    """Images [N, C, H, W] area-averaged to at most side x side, flattened: float32 [N, D]."""
    h, w = images.shape[-2:]
    if max(h, w) > side:
        images = F.adaptive_avg_pool2d(images, (min(h, side), min(w, side)))
    return images.flatten(1).numpy().astype(np.float32)


def rms_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] root-mean-square differences of the rows."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = (a64**2).sum(1)[:, None] + (b64**2).sum(1)[None, :]
    squared = norms - 2.0 * a64 @ b64.T
    squared[squared <= 1e-12 * norms] = 0.0  # rounding of equal rows
    return np.sqrt(squared / a.shape[1])


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] one minus the cosine of the rows (0 for rows in the same direction)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    a64 = a64 / np.maximum(np.linalg.norm(a64, axis=1, keepdims=True), 1e-12)
    b64 = b64 / np.maximum(np.linalg.norm(b64, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - a64 @ b64.T, 0.0, 2.0)


def compare(vectors: Sequence[np.ndarray], distance) -> dict[str, np.ndarray | float]:
    """Per class (row): mean distance to the same class in the other runs, mean distance to the other classes in
    the same run, their ratio, and the share of the other runs whose nearest elite is the same class's."""
    k = len(vectors[0])
    same = np.zeros(k)
    hits = np.zeros(k)
    identical, pairs = 0, 0
    for a, b in combinations(range(len(vectors)), 2):
        cross = distance(vectors[a], vectors[b])
        same += np.diag(cross)
        identical += int((np.diag(cross) < 1e-9).sum())
        pairs += k
        hits += (cross.argmin(axis=1) == np.arange(k)).astype(float) + (cross.argmin(axis=0) == np.arange(k))
    run_pairs = len(vectors) * (len(vectors) - 1) // 2
    same /= run_pairs
    hits /= 2 * run_pairs
    other = np.zeros(k)
    for v in vectors:
        within = distance(v, v)
        other += (within.sum(axis=1) - np.diag(within)) / (k - 1)
    other /= len(vectors)
    ratio = same / np.maximum(other, 1e-12)
    return {"same": same, "other": other, "ratio": ratio, "hits": hits, "identical": identical / max(pairs, 1)}


def conclusion(summary: dict[str, Any]) -> tuple[str, str]:
    """("holds" | "partly" | "does not hold", a sentence with the numbers) from pixel space: holds when the median
    ratio is >= 0.8 and fewer than a quarter of the classes find their own elite nearest in another run; partly
    when the ratio is >= 0.5 otherwise."""
    pixel = summary["pixel"]
    ratio = pixel["median_ratio"]
    if ratio >= HOLDS and pixel["nearest_same"] < CONVERGED:
        verdict = "holds"
    else:
        verdict = "partly" if ratio >= PARTLY else "does not hold"
    text = (
        f"For {summary['model']}/{summary['encoding']}, 'different runs, different patterns' {verdict}: in pixel "
        f"space a class's elites differ across runs by a median {ratio:.2f} times as much as two classes' "
        f"elites differ within a run, and the nearest elite of another run is the same class's for "
        f"{percent(pixel['nearest_same'], 1)} of classes (chance {percent(summary['chance_nearest_same'], 1)})."
    )
    feature = summary.get("feature")
    if feature:
        text += (
            f" In the classifier's feature space the ratio is {feature['median_ratio']:.2f} and the nearest "
            f"elite is the same class's for {percent(feature['nearest_same'], 1)}: "
            + (
                "the network sees the runs' different images as alike."
                if feature["median_ratio"] < 0.8 * ratio
                else "the network sees them as different too."
            )
        )
    return verdict, text


def _grid(folder: AnalysisFolder, runs: list[RunData], classes: np.ndarray, rows: int) -> None:
    mean = np.mean([run.confidence[classes] for run in runs], axis=0)
    chosen = classes if len(classes) <= rows else classes[np.sort(np.argsort(-mean, kind="stable")[:rows])]
    images, labels, captions = [], [], []
    for cell in chosen:
        for run in runs:
            images.append(run.images[cell])
            labels.append(f"{cell}: {run.class_names[cell]}")
            captions.append(f"{run.label}: {format_confidence(float(run.confidence[cell]))}")
    folder.examples_dir.mkdir(exist_ok=True)
    labelled_grid(np.stack(images), labels, captions, columns=len(runs)).save(
        folder.examples_dir / "classes_by_runs.png"
    )


def report_text(runs: list[RunData], summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        f"# Diversity: {summary['model']} / {summary['encoding']}, {len(runs)} runs",
        "",
        "Runs: " + ", ".join(f"{run.path} ({run.label})" for run in runs),
        "",
        f"**{summary['conclusion']}**",
        "",
        f"Classes analysed: {summary['classes_analysed']}.",
        "",
    ]
    table = []
    for space in ("pixel", "feature"):
        entry = summary.get(space)
        if entry:
            table.append(
                {
                    "space": space,
                    "same class, across runs": f"{entry['median_same']:.4f}",
                    "other classes, within a run": f"{entry['median_other']:.4f}",
                    "median ratio": f"{entry['median_ratio']:.3f}",
                    "nearest is same class": percent(entry["nearest_same"], 1),
                    "identical elites": percent(entry["identical_pairs"], 1),
                }
            )
    lines += [
        "Medians over classes (distances: pixel RMS on [0, 1] images; feature 1 - cosine):",
        "",
        markdown_table(table),
    ]
    if summary.get("feature") is None:
        lines += ["The classifier gives no penultimate-layer features: pixel space only.", ""]
    lines += ["![distances](histogram.png)", "", "Classes x runs: examples/classes_by_runs.png", "", "## Per class", ""]
    shown = sorted(rows, key=lambda r: -r["mean_confidence"])[:50]
    lines.append(
        markdown_table([{k: (percent(v) if k == "mean_confidence" else v) for k, v in r.items()} for r in shown])
    )
    if len(rows) > len(shown):
        lines.append(f"(the {len(shown)} most confident of {len(rows)}; all in per_class.csv)")
    return "\n".join(lines)
