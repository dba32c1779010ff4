"""The figures over a sweep's runs, read from each finished run's ``summary.json``: per run (median confidence
over the classes, classes >= 99% and >= 99.99%, evaluations, seconds) and per class over the runs that differ
only in their seed (median, best, runs >= 99%). Written as ``summary.json``, ``summary.csv`` and
``summary_per_class.csv`` in the sweep folder; ``fooling analyze diversity`` and ``fooling gallery`` read them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fooling_ext._files import atomic_write_text
from fooling_ext.runs.folder import RunFolderError, read_json_object
from fooling_ext.sweep.spec import RunPoint

RUN_COLUMNS = (
    "name",
    "folder",
    "model",
    "encoding",
    "seed",
    "generations",
    "median",
    "mean",
    "classes_ge_99",
    "classes_ge_9999",
    "evaluations",
    "seconds",
)
CLASS_COLUMNS = ("group", "model", "encoding", "class", "class_name", "runs", "median", "best", "runs_ge_99")


def sweep_summary(sweep_dir: Path, points: Sequence[RunPoint], done: set[str]) -> dict[str, Any]:
    """summary.json's content for the finished runs among `points` (runs in grid order)."""
    runs, per_run_classes = [], {}
    for point in points:
        if point.name not in done:
            continue
        path = sweep_dir / point.folder / "summary.json"
        summary = read_json_object(path, "a run's summary")
        try:
            classes = [{"name": str(c["name"]), "confidence": float(c["confidence"])} for c in summary["classes"]]
            runs.append(
                {
                    "name": point.name,
                    "folder": point.folder,
                    "model": point.model,
                    "encoding": point.encoding,
                    "seed": point.seed,
                    "options": dict(point.options),
                    "generations": int(summary["generations"]),
                    "median": float(summary["median"]),
                    "mean": float(summary["mean"]),
                    "classes_ge_99": int(summary["n99"]),
                    "classes_ge_9999": int(summary["n9999"]),
                    "evaluations": int(summary["evaluations"]),
                    "seconds": float(summary["seconds"]),
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFolderError(f"{path} is damaged: {type(exc).__name__}: {exc}") from exc
        per_run_classes[point.name] = classes
    per_class = []
    groups: dict[str, list[RunPoint]] = {}
    for point in points:
        if point.name in done:
            groups.setdefault(point.group, []).append(point)
    for group, members in groups.items():
        confidences = np.array([[c["confidence"] for c in per_run_classes[p.name]] for p in members])
        names = [c["name"] for c in per_run_classes[members[0].name]]
        for k, name in enumerate(names):
            column = confidences[:, k]
            per_class.append(
                {
                    "group": group,
                    "model": members[0].model,
                    "encoding": members[0].encoding,
                    "options": dict(members[0].options),
                    "class": k,
                    "class_name": name,
                    "runs": len(members),
                    "median": float(np.median(column)),
                    "best": float(column.max()),
                    "runs_ge_99": int((column >= 0.99).sum()),
                }
            )
    return {"runs": runs, "per_class": per_class}


def write_summary(sweep_dir: Path, summary: dict[str, Any], varying: Sequence[str]) -> None:
    """summary.json, summary.csv (one row per run) and summary_per_class.csv; the options that vary over the grid
    get a column each in the CSV files."""
    atomic_write_text(sweep_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(sweep_dir / "summary.csv", _csv(summary["runs"], RUN_COLUMNS, varying))
    atomic_write_text(sweep_dir / "summary_per_class.csv", _csv(summary["per_class"], CLASS_COLUMNS, varying))


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], varying: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*columns, *varying])
    for row in rows:
        writer.writerow([row[c] for c in columns] + [_cell(row["options"].get(key)) for key in varying])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    return "x".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value


def format_summary(summary: dict[str, Any]) -> str:
    """The per-run table as text: name, median, classes >= 99%, seconds."""
    rows = summary["runs"]
    if not rows:
        return "no finished runs"
    width = max(len(r["name"]) for r in rows)
    lines = [f"{'run':<{width}}  {'median':>8}  {'>= 99%':>7}  {'seconds':>8}"]
    for r in rows:
        lines.append(f"{r['name']:<{width}}  {100 * r['median']:7.2f}%  {r['classes_ge_99']:>7}  {r['seconds']:>8.1f}")
    return "\n".join(lines)
