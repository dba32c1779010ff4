"""What a gallery shows, read from folders on disk: evolve runs (archive.npz, or the checkpoint of a run in
progress), gradient-ascent runs, sweeps (sweep.json and their finished runs) and analyses (analysis.json).
Everything is read with the package's own readers; a folder that is none of these, or a file that cannot be
read, is a :class:`GalleryError` naming the folder or the file. No file is read from outside the folders given: a
link (symbolic link) that leads out of its run, sweep or analysis folder is refused, naming it, so a folder
from someone else cannot make the gallery copy or show a file elsewhere on this machine."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fooling_ext.runs.archive_file import ARCHIVE_FORMAT, read_archive
from fooling_ext.runs.folder import RunFolder

CELL_FIELDS = ("confidence", "occupied", "generation", "elite_id", "parent_id")
CPPN_FIELDS = ("num_nodes", "num_edges", "node_activation", "edge_src", "edge_dst", "edge_weight")
IMAGE_FILE = re.compile(r"^class_(\d+)_.*\.png$")
LINEAGE_LIMIT = 40


class GalleryError(ValueError):
    """A folder the gallery cannot show, or a file in it that cannot be read; the message names it."""


@dataclass
class Entry:
    """One class of one run."""

    index: int
    name: str
    confidence: float  # -1: empty cell
    found: int | None = None  # generation found (evolve) or steps taken (gradient)
    elite_id: int | None = None
    parent_id: int | None = None
    row: int | None = None  # row in the run's image array
    file: Path | None = None  # the run's own PNG of it
    genome: dict[str, Any] | None = None

    @property
    def occupied(self) -> bool:
        return self.confidence >= 0


@dataclass
class Analysis:
    name: str
    path: Path
    kind: str
    summary: dict[str, Any]
    runs: list[Any]
    report: str | None
    figures: list[Path]
    tables: list[Path]


@dataclass
class Run:
    name: str
    path: Path
    kind: str  # "evolve" or "gradient"
    config: dict[str, Any]
    entries: list[Entry]
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    images: np.ndarray | None = None  # uint8 [K, C, H, W] (evolve)
    status: str = "finished"
    analyses: list[Analysis] = field(default_factory=list)
    _holders: dict[int, list[Entry]] | None = field(default=None, repr=False)

    @property
    def found_label(self) -> str:
        return "steps" if self.kind == "gradient" else "generation found"

    @property
    def encoding(self) -> str | None:
        return (self.config.get("encoding") or {}).get("encoding")

    @property
    def color(self) -> str | None:
        return (self.config.get("encoding") or {}).get("color")

    @property
    def batch(self) -> int | None:
        batch = (self.config.get("run") or {}).get("batch")
        return int(batch) if batch else None

    def image(self, entry: Entry) -> np.ndarray:
        """The class's uint8 [C, H, W] image from the archive (read from archive.npz on first use)."""
        if self.images is None:
            archive = inside(self.path, self.path / "archive.npz")
            images = read_archive(archive, ("images",))[1]["images"]
            if len(images) != len(self.entries) or images.dtype != np.uint8 or images.ndim != 4:
                raise GalleryError(
                    f"{archive}: images must be uint8 [classes, C, H, W], got {images.dtype} {list(images.shape)}"
                )
            self.images = images
        return self.images[entry.row]

    def file(self, name: str) -> Path | None:
        path = self.path / name
        return inside(self.path, path) if path.is_file() else None

    def holders(self) -> dict[int, list[Entry]]:
        """elite id -> the occupied cells whose elite it is (computed once)."""
        if self._holders is None:
            self._holders = {}
            for e in self.entries:
                if e.elite_id is not None and e.elite_id >= 0 and e.occupied:
                    self._holders.setdefault(e.elite_id, []).append(e)
        return self._holders

    def lineage(self, entry: Entry) -> list[dict[str, Any]]:
        """The elite's ancestors as far as the archive knows them: each parent id, the generation it was born
        in (id // batch) and the cells whose elite it still is (whose parent id continues the chain)."""
        holders = self.holders()
        chain: list[dict[str, Any]] = []
        seen: set[int] = set()
        pid = entry.parent_id
        while pid is not None and pid >= 0 and pid not in seen and len(chain) < LINEAGE_LIMIT:
            seen.add(pid)
            cells = holders.get(pid, [])
            chain.append({"id": pid, "generation": pid // self.batch if self.batch else None, "cells": cells})
            pid = cells[0].parent_id if cells else None
        return chain


@dataclass
class Sweep:
    name: str
    path: Path
    spec: dict[str, Any]
    rows: list[dict[str, Any]]  # per run: name, folder, status and the summary's figures
    runs: list[Run]


def inside(root: Path, path: Path) -> Path:
    """`path`, once it is known to lie inside `root` with every link resolved; a GalleryError otherwise."""
    real = path.resolve()
    if not real.is_relative_to(root.resolve()):
        raise GalleryError(
            f"{path} leads to {real}, outside {root}: the gallery reads no file from outside the folders it is given"
        )
    return path


def _read_json(path: Path, what: str, root: Path) -> dict[str, Any]:
    """A JSON object from a file inside `root` (every file the gallery reads as JSON holds one)."""
    inside(root, path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise GalleryError(f"cannot read {what} {path}: {exc}") from exc
    return _object(data, f"{what} {path}")


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise GalleryError(f"{what} is not a JSON object ({{...}}) but {type(data).__name__}")
    return data


def _number(text: str) -> float | int | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.csv as rows of numbers; a line cut short by a running writer is left out."""
    if not path.is_file():
        return []
    inside(path.parent, path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        if None in row.values() or None in row:
            continue
        out.append({k: _number(v) for k, v in row.items()})
    return out


def _class_names(config: dict[str, Any], path: Path) -> list[str]:
    names = (config.get("classifier") or {}).get("class_names")
    if not isinstance(names, list) or not names:
        raise GalleryError(f"{path / 'config.json'} names no classes (classifier.class_names)")
    return [str(n) for n in names]


def _image_files(folder: Path, root: Path) -> dict[int, Path]:
    files = {}
    if folder.is_dir():
        for p in folder.iterdir():
            m = IMAGE_FILE.match(p.name)
            if m and p.is_file():
                files[int(m.group(1))] = inside(root, p)
    return files


def _genomes(fields: dict[str, np.ndarray], num_outputs: int) -> list[dict[str, Any]]:
    """The CPPN genome of every cell as a dict (num_outputs, activation names, edges)."""
    from fooling_ext.core.cppn_text import ACTIVATIONS, NUM_INPUTS

    genomes = []
    for k in range(len(fields["num_nodes"])):
        n, m = int(fields["num_nodes"][k]), int(fields["num_edges"][k])
        acts = fields["node_activation"][k, :n].tolist()
        if (
            not NUM_INPUTS + num_outputs <= n <= fields["node_activation"].shape[1]
            or not 0 <= m <= fields["edge_src"].shape[1]
        ):
            raise GalleryError(f"cell {k}: genome with {n} nodes and {m} edges does not fit its arrays")
        names = ["input"] * NUM_INPUTS + [
            ACTIVATIONS[a] if 0 <= a < len(ACTIVATIONS) else f"unknown({a})" for a in acts[NUM_INPUTS:]
        ]
        edges = [
            [int(s), int(d), float(w)]
            for s, d, w in zip(
                fields["edge_src"][k, :m].tolist(),
                fields["edge_dst"][k, :m].tolist(),
                fields["edge_weight"][k, :m].tolist(),
            )
        ]
        genomes.append({"num_outputs": num_outputs, "activations": names, "edges": edges})
    return genomes


def load_evolve_run(path: Path, name: str) -> Run:
    folder = RunFolder(path)
    for file in (folder.archive_path, folder.checkpoint_path):
        if file.exists():
            inside(path, file)
    if folder.archive_path.is_file():
        genome_keys = tuple(f"genome_{f}" for f in CPPN_FIELDS)
        try:
            with np.load(folder.archive_path) as z:
                has_cppn = all(k in z.files for k in genome_keys)
        except Exception:  # read_archive below names the problem
            has_cppn = False
        # The reader checks the whole file's checksum, images included: take them in the same read.
        meta, cells = read_archive(folder.archive_path, CELL_FIELDS + ("images",) + (genome_keys if has_cppn else ()))
        if meta.get("format") != ARCHIVE_FORMAT:
            raise GalleryError(f"{folder.archive_path} is not a fooling_ext archive (format {meta.get('format')!r})")
        config = _object(meta.get("config") or {}, f"the configuration in {folder.archive_path}")
        if not config and folder.config_path.is_file():
            config = _read_json(folder.config_path, "run configuration", path)
        names = [str(n) for n in meta.get("class_names", [])] or _class_names(config, path)
        images = cells["images"]
        genome_fields = {f: cells[f"genome_{f}"] for f in CPPN_FIELDS} if has_cppn else None
        status = "finished"
    else:
        state = folder.load_checkpoint(required=("archive", "generation", "config"))
        config, arch = _object(state["config"], f"the configuration in {folder.checkpoint_path}"), state["archive"]
        names = _class_names(config, path)
        cells = {f: arch[f].numpy() for f in CELL_FIELDS}
        images = arch["images"].numpy()
        genome_fields = None
        if all(f"genome.{f}" in arch for f in CPPN_FIELDS):
            genome_fields = {f: arch[f"genome.{f}"].numpy() for f in CPPN_FIELDS}
        status = f"in progress or stopped after generation {int(state['generation'])}"
    k = len(names)
    if any(len(cells[f]) != k for f in CELL_FIELDS) or (images is not None and len(images) != k):
        raise GalleryError(f"{path}: the archive's arrays do not have one row per class ({k} classes)")
    channels = int((config.get("encoding") or {}).get("channels") or (images.shape[1] if images is not None else 3))
    genomes = _genomes(genome_fields, channels) if genome_fields is not None else [None] * k
    files = _image_files(folder.images_dir, path)
    entries = []
    for i, cname in enumerate(names):
        occ = bool(cells["occupied"][i])
        entries.append(
            Entry(
                index=i,
                name=cname,
                confidence=float(cells["confidence"][i]) if occ else -1.0,
                found=int(cells["generation"][i]) if occ else None,
                elite_id=int(cells["elite_id"][i]) if occ else None,
                parent_id=int(cells["parent_id"][i]) if occ else None,
                row=i,
                file=files.get(i),
                genome=genomes[i] if occ else None,
            )
        )
    summary = _read_json(path / "summary.json", "run summary", path) if (path / "summary.json").is_file() else {}
    return Run(name, path, "evolve", config, entries, summary, read_metrics(folder.metrics_path), images, status)


def load_gradient_run(path: Path, name: str, config: dict[str, Any]) -> Run:
    if not (path / "summary.json").is_file():
        raise GalleryError(f"{path} is a gradient run without summary.json (not finished?)")
    summary = _read_json(path / "summary.json", "run summary", path)
    names = _class_names(config, path)
    files = _image_files(path / "images", path)
    entries = []
    rows = summary.get("classes", [])
    if not isinstance(rows, list):
        raise GalleryError(f"{path / 'summary.json'}: classes is not a list")
    for row in rows:
        try:
            k = int(row["class"])
            entries.append(
                Entry(
                    index=k,
                    name=str(row.get("name", names[k] if k < len(names) else k)),
                    confidence=float(row["confidence"]),
                    found=row.get("steps"),
                    file=files.get(k),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GalleryError(f"{path / 'summary.json'}: unreadable class entry {row!r}") from exc
    missing = [e.index for e in entries if e.file is None]
    if missing:
        raise GalleryError(f"{path / 'images'} lacks the PNG of class {missing[0]} (class_<k>_<name>.png)")
    return Run(name, path, "gradient", config, entries, summary)


def load_analysis(path: Path, name: str) -> Analysis:
    info = _read_json(path / "analysis.json", "analysis", path)
    if not isinstance(info, dict) or info.get("format") != "fooling_ext.analysis":
        raise GalleryError(f"{path / 'analysis.json'} is not a fooling_ext analysis (format field)")
    report = None
    if (path / "report.md").is_file():
        report = inside(path, path / "report.md").read_text(errors="replace")
    figures = [inside(path, p) for p in sorted(path.glob("*.png")) + sorted(path.glob("examples/*.png")) if p.is_file()]
    summary = info.get("summary")
    if not isinstance(summary, dict):
        summary = {}
    runs = info.get("runs")
    return Analysis(
        name,
        path,
        str(info.get("analysis", "analysis")),
        summary,
        [str(r) for r in runs] if isinstance(runs, list) else [],
        report,
        figures,
        [inside(path, p) for p in sorted(path.glob("*.csv")) if p.is_file()],
    )


def load_sweep(path: Path, name: str) -> Sweep:
    info = _read_json(path / "sweep.json", "sweep", path)
    if (
        not isinstance(info, dict)
        or info.get("format") != "fooling_ext.sweep"
        or not isinstance(info.get("runs"), list)
    ):
        raise GalleryError(f"{path / 'sweep.json'} is not a fooling_ext sweep (format and runs fields)")
    summary = _read_json(path / "summary.json", "sweep summary", path) if (path / "summary.json").is_file() else {}
    runs_figures = summary.get("runs")
    if not isinstance(runs_figures, list):
        runs_figures = []
    figures = {r.get("name"): r for r in runs_figures if isinstance(r, dict)}
    rows, runs = [], []
    for r in info["runs"]:
        row = {**figures.get(r.get("name"), {}), **r}
        rows.append(row)
        run_path = path / str(r.get("folder", ""))
        if r.get("status") == "done" and run_path.is_dir():
            if run_path.resolve() == path.resolve():
                raise GalleryError(f"{path / 'sweep.json'}: run {r.get('name')!r} names the sweep's own folder")
            inside(path, run_path)
            runs.append(load_folder(run_path, f"{name}/{r.get('name')}"))
    return Sweep(name, path, info.get("spec") or {}, rows, runs)


def find_analyses(path: Path, prefix: str) -> list[Analysis]:
    """Analysis folders inside a run or sweep folder (one or two levels down)."""
    found = sorted({p.parent for pattern in ("*/analysis.json", "*/*/analysis.json") for p in path.glob(pattern)})
    return [load_analysis(inside(path, p), f"{prefix}/{p.relative_to(path).as_posix()}") for p in found]


def _is_run(path: Path) -> bool:
    return any((path / f).is_file() for f in ("config.json", "archive.npz", "checkpoint.pt"))


def load_folder(path: Path, name: str) -> Run:
    """An evolve or gradient run folder, with the analyses found inside it."""
    config = _read_json(path / "config.json", "run configuration", path) if (path / "config.json").is_file() else None
    if config is not None and config.get("method") == "gradient":
        run = load_gradient_run(path, name, config)
    elif (path / "archive.npz").is_file() or (path / "checkpoint.pt").is_file():
        run = load_evolve_run(path, name)
    else:
        raise GalleryError(
            f"{path} is not a run folder: it holds no archive.npz or checkpoint.pt, and no "
            "config.json of a gradient run"
        )
    for file in ("report.txt", "confidence.png"):  # copied or shown later: refused now, before anything is written
        run.file(file)
    run.analyses = find_analyses(path, name)
    return run


@dataclass
class Sources:
    runs: list[Run] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)
    analyses: list[Analysis] = field(default_factory=list)

    order: list[Run | Sweep] = field(default_factory=list)  # runs and sweeps in the order they were given

    def all_runs(self) -> list[Run]:
        return [r for item in self.order for r in (item.runs if isinstance(item, Sweep) else [item])]

    def all_analyses(self) -> list[Analysis]:
        return self.analyses + [a for r in self.all_runs() for a in r.analyses]


def load_sources(paths) -> Sources:
    """Read every folder given: a run (evolve or gradient), a sweep, or an analysis."""
    sources = Sources()
    names: set[str] = set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise GalleryError(f"{path}: no such folder")
        if not path.is_dir():
            raise GalleryError(f"{path} is not a folder (give a run, sweep or analysis folder)")
        name = path.resolve().name or "run"
        base, n = name, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.add(name)
        if (path / "sweep.json").is_file():
            sources.sweeps.append(load_sweep(path, name))
            sources.order.append(sources.sweeps[-1])
            sources.analyses.extend(find_analyses(path, name))
        elif (path / "analysis.json").is_file():
            sources.analyses.append(load_analysis(path, name))
        else:
            if not _is_run(path) and _is_run(path / "after"):  # fooling imagenet-fooling-class: its new run
                path, name = inside(path, path / "after"), f"{name}/after"
            sources.runs.append(load_folder(path, name))
            sources.order.append(sources.runs[-1])
    if not sources.all_runs() and not sources.analyses:
        raise GalleryError("nothing to show: the folders hold no finished run and no analysis")
    return sources
