"""Which command wrote a folder (told by the content of the file it writes first), and the check that a command's
output path is not empty and is not, inside or around one of its inputs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fooling_ext.runs.recorded import CHECKPOINT_MAGIC, RunFolderError

# What each kind of folder is called, and the command that writes it (a RunFolder subclass's KIND is one of these).
COMMANDS = {
    "run": "fooling evolve",
    "gradient run": "fooling gradient",
    "analysis": "fooling analyze",
    "sweep": "fooling sweep",
    "experiment": "fooling retrain",
    "fooling-class experiment": "fooling imagenet-fooling-class",
    "gallery": "fooling gallery",
}


def _json_object(path: Path) -> dict[str, Any] | None:
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 64 * 1024 * 1024:
            return None
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def folder_kind(path: str | os.PathLike[str]) -> str | None:
    """Which command's folder `path` is, told by the content of the file that command writes first (not by file
    names alone: a user's own config.json is no run): one of COMMANDS' keys, or None."""
    path = Path(path)
    for name, fmt, kind in (
        ("sweep.json", "fooling_ext.sweep", "sweep"),
        ("analysis.json", "fooling_ext.analysis", "analysis"),
        ("fit.json", "fooling_ext.fooling_class_fit", "fooling-class experiment"),
    ):
        data = _json_object(path / name)
        if data is not None and data.get("format") == fmt:
            return kind
    config = _json_object(path / "config.json")
    if config is not None and "fooling_ext" in config:
        if config.get("method") == "gradient":
            return "gradient run"
        if isinstance(config.get("experiment"), dict):
            return "experiment"
        if isinstance(config.get("run"), dict):
            return "run"
    checkpoint = path / "checkpoint.pt"
    if config is None and checkpoint.is_file() and not checkpoint.is_symlink():
        with open(checkpoint, "rb") as fh:
            if fh.read(len(CHECKPOINT_MAGIC)) == CHECKPOINT_MAGIC:
                return "run"
    result = _json_object(path / "fooling_class.json")
    if result is not None and "fooling_ext" in result and "source_runs" in result:
        return "fooling-class experiment"
    head = path / "fooling_head.pt"
    if head.is_file() and not head.is_symlink() and head.stat().st_size < 64 * 1024 * 1024:
        import torch  # only for this file: telling other folders apart needs no torch

        try:
            state = torch.load(head, map_location="cpu", weights_only=True)
        except Exception:  # not a torch file of plain tensors: not ours
            state = None
        if isinstance(state, dict) and state.get("format") == "fooling_ext.fooling_head":
            return "fooling-class experiment"
    gallery = _json_object(path / "gallery.json")
    if gallery is not None and (path / "index.html").is_file():
        return "gallery"
    return None


def check_out_path(
    out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = (), *, what: str = "output folder"
) -> None:
    """Refuse an output path that is empty, or that is, lies inside or holds one of the command's `inputs` (after
    symlinks), before anything is written."""
    if os.fspath(out) == "":
        raise RunFolderError(f"the {what} is empty: name a folder")
    target = os.path.realpath(out)
    for given in inputs:
        source = os.path.realpath(given)
        if target == source or target.startswith(source.rstrip(os.sep) + os.sep):
            raise RunFolderError(
                f"the {what} {out} is {'' if target == source else 'inside '}the input {given}: "
                "a command never writes into what it reads; choose another folder"
            )
        if source.startswith(target.rstrip(os.sep) + os.sep):
            raise RunFolderError(
                f"the {what} {out} holds the input {given}: a command never writes over what it "
                "reads; choose another folder"
            )
