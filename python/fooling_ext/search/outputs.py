"""The readable part of an evolution run's folder, written when the run ends (or stops): archive.npz, one PNG
per class, labelled grids, the confidence plot, report.txt and summary.json."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fooling_ext._files import atomic_write_text
from fooling_ext.runs.folder import RunFolder
from fooling_ext.runs.images import save_class_images, save_grids
from fooling_ext.runs.plots import plot_metrics
from fooling_ext.runs.report import capacity_lines, capacity_totals, class_table, confidence_stats, model_columns
from fooling_ext.search.archive import Archive


def write_outputs(
    folder: RunFolder,
    archive: Archive,
    metrics: list[dict[str, Any]],
    cfg: dict[str, Any],
    model_confidence: list[list[float | None]] | None = None,
) -> None:
    """The readable part of a run folder: archive.npz, images/, grids, confidence.png, report.txt, summary.json.
    `model_confidence`: for a run against several models, per model each class's elite's probability under it
    (None: empty), kept in archive.npz's meta and shown in the report and summary beside the combined figures."""
    state = archive.state_dict()
    meta = {"config": cfg} if model_confidence is None else {"config": cfg, "model_confidence": model_confidence}
    archive.save_npz(folder.archive_path, extra_meta=meta)
    models = model_columns(cfg, model_confidence)
    images = state["images"].numpy()
    occupied = state["occupied"].numpy()
    conf = state["confidence"].numpy()
    save_class_images(folder.images_dir, images, occupied, archive.class_names)
    save_grids(folder.path, images, conf, occupied, archive.class_names)
    if metrics:
        title = f"{cfg['classifier']['name']} / {cfg['encoding']['encoding']} / seed {cfg['run']['seed']}"
        plot_metrics(folder.path / "confidence.png", metrics, title)
    table = class_table(
        archive.class_names,
        conf,
        occupied,
        state["generation"].numpy(),
        state["elite_id"].numpy(),
        state["parent_id"].numpy(),
        models,
    )
    run = cfg.get("run", {})
    capacity = capacity_totals(metrics) if run.get("encoding") == "cppn" else None
    extra = capacity_lines(capacity, run.get("max_nodes", 0), run.get("max_edges", 0))
    atomic_write_text(folder.path / "report.txt", "\n".join([table, *extra]) + "\n")
    conf0 = np.where(occupied, conf, 0.0)
    stats = confidence_stats(conf0)
    summary = {
        "model": cfg["classifier"]["name"],
        "model_description": cfg["classifier"]["description"],
        "generations": metrics[-1]["generation"] + 1 if metrics else 0,
        "evaluations": metrics[-1]["evaluations"] if metrics else 0,
        "seconds": metrics[-1]["seconds"] if metrics else 0.0,
        **{k: stats[k] for k in ("median", "mean", "n99", "n9999")},
        **(
            {"capacity": {"max_nodes": run["max_nodes"], "max_edges": run["max_edges"], **capacity}}
            if capacity is not None
            else {}
        ),
        "classes": [
            {"class": k, "name": n, "confidence": float(conf0[k]), "occupied": bool(occupied[k])}
            for k, n in enumerate(archive.class_names)
        ],
    }
    if models:  # several models: each one's figures, and its probability of each elite
        summary["models"] = [
            {
                "name": name,
                **{
                    k: v
                    for k, v in confidence_stats([0.0 if p is None else p for p in values]).items()
                    if k in ("median", "mean", "n99", "n9999")
                },
            }
            for name, values in models
        ]
        for k, row in enumerate(summary["classes"]):
            row["model_confidences"] = [values[k] for _, values in models]
    atomic_write_text(folder.path / "summary.json", json.dumps(summary, indent=2) + "\n")
