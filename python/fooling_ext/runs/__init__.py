"""Runs on disk: the run folder (configuration, metrics, checkpoints), the archive file, and
what a run leaves for people to read: per-class tables, PNGs, labelled grids and the confidence plot.

The names below are imported when first used, so that ``fooling report`` reads a finished run without
importing torch or matplotlib."""

import importlib
from typing import Any

_EXPORTS = {
    "fooling_ext.runs.archive_file": ("read_archive", "write_archive"),
    "fooling_ext.runs.folder": ("RunFolder", "RunFolderError", "config_differences"),
    "fooling_ext.runs.images": ("labelled_grid", "save_class_images", "save_grids", "to_uint8"),
    "fooling_ext.runs.notebook": ("class_grid_html", "image_grid_html"),
    "fooling_ext.runs.plots": ("metrics_figure", "nines", "plot_metrics"),
    "fooling_ext.runs.report": ("class_table", "confidence_stats", "format_confidence", "load_report", "summary_line"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'fooling_ext.runs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
