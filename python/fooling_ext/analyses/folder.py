"""The analysis folder ``fooling analyze`` writes, and the tables in it.

    analysis.json   {"format": "fooling_ext.analysis", "version": 1, "analysis": <name>, "runs": [...],
                     "summary": {...}}: the figures, readable by programs
    report.md       the same figures as Markdown tables, with the conclusion in words
    per_class.csv, natural.csv, transfer.csv, elites.csv   the per-class (and per-image, per-model) tables
    histogram.png, before_after.png, kept.png, transfer.png  the figures
    examples/                                  grids of example images

These names are all an analysis writes: ``--overwrite`` refuses a folder holding any other file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fooling_ext._files import atomic_write_text, loads_json
from fooling_ext.runs.folder import RunFolder

ANALYSIS_FORMAT = "fooling_ext.analysis"
"""The "format" field of every analysis.json."""
ANALYSIS_VERSION = 1
"""The version of analysis.json this build writes."""


class AnalysisFolder(RunFolder):
    """The folder of one analysis: ``--overwrite`` replaces what an analysis wrote there and nothing else."""

    KIND = "analysis"
    RESUME_HINT = ""  # an analysis is not resumed: it is run again
    FILES = (
        "analysis.json",
        "report.md",
        "per_class.csv",
        "natural.csv",
        "transfer.csv",
        "elites.csv",
        "histogram.png",
        "before_after.png",
        "kept.png",
        "transfer.png",
    )
    DIRS = ("examples",)
    PATTERNS = ()
    DIR_ENTRIES = {
        "examples": (
            "classes_by_runs.png",
            "pairs.png",
            "shuffled.png",
            "occlusion.png",
            "transfer_best.png",
            "transfer_worst.png",
        )
    }

    analysis_path = property(lambda self: self.path / "analysis.json")
    report_path = property(lambda self: self.path / "report.md")
    examples_dir = property(lambda self: self.path / "examples")

    @property
    def resume_path(self) -> Path:
        return self.analysis_path

    @contextlib.contextmanager
    def writing(self, *, overwrite: bool) -> Iterator[AnalysisFolder]:
        """Prepare the folder for a new analysis (``overwrite`` replaces one already there), hold it while the
        block writes, then let it go. An analysis that fails leaves nothing: without its analysis.json (written
        last) what it wrote is no result, and is removed with the folder where this call made it."""
        self.prepare(resume=False, overwrite=overwrite)
        try:
            yield self
        except BaseException:
            self.clear()
            self.abandon()
            raise
        finally:
            self.release()

    def write_analysis(self, analysis: str, runs: Sequence[str | os.PathLike], summary: Mapping[str, Any]) -> Path:
        data = {
            "format": ANALYSIS_FORMAT,
            "version": ANALYSIS_VERSION,
            "analysis": analysis,
            "runs": [str(run) for run in runs],
            "summary": _finite(summary),
        }
        atomic_write_text(self.analysis_path, json.dumps(data, indent=2) + "\n")
        return self.analysis_path

    def write_csv(self, name: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows([{key: _cell(value) for key, value in row.items()} for row in rows])
        path = self.path / name
        atomic_write_text(path, buffer.getvalue())
        return path

    def write_report(self, text: str) -> Path:
        atomic_write_text(self.report_path, text.rstrip() + "\n")
        return self.report_path


def read_analysis(path: str | os.PathLike) -> dict[str, Any]:
    """The analysis.json of an analysis folder."""
    file = Path(path) / "analysis.json"
    if not file.is_file():
        raise FileNotFoundError(f"no analysis at {path} (no analysis.json)")
    data = loads_json(file.read_text(), file)
    if not isinstance(data, dict) or data.get("format") != ANALYSIS_FORMAT:
        raise ValueError(f"{file} is not a fooling_ext analysis")
    return data


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of equal keys as a Markdown table; floats with 4 significant digits."""
    if not rows:
        return "(none)\n"
    columns = list(columns or rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_text(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines) + "\n"


def progress_bar(total: int, what: str, enabled: bool):
    """A progress bar on stderr over the images an analysis scores (a no-op object when not `enabled`)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="img", dynamic_ncols=True, file=sys.stderr, disable=not enabled)


def percent(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}%"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "/")


def _cell(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) and math.isfinite(value) else value


def _finite(value: Any) -> Any:
    """JSON-ready: NaN and Inf become None, NumPy scalars plain numbers."""
    if isinstance(value, Mapping):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
