"""Writing files so that a kill at any moment leaves the old file or the new one, never a partial one, and
the .npz container every file format of the package uses (arrays plus a JSON "meta" entry naming the format,
its version and a SHA-256 checksum of the arrays). The formats themselves are in docs/file-formats.md."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    # Unique per process and thread, so that two writers never share a temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:  # name the file
            raise type(exc)(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def require_regular_file(path: str | os.PathLike, what: str) -> None:
    """Refuse, before anything opens it, a path that is not a regular file: opening a FIFO waits for a writer
    forever and a device may never end. FileNotFoundError names `what` when nothing is there."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    if stat.S_ISREG(mode):
        return
    kind = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a special file"
    )
    raise ValueError(f"{path} is {kind}, not a {what} (a regular file)")


def loads_json(text: str | bytes, where: str | os.PathLike) -> Any:
    """json.loads, with JSON nested beyond Python's recursion limit an error naming `where`, not a
    RecursionError; other JSON errors propagate."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: the JSON is nested too deeply to read") from None


_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def arrays_checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        digest.update(a.tobytes())
    return "sha256:" + digest.hexdigest()


def write_npz(path: str | os.PathLike, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Path:
    """Arrays and a JSON `meta` entry (with the arrays' checksum added) as a compressed .npz, written
    atomically."""
    meta = {**meta, "checksum": arrays_checksum(arrays)}
    entries = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays}
    buffer = io.BytesIO()
    # As np.savez_compressed writes it, but with a fixed timestamp on every entry, so that the same content
    # gives the same bytes (a resumed run's archive.npz is the uninterrupted run's, byte for byte).
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, value in entries.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def read_npz(
    path: str | os.PathLike,
    fields: tuple[str, ...] | None,
    *,
    what: str,
    format_name: str | None = None,
    version: int | tuple[int, ...] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of a file written by :func:`write_npz`; `fields` must all be there (None: every array
    the file holds). `format_name` and
    `version` (one or several accepted), when given, must match the meta's. When the meta holds a checksum
    (every file written since checksums were added), every array is read and must match it. Errors name the
    file and say it is not a readable `what`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a {what}")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            checksum = meta.get("checksum") if isinstance(meta, dict) else None
            stored = [n for n in z.files if n != "meta"]
            names = stored if checksum is not None or fields is None else list(fields)
            everything = {n: z[n] for n in names}
            arrays = {f: everything[f] if f in everything else z[f] for f in (stored if fields is None else fields)}
    except Exception as exc:  # zip, key and JSON errors all mean the same thing to the user
        raise ValueError(f"{path} is not a readable {what}: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a readable {what}: its meta entry is not a JSON object")
    if format_name is not None and meta.get("format") != format_name:
        raise ValueError(f"{path} is not a {what} (format {meta.get('format')!r})")
    versions = (version,) if isinstance(version, int) else version
    if versions is not None and meta.get("version") not in versions:
        raise ValueError(
            f"{path} has format version {meta.get('version')}, this build reads {', '.join(str(v) for v in versions)}"
        )
    if checksum is not None and arrays_checksum(everything) != checksum:
        raise ValueError(f"{path} is damaged: its arrays do not match the checksum written with them")
    return meta, arrays
