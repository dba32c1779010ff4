"""The run folder: configuration, metrics, checkpoints and final outputs of one command, and the rules that
keep two runs from mixing in one folder (docs/run-folder.md lists every kind of folder and its files).

    config.json        the full configuration of the run (JSON)
    metrics.csv        one row per generation
    checkpoint.pt      the latest checkpoint (archive, generation, metrics); replaced atomically
    archive.npz        the final archive (NumPy, readable without torch)
    images/            one PNG per class
    grid*.png          labelled grids (class name and confidence under each image)
    confidence.png     confidence over generations
    report.txt         the per-class table
    summary.json       the run's figures (median, classes >= 99%, per class)
"""

from __future__ import annotations

import atexit
import csv
import fcntl
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fooling_ext._files import atomic_write_bytes, atomic_write_text

# Re-exported (`name as name`): part of this module's API.
from fooling_ext.runs.kinds import (
    COMMANDS as COMMANDS,
    check_out_path as check_out_path,
    folder_kind as folder_kind,
)
from fooling_ext.runs.recorded import (
    CHECKPOINT_MAGIC as CHECKPOINT_MAGIC,
    CONFIG_SECTIONS as CONFIG_SECTIONS,
    RunFolderBusy as RunFolderBusy,
    RunFolderError as RunFolderError,
    check_checkpoint_agrees as check_checkpoint_agrees,
    check_config_shape as check_config_shape,
    config_differences as config_differences,
    read_json_object as read_json_object,
)

CHECKPOINT_FORMAT = "fooling_ext.checkpoint"
# Version 2: a header line with the SHA-256 of the torch payload before it; version 1 (a bare torch file)
# is still read.
CHECKPOINT_VERSION = 2


LOCK_NAME = ".fooling.lock"

_TEMPORARY = re.compile(r"^\..+\.\d+\.\d+\.tmp$")

# Folders this process holds the lock of: resolved path -> open descriptor of the lock file.
_HELD: dict[str, int] = {}


def _release(key: str) -> None:
    fd = _HELD.pop(key, None)
    if fd is None:
        return
    try:
        lock = os.path.join(key, LOCK_NAME)
        if os.fstat(fd).st_ino == os.stat(lock).st_ino:
            os.unlink(lock)
    except OSError:
        pass
    finally:
        os.close(fd)


@atexit.register
def _release_all() -> None:
    for key in list(_HELD):
        _release(key)


def folder_entries(folder: Path) -> list[Path]:
    """A folder's entries in name order, without the lock file and writers' temporary files."""
    return sorted(p for p in folder.iterdir() if p.name != LOCK_NAME and not _TEMPORARY.match(p.name))


def _lock_owner(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 200).decode(errors="replace").strip()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunFolder:
    """A folder one command writes. The artefacts it owns (:meth:`owned_paths`) are what ``--overwrite``
    removes; anything else a user put there stays. Subclasses name their own artefacts."""

    KIND = "run"
    FILES: tuple[str, ...] = (
        "config.json",
        "metrics.csv",
        "checkpoint.pt",
        "archive.npz",
        "report.txt",
        "confidence.png",
        "summary.json",
    )
    DIRS: tuple[str, ...] = ("images",)
    PATTERNS: tuple[str, ...] = ("grid.png", "grid_*-*.png", "grid_top*.png")
    #: the file names (patterns) a folder of DIRS holds, or the kind of folder it is; a folder not named here is
    #: this kind's as a whole
    DIR_ENTRIES: Mapping[str, tuple[str, ...] | type[RunFolder]] = {"images": ("class_*.png",)}

    def __init__(self, path: str | os.PathLike[str]):
        if os.fspath(path) == "":  # Path("") is the current folder, which no one means by an empty name
            raise RunFolderError("the output folder is empty: name a folder")
        self.path = Path(path)
        self._created: Path | None = None  # the outermost folder this object's lock() created
        self._fresh = False  # prepare() made the folder ready for a new run: what it holds now, this run wrote

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.csv")
    checkpoint_path = property(lambda self: self.path / "checkpoint.pt")
    archive_path = property(lambda self: self.path / "archive.npz")
    images_dir = property(lambda self: self.path / "images")

    @property
    def resume_path(self) -> Path:
        """The file a resumed command continues from."""
        path: Path = self.checkpoint_path  # the lambda properties above are untyped
        return path

    def holds_run(self) -> bool:
        return self.config_path.exists() or self.resume_path.exists()

    #: what a message suggests for a folder that holds another run of this kind ("" when no resume exists)
    RESUME_HINT = "pass resume=True to continue it or "  # then "overwrite=True to replace it"

    def prepare(self, *, resume: bool, overwrite: bool) -> None:
        """Take the folder's lock (:meth:`lock`), then make the folder ready for a new run, or check that it
        can be resumed. Nothing is written before the lock is held; a folder refused here that :meth:`lock`
        created is removed again. ``overwrite`` removes only a previous folder of this kind, and only when it
        holds nothing this kind does not write (:meth:`foreign_paths`); another command's folder is refused."""
        if resume and overwrite:
            raise RunFolderError("resume=True and overwrite=True cannot be used together")
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} exists and is not a folder")
        if resume:
            if not self.resume_path.exists():
                raise RunFolderError(f"nothing to resume: {self.resume_path} does not exist")
            kind = folder_kind(self.path)
            if kind != self.KIND:
                raise RunFolderError(
                    f"nothing to resume: {self.path} holds "
                    f"{_kind_phrase(kind) if kind else 'no folder written by ' + self.command}"
                )
            self.lock()
            return
        self.lock()
        try:
            self._check_new(overwrite)
        except RunFolderError:
            self.abandon()
            raise
        self._fresh = True

    @property
    def command(self) -> str:
        return COMMANDS.get(self.KIND, "fooling")

    def _check_new(self, overwrite: bool) -> None:
        entries = folder_entries(self.path)
        if not entries:
            return
        kind = folder_kind(self.path)
        if kind is not None and kind != self.KIND:
            raise RunFolderError(
                f"{self.path} holds {_kind_phrase(kind)}, not {_a(self.KIND)}: {self.command} never "
                "writes into another command's folder; choose another folder"
            )
        if not overwrite:
            if kind == self.KIND:
                raise RunFolderError(
                    f"{self.path} holds another {self.KIND}; {self.RESUME_HINT or 'pass '}overwrite=True to replace it"
                )
            raise RunFolderError(f"{self.path} is not empty; choose an empty folder or pass overwrite=True")
        foreign = self.foreign_paths() if kind == self.KIND else entries
        if foreign:
            raise RunFolderError(
                f"{self.path} holds {foreign[0].relative_to(self.path)}, which {self.command} did not "
                f"write: overwrite=True replaces only {_a(self.KIND)}'s own files; move it or choose "
                "another folder"
            )
        self.clear()

    def foreign_paths(self) -> list[Path]:
        """What the folder holds that this kind does not write, depth first in name order (a symlink is never
        this kind's: the commands write plain files and folders)."""
        found: list[Path] = []
        for entry in folder_entries(self.path) if self.path.is_dir() else []:
            if entry.is_symlink():
                found.append(entry)
            elif entry.is_dir():
                found += self._foreign_in_dir(entry)
            elif not (entry.is_file() and self.owns_file(entry.name)):
                found.append(entry)
        return found

    @classmethod
    def foreign_in(cls, folder: Path) -> list[Path]:
        """What `folder`, a folder of this kind inside another kind's folder, holds that this kind does not
        write: everything, when its own files do not say it is of this kind."""
        entries = folder_entries(folder)
        if entries and folder_kind(folder) != cls.KIND:
            return entries[:1]
        return cls(folder).foreign_paths()

    def owns_file(self, name: str) -> bool:
        return name in self.FILES or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.PATTERNS)

    def _foreign_in_dir(self, folder: Path) -> list[Path]:
        """What a folder of this kind's (one of DIRS) holds that this kind does not write."""
        if folder.name not in self.DIRS:
            return [folder]
        patterns = self.DIR_ENTRIES.get(folder.name)
        if patterns is None:
            return []
        if isinstance(patterns, type):  # a folder of another kind inside this one (an evolve run, say)
            return patterns.foreign_in(folder)
        return [
            p
            for p in folder_entries(folder)
            if p.is_symlink()
            or not p.is_file()
            or not any(fnmatch.fnmatchcase(p.name, pattern) for pattern in patterns)
        ]

    # ----------------------------------------------------------------------------------------------
    # One process at a time
    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_NAME

    def lock(self) -> None:
        """Make this process the folder's only writer: an exclusive flock on its lock file, which records the
        pid and host. Another live process holding it is a RunFolderBusy naming that pid; a lock left by a
        process that died is free again (the kernel drops a flock with its process; where flock is not
        supported, a recorded pid that no longer runs on this host counts as stale). Held until
        :meth:`release` or the end of the process; taking it again in the same process is a no-op."""
        if not self.path.exists():
            created = self.path.absolute()
            while not created.parent.exists():
                created = created.parent
            self.path.mkdir(parents=True, exist_ok=True)
            self._created = self._created or created
        key = os.path.realpath(self.path)
        if key in _HELD:
            return
        have_flock = True
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _lock_owner(fd)
                os.close(fd)
                raise RunFolderBusy(self._busy_message(owner)) from None
            except OSError:  # no flock on this filesystem: the recorded pid decides, below
                have_flock = False
                break
            try:  # the holder may have removed the file between our open and our flock: lock the new one
                if os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            holder = _lock_owner(fd).split()  # pid and host
            if (
                not have_flock
                and len(holder) == 2
                and holder[0].isdigit()
                and int(holder[0]) != os.getpid()
                and (holder[1] != socket.gethostname() or _pid_alive(int(holder[0])))
            ):
                raise RunFolderBusy(self._busy_message(" ".join(holder)))
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        _HELD[key] = fd
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of writers that were killed mid-write (`_files.atomic_write_bytes` names them
        .<file>.<pid>.<thread>.tmp): with the lock held, no other writer of this folder is left."""
        for folder in (self.path, *(self.path / d for d in self.DIRS)):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    if _TEMPORARY.match(tmp.name):
                        tmp.unlink(missing_ok=True)

    def _busy_message(self, owner: str) -> str:
        pid, _, host = owner.partition(" ")
        who = (
            f"process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")
            if pid
            else "another process"
        )
        return f"{self.path} is in use by {who}: one process writes a run folder at a time; wait for it or stop it"

    def release(self) -> None:
        """Give the lock up and remove the lock file (a process that opened it meanwhile sees that the file it
        locked is gone and locks the new one)."""
        _release(os.path.realpath(self.path))

    def holds_lock(self) -> bool:
        return os.path.realpath(self.path) in _HELD

    def owned_paths(self) -> list[Path]:
        """The artefacts of this kind of folder that exist now."""
        paths = [self.path / name for name in (*self.FILES, *self.DIRS)]
        paths += [p for pattern in self.PATTERNS for p in sorted(self.path.glob(pattern))]
        return [p for p in paths if p.exists()]

    def clear(self) -> None:
        """Remove the artefacts of a previous run (and nothing else: :meth:`prepare` checked that the folder holds
        nothing this kind does not write)."""
        for path in self.owned_paths():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    #: the files a command writes before any result (a folder holding only these holds no finished work)
    SETUP_FILES: tuple[str, ...] = ("config.json",)

    def abandon(self) -> None:
        """After a command failed: when the folder holds no result yet (only SETUP_FILES), remove what it holds
        and the folders :meth:`lock` created, and give the lock up. A folder holding anything else is left."""
        if not self.path.is_dir() or any(
            p.name not in self.SETUP_FILES or not p.is_file() or p.is_symlink() for p in folder_entries(self.path)
        ):
            self.release()
            return
        if self._fresh and self.holds_lock():  # a resumed run's setup files stay: only what this run wrote goes
            for entry in folder_entries(self.path):
                entry.unlink()
        self.release()
        self._remove_created()
        self._fresh = False

    def _remove_created(self) -> None:
        """Remove the folders :meth:`lock` created, innermost first, while they are empty."""
        if self._created is None:
            return
        folder = self.path.absolute()
        while True:
            try:
                folder.rmdir()
            except OSError:  # not empty (someone else's files appeared) or already gone
                break
            if folder == self._created:
                break
            folder = folder.parent
        self._created = None

    # ----------------------------------------------------------------------------------------------
    def write_config(self, config: Mapping[str, Any]) -> None:
        atomic_write_text(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def read_config(self) -> dict[str, Any]:
        """config.json, checked to hold a configuration's shape (:func:`check_config_shape`)."""
        config = read_json_object(self.config_path, f"the configuration of a {self.KIND}")
        check_config_shape(config, self.config_path)
        return config

    def write_metrics(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite metrics.csv from the given rows (on start and resume)."""
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        atomic_write_text(self.metrics_path, buf.getvalue())

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        new = not self.metrics_path.exists() or self.metrics_path.stat().st_size == 0
        with open(self.metrics_path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    # ----------------------------------------------------------------------------------------------
    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        """`state` as a checkpoint: the magic line, a JSON header line (format, version, payload size and
        SHA-256), then the torch payload; written atomically."""
        buf = io.BytesIO()
        import torch  # here, not above: reading a finished run (fooling report) needs no torch

        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, buf)
        payload = buf.getvalue()
        header = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        atomic_write_bytes(self.checkpoint_path, CHECKPOINT_MAGIC + json.dumps(header).encode() + b"\n" + payload)

    def load_checkpoint(self, required: Iterable[str] = ()) -> dict[str, Any]:
        """The checkpoint's state, after checking its header, size and checksum (version 2) or that it is a
        fooling_ext checkpoint (version 1). A damaged file is a RunFolderError naming it."""
        path = self.checkpoint_path
        if not path.exists():
            raise RunFolderError(f"no checkpoint at {path}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RunFolderError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
        payload = data
        if data.startswith(CHECKPOINT_MAGIC):
            head, newline, payload = data[len(CHECKPOINT_MAGIC) :].partition(b"\n")
            try:
                header = json.loads(head.decode()) if newline else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                header = None
            if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
                raise RunFolderError(f"checkpoint {path} is damaged: its header is unreadable")
            if header.get("version") != CHECKPOINT_VERSION:
                raise RunFolderError(
                    f"{path} has checkpoint version {header.get('version')}, "
                    f"this build reads 1 and {CHECKPOINT_VERSION}"
                )
            if header.get("size") != len(payload):
                raise RunFolderError(
                    f"checkpoint {path} is truncated or damaged: {len(payload)} bytes of payload, "
                    f"its header says {header.get('size')}"
                )
            if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
                raise RunFolderError(f"checkpoint {path} is damaged: its content does not match its checksum")
        import torch

        try:
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for truncated or garbled zips
            raise RunFolderError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc})") from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise RunFolderError(f"{path} is not a fooling_ext checkpoint")
        expected = CHECKPOINT_VERSION if payload is not data else 1
        if state.get("version") != expected:
            raise RunFolderError(f"{path} has checkpoint version {state.get('version')}, expected {expected}")
        missing = [k for k in required if k not in state]
        if missing:
            raise RunFolderError(f"checkpoint {path} is incomplete: missing {', '.join(missing)}")
        return state


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _kind_phrase(kind: str) -> str:
    return f"{_a(kind)} (written by {COMMANDS[kind]})"
