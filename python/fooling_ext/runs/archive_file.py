"""archive.npz: a finished archive as a NumPy file, readable without torch (docs/file-formats.md).

Per cell: the elite's genome fields (``genome_<field>``), its uint8 image, confidence, whether it is occupied,
the generation it was found in, its id and its parent's id; ``meta`` holds the format, version, class names,
insertion mode and the run's configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fooling_ext._files import read_npz, write_npz

ARCHIVE_FORMAT = "fooling_ext.archive"
ARCHIVE_VERSION = 2  # 2 adds the arrays' checksum to meta; version 1 files are still read
READABLE_VERSIONS = (1, 2)
CELL_FIELDS = ("images", "confidence", "occupied", "generation", "elite_id", "parent_id")


def write_archive(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """`arrays` as named in the file; `meta` without format and version, which are added here."""
    return write_npz(path, {"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION, **meta}, arrays)


def read_archive(
    path: str | os.PathLike[str], fields: tuple[str, ...] = CELL_FIELDS
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, the requested arrays) of an archive.npz, checked: format, version, checksum (version 2), and
    the content (:func:`check_archive`). A damaged or inconsistent file is a ValueError naming it."""
    wanted = tuple(dict.fromkeys((*fields, "occupied")))
    meta, arrays = read_npz(path, wanted, what="archive", format_name=ARCHIVE_FORMAT, version=READABLE_VERSIONS)
    if meta.get("version", 0) >= 2 and "checksum" not in meta:
        raise ValueError(f"{path} is damaged: an archive of version {meta['version']} must carry a checksum")
    check_archive(meta, arrays, where=str(path))
    return meta, {f: arrays[f] for f in fields}


def check_archive(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *, where: str) -> None:
    """The content of an archive makes sense: class names are strings, every per-cell array has one row per
    class, and an occupied cell's confidence is finite in [0, 1], its generation and id >= 0."""
    names = meta.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where}: class_names must be a non-empty list of strings")
    k = len(names)
    for name, a in arrays.items():
        if a.ndim == 0 or a.shape[0] != k:
            raise ValueError(f"{where}: {name} has {a.shape[0] if a.ndim else 0} rows, the archive has {k} classes")
    occupied = arrays["occupied"]
    if occupied.dtype != np.bool_:
        raise ValueError(f"{where}: occupied must be bool, got {occupied.dtype}")
    if "confidence" in arrays:
        c = arrays["confidence"][occupied].astype(np.float64)
        bad = np.flatnonzero(~(np.isfinite(c) & (c >= 0.0) & (c <= 1.0)))
        if bad.size:
            cell = int(np.flatnonzero(occupied)[bad[0]])
            raise ValueError(
                f"{where}: confidence of class {cell} ({names[cell]}) is {float(c[bad[0]])!r}, "
                f"not a probability in [0, 1] ({bad.size} such cells)"
            )
    for name in ("generation", "elite_id"):
        if name in arrays and (arrays[name][occupied] < 0).any():
            cell = int(np.flatnonzero(occupied & (arrays[name] < 0))[0])
            raise ValueError(f"{where}: {name} of occupied class {cell} is negative")
