"""archive.npz: a finished archive as a NumPy file, readable without torch (docs/file-formats.md).

Per cell: the elite's genome fields (``genome_<field>``), its uint8 image, confidence, whether it is occupied,
the generation it was found in, its id and its parent's id; ``meta`` holds the format, version, class names,
insertion mode and the run's configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from fooling_ext._files import read_npz, write_npz

ARCHIVE_FORMAT = "fooling_ext.archive"
ARCHIVE_VERSION = 1
CELL_FIELDS = ("images", "confidence", "occupied", "generation", "elite_id", "parent_id")


def write_archive(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """`arrays` as named in the file; `meta` without format and version, which are added here."""
    return write_npz(path, {"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION, **meta}, arrays)


def read_archive(path: str | os.PathLike, fields: tuple[str, ...] = CELL_FIELDS) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, the requested arrays) of an archive.npz."""
    return read_npz(path, fields, what="archive")
