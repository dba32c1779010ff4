"""Writing files so that a kill at any moment leaves the old file or the new one, never a partial one, and
the .npz container every file format of the package uses (arrays plus a JSON "meta" entry naming the format
and its version). The formats themselves are in docs/file-formats.md."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_npz(path: str | os.PathLike, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Path:
    """Arrays and a JSON `meta` entry as a compressed .npz, written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def read_npz(path: str | os.PathLike, fields: tuple[str, ...], *, what: str,
             format_name: str | None = None, version: int | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of a file written by :func:`write_npz`; `fields` must all be there. `format_name` and
    `version`, when given, must match the meta's. Errors name the file and say it is not a readable `what`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            arrays = {f: z[f] for f in fields}
    except Exception as exc:  # zip, key and JSON errors all mean the same thing to the user
        raise ValueError(f"{path} is not a readable {what}: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a readable {what}: its meta entry is not a JSON object")
    if format_name is not None and meta.get("format") != format_name:
        raise ValueError(f"{path} is not a {what} (format {meta.get('format')!r})")
    if version is not None and meta.get("version") != version:
        raise ValueError(f"{path} has format version {meta.get('version')}, this build reads {version}")
    return meta, arrays
