"""The figures of a run as text: confidences formatted to show the nines, the paper's statistics over
classes, and the per-class table ``fooling report`` prints."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fooling_ext.runs.archive_file import read_archive
from fooling_ext.runs.folder import RunFolder, RunFolderError
from fooling_ext.runs.state import run_state


def format_confidence(c: float) -> str:
    """Confidence as a percentage with enough digits to tell 99.99% from 99.9%."""
    if c < 0:
        return "empty"
    return f"{100.0 * c:.2f}%" if c < 0.9999 else f"{100.0 * c:.4f}%"


def class_table(
    class_names: Sequence[str],
    confidence: np.ndarray,
    occupied: np.ndarray,
    generation: np.ndarray,
    elite_id: np.ndarray,
    parent_id: np.ndarray,
    models: Sequence[tuple[str, Sequence[float | None]]] = (),
) -> str:
    """The per-class table `fooling report` prints. `models`: for a run against several models, each model's
    name and its probability of each class's elite (None: empty), shown as a column each and a summary line
    each after the combined one."""
    width = max(10, min(40, max(len(n) for n in class_names)))
    heads = "".join(f"  {name[:11]:>11}" for name, _ in models)
    lines = [
        f"{'class':>5}  {'name':<{width}}  {'confidence':>11}{heads}  {'generation':>10}  {'elite':>9}  {'parent':>9}"
    ]
    for k, name in enumerate(class_names):
        if occupied[k]:
            cells = "".join(f"  {format_confidence(_known(values[k])):>11}" for _, values in models)
            lines.append(
                f"{k:>5}  {name[:width]:<{width}}  {format_confidence(float(confidence[k])):>11}{cells}  "
                f"{int(generation[k]):>10}  {int(elite_id[k]):>9}  {int(parent_id[k]):>9}"
            )
        else:
            lines.append(f"{k:>5}  {name[:width]:<{width}}  {'empty':>11}")
    conf = np.where(occupied, confidence, 0.0)
    lines.append("")
    lines.append(summary_line(conf) + ("  (combined)" if models else ""))
    for name, values in models:
        lines.append(f"{name}: " + summary_line(np.array([_known(v) for v in values])))
    return "\n".join(lines)


def _known(value: float | None) -> float:
    """A model's probability of an elite; an empty cell counts 0, as in the combined figures."""
    return 0.0 if value is None else float(value)


def model_columns(
    config: dict[str, Any], table: Sequence[Sequence[float | None]] | None
) -> list[tuple[str, list[float | None]]]:
    """(name, probabilities) per model of a run against several, from its configuration and the table
    archive.npz keeps (meta "model_confidence"); [] for a run against one model."""
    members = (config.get("classifier") or {}).get("models")
    if not table or not isinstance(members, list) or len(members) != len(table):
        return []
    return [
        (str(member.get("name", f"model {i + 1}")), list(values))
        for i, (member, values) in enumerate(zip(members, table))
    ]


def confidence_stats(conf: npt.ArrayLike) -> dict[str, float | int]:
    """The paper's figures over per-class confidences (empty cells given as 0): best, median, mean, the
    number of classes at >= 99% and >= 99.99%, and the number of classes."""
    conf = np.asarray(conf, dtype=np.float64)
    return {
        "best": float(conf.max()),
        "median": float(np.median(conf)),
        "mean": float(conf.mean()),
        "n99": int((conf >= 0.99).sum()),
        "n9999": int((conf >= 0.9999).sum()),
        "classes": int(conf.size),
    }


def summary_line(conf: np.ndarray) -> str:
    """One line of the figures over per-class confidences `conf`: classes, median and mean confidence, and how
    many classes reach 99% and 99.99%."""
    s = confidence_stats(conf)
    return (
        f"classes: {s['classes']}  median confidence: {format_confidence(s['median'])}  "
        f"mean: {format_confidence(s['mean'])}  >= 99%: {s['n99']}  >= 99.99%: {s['n9999']}"
    )


def capacity_totals(metrics: Sequence[Mapping[str, Any]]) -> dict[str, int] | None:
    """Over a CPPN run's per-generation metrics: the children whose add connection / add node capacity blocked,
    and the largest elite's nodes and edges seen in any generation. None when the metrics have no capacity
    columns (written before they existed). Values read from metrics.csv may be floats or blank."""
    keys = ("blocked_add_edge", "blocked_add_node", "max_nodes", "max_edges")
    rows = [m for m in metrics if all(k in m for k in keys)]
    if not rows:
        return None

    def num(v: Any) -> int:
        try:
            return int(float(v))
        except (TypeError, ValueError):
            return 0

    return {
        "blocked_add_edge": sum(num(m["blocked_add_edge"]) for m in rows),
        "blocked_add_node": sum(num(m["blocked_add_node"]) for m in rows),
        "largest_elite_nodes": max(num(m["max_nodes"]) for m in rows),
        "largest_elite_edges": max(num(m["max_edges"]) for m in rows),
    }


def capacity_lines(totals: dict[str, int] | None, max_nodes: int, max_edges: int) -> list[str]:
    """The genome capacity lines of a CPPN run's report: the largest elite against the capacity, and a warning
    when capacity blocked a mutation (the run's genomes would have grown further with a larger one)."""
    if totals is None:
        return []
    lines = [
        f"genome capacity: {max_nodes} nodes, {max_edges} edges; largest elite: "
        f"{totals['largest_elite_nodes']} nodes, {totals['largest_elite_edges']} edges"
    ]
    blocked = totals["blocked_add_edge"] + totals["blocked_add_node"]
    if blocked:
        lines.append(
            f"WARNING: capacity blocked {totals['blocked_add_edge']} add-connection and "
            f"{totals['blocked_add_node']} add-node mutations; raise --max-nodes / --max-edges so that "
            f"capacity does not shape the run"
        )
    return lines


_TABLE_FIELDS = ("confidence", "occupied", "generation", "elite_id", "parent_id")


def load_report(run: str | Path) -> str:
    """The per-class table of a run folder, headed by its state (:func:`runs.state.run_state`): from archive.npz
    where there is one (written when the run ends, Ctrl-C included), else from its checkpoint."""
    folder = RunFolder(run)
    if not folder.path.is_dir():
        raise FileNotFoundError(f"no run folder at {folder.path}")
    if folder.config_path.exists() and folder.read_config().get("method") == "gradient":
        report = folder.path / "report.txt"
        if not report.is_file():
            raise RunFolderError(f"{folder.path} holds a gradient run that did not finish (no report.txt)")
        return f"run {folder.path} (gradient ascent)\n" + report.read_text().rstrip()
    if not folder.archive_path.exists() and not folder.checkpoint_path.exists():
        raise RunFolderError(f"{folder.path} holds no run: no archive.npz, checkpoint.pt or gradient report")
    models: list[tuple[str, list[float | None]]] = []
    if folder.archive_path.exists():
        meta, fields = read_archive(folder.archive_path, _TABLE_FIELDS)
        names = meta["class_names"]
        models = model_columns(meta.get("config") or {}, meta.get("model_confidence"))
    else:
        state = folder.load_checkpoint(required=("archive", "generation", "config"))
        fields = {k: state["archive"][k].numpy() for k in _TABLE_FIELDS}
        names = state["config"]["classifier"]["class_names"]
    conf = np.clip(fields["confidence"], 0.0, None)
    head = f"run {folder.path} ({run_state(folder.path).describe()})"
    table = class_table(
        names, conf, fields["occupied"], fields["generation"], fields["elite_id"], fields["parent_id"], models
    )
    return "\n".join([head, table, *_capacity_from_folder(folder)])


def _capacity_from_folder(folder: RunFolder) -> list[str]:
    """The capacity lines of a CPPN run folder, from config.json and metrics.csv ([] when either is missing)."""
    try:
        run = folder.read_config().get("run") or {}
        if run.get("encoding") != "cppn" or not folder.metrics_path.is_file():
            return []
        with open(folder.metrics_path, newline="") as fh:
            rows = [row for row in csv.DictReader(fh) if None not in row.values()]
        return capacity_lines(capacity_totals(rows), int(run["max_nodes"]), int(run["max_edges"]))
    except (RunFolderError, OSError, KeyError, TypeError, ValueError):
        return []
