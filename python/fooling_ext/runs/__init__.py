"""Runs on disk: the run folder (configuration, metrics, checkpoints), the archive file, and
what a run leaves for people to read: per-class tables, PNGs, labelled grids and the confidence plot."""

from fooling_ext.runs.archive_file import read_archive, write_archive
from fooling_ext.runs.folder import RunFolder, RunFolderError, config_differences
from fooling_ext.runs.images import labelled_grid, save_class_images, save_grids, to_uint8
from fooling_ext.runs.notebook import class_grid_html, image_grid_html
from fooling_ext.runs.plots import metrics_figure, nines, plot_metrics
from fooling_ext.runs.report import class_table, confidence_stats, format_confidence, load_report, summary_line

__all__ = [
    "RunFolder", "RunFolderError", "class_grid_html", "class_table", "confidence_stats", "config_differences",
    "format_confidence", "image_grid_html", "labelled_grid", "load_report", "metrics_figure", "nines", "plot_metrics",
    "read_archive", "save_class_images", "save_grids", "summary_line", "to_uint8", "write_archive",
]
