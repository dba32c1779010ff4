"""The gallery as files: a static site that works offline from disk (no server, nothing fetched from the
network), written with Jinja2 templates shipped in the package (``gallery/templates``).

    index.html            every class as a lazy-loaded tile; sort, filter, confidence threshold, run choice
    classes/<class>.html  one page per class: each run's image side by side, confidence, generation found,
                          lineage, the CPPN genome as an SVG graph and as text
    runs/<run>/           the run's page (summary, confidence plot, report) and its images (img/<class>.png)
    sweeps/<sweep>/       a sweep's page: its specification and every run with its status and figures
    analyses/<name>/      an analysis: summary, report, figures, tables
    gallery.css, gallery.js, gallery.json (what was built from what)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from PIL import Image

from fooling_ext._files import atomic_write_text
from fooling_ext._version import __version__
from fooling_ext.core.cppn_text import format_genome
from fooling_ext.gallery.genome_svg import genome_svg
from fooling_ext.gallery.markdown import render_markdown
from fooling_ext.gallery.sources import Analysis, Entry, GalleryError, Run, Sources, Sweep, load_sources
from fooling_ext.runs.folder import LOCK_NAME, RunFolder, RunFolderError
from fooling_ext.runs.images import safe_name, to_pil
from fooling_ext.runs.plots import plot_metrics
from fooling_ext.runs.report import format_confidence

TEMPLATES = Path(__file__).resolve().parent / "templates"
GALLERY_FORMAT = "fooling_ext.gallery"
TILE = 128  # CSS pixels of an index tile's image
CAPTION = 32  # characters of a tile's caption: what two lines of a tile hold
SUMMARY_KEYS = (
    ("model", "model"),
    ("generations", "generations"),
    ("evaluations", "evaluations"),
    ("seconds", "seconds"),
    ("median", "median confidence"),
    ("mean", "mean confidence"),
    ("n99", "classes >= 99%"),
    ("n9999", "classes >= 99.99%"),
)


# Every folder and file a gallery writes (paths relative to its folder); anything else in it is not its own.
_OWN_DIRS = re.compile(r"classes|(runs|sweeps|analyses)(/[^/]+)?|runs/[^/]+/img|analyses/[^/]+/examples")
_OWN_FILES = re.compile(
    r"index\.html|gallery\.(css|js|json)|\.[^/]+\.\d+\.\d+\.tmp|classes/[^/]+\.html"
    r"|runs/[^/]+/(index\.html|confidence\.png|img/\d+\.png)|sweeps/[^/]+/index\.html"
    r"|analyses/[^/]+/(index\.html|[^/]+\.(png|csv)|examples/[^/]+\.png)"
)


class GalleryFolder(RunFolder):
    """The output folder: one writer at a time, as for a run folder; an earlier gallery is replaced only with
    overwrite, and only when the folder holds nothing but what a gallery writes."""

    KIND = "gallery"
    RESUME_HINT = ""  # a gallery is built again, not resumed
    FILES = ("gallery.json", "index.html", "gallery.css", "gallery.js")
    DIRS = ("classes", "runs", "sweeps", "analyses")
    PATTERNS = ()

    def holds_run(self) -> bool:
        return bool(self.owned_paths())

    def foreign(self) -> Path | None:
        """The first entry (in name order, depth first) that a gallery does not write; a link always counts."""

        def walk(folder: str, rel: str) -> Path | None:
            with os.scandir(folder) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    name = rel + entry.name
                    if entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
                        return Path(entry.path)
                    if entry.is_dir():
                        found = walk(entry.path, name + "/") if _OWN_DIRS.fullmatch(name) else Path(entry.path)
                        if found is not None:
                            return found
                    elif name != LOCK_NAME and not _OWN_FILES.fullmatch(name):
                        return Path(entry.path)
            return None

        return walk(str(self.path), "") if self.path.is_dir() else None

    def prepare(self, *, resume: bool = False, overwrite: bool = False) -> None:
        """Take the lock; then the folder must be empty, or hold an earlier gallery and nothing else, which
        `overwrite` removes. Refused: a folder holding anything a gallery does not write (named)."""
        if resume:
            raise RunFolderError("a gallery is not resumed: build it again")
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} exists and is not a folder")
        self.lock()
        try:
            foreign = self.foreign()
            if foreign is not None:
                what = "holds a gallery and also" if self.holds_run() else "is not empty: it holds"
                raise RunFolderError(
                    f"{self.path} {what} {foreign.relative_to(self.path)}, which a gallery does "
                    "not write; choose an empty folder (overwrite=True replaces only a gallery)"
                )
            if self.holds_run():
                if not overwrite:
                    raise RunFolderError(f"{self.path} holds an earlier gallery; pass overwrite=True to replace it")
                self.clear()
        except BaseException:
            self.release()
            raise


def _slugs(names: Sequence[str]) -> list[str]:
    out, seen = [], set()
    for name in names:
        base = safe_name(name.replace("/", "-"), 60)
        slug, n = base, 2
        while slug in seen:
            slug, n = f"{base}-{n}", n + 1
        seen.add(slug)
        out.append(slug)
    return out


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["conf"] = lambda c: "empty" if c is None or c < 0 else format_confidence(float(c))
    env.filters["figure"] = _figure
    return env


def _figure(value: Any) -> str:
    """A figure as a table shows it: numbers to 6 significant digits, lists and dicts as JSON."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _write_image(run: Run, entry: Entry, folder: Path) -> str:
    """One class's image, img/<k>.png: the run's own PNG, or encoded from its archive; its path relative to the
    run's folder. The index shows these files as its tiles' images: they load lazily, as they scroll into view,
    so even 1000 classes of 256 x 256 images cost only the visible ones."""
    image = f"img/{entry.index}.png"
    if entry.file is not None:
        shutil.copyfile(entry.file, folder / image)
    else:
        to_pil(run.image(entry)).save(folder / image, compress_level=1)
    return image


def _write_images(run: Run, folder: Path) -> dict[int, tuple[str, int]]:
    """Every occupied class's image (see _write_image), on a thread per core (file copies and Pillow release
    the GIL); class index -> (image path, larger side in pixels: the same for every image of a run)."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    entries = [e for e in run.entries if e.occupied]
    if not entries:
        return {}
    if run.images is not None:
        side = max(run.images.shape[2:])
    elif entries[0].file is not None:
        with Image.open(entries[0].file) as pil:  # reads the header only
            side = max(pil.size)
    else:
        side = max(run.image(entries[0]).shape[1:])
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        media = list(pool.map(lambda e: _write_image(run, e, folder), entries))
    return {e.index: (m, side) for e, m in zip(entries, media)}


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


class _Builder:
    def __init__(self, sources: Sources, out: Path, given: Sequence[str]):
        self.sources, self.out, self.given = sources, out, given
        self.env = _environment()
        self.runs = sources.all_runs()
        self.run_slugs = dict(zip((r.name for r in self.runs), _slugs([r.name for r in self.runs])))
        analyses = sources.all_analyses()
        self.analysis_slugs = dict(zip((a.name for a in analyses), _slugs([a.name for a in analyses])))
        self.sweep_slugs = dict(zip((s.name for s in sources.sweeps), _slugs([s.name for s in sources.sweeps])))
        keys: dict[tuple[int, str], None] = {}
        for run in self.runs:
            for e in run.entries:
                keys.setdefault((e.index, e.name), None)
        self.keys = sorted(keys)
        pages = _slugs([f"{k:04d}-{name}" for k, name in self.keys])
        self.class_pages = {key: f"classes/{page}.html" for key, page in zip(self.keys, pages)}
        self.media: dict[str, dict[int, tuple[str, int]]] = {}
        self.lookup = [{(e.index, e.name): e for e in run.entries} for run in self.runs]

    def render(self, template: str, path: Path, **context: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        depth = len(path.relative_to(self.out).parts) - 1
        html = self.env.get_template(template).render(root="../" * depth, version=__version__, **context)
        path.write_text(html)

    def run_link(self, run: Run) -> str:
        return f"runs/{self.run_slugs[run.name]}/index.html"

    def build(self) -> dict[str, Any]:
        for name in ("gallery.css", "gallery.js"):
            _copy(TEMPLATES / name, self.out / name)
        for run in self.runs:
            self.media[run.name] = _write_images(run, self.out / "runs" / self.run_slugs[run.name])
        for run in self.runs:
            self.run_page(run)
        for sweep in self.sources.sweeps:
            self.sweep_page(sweep)
        for analysis in self.sources.all_analyses():
            self.analysis_page(analysis)
        self.class_pages_write()
        return self.index_page()

    # ----------------------------------------------------------------------------------------------
    def run_page(self, run: Run) -> None:
        folder = self.out / "runs" / self.run_slugs[run.name]
        plot = None
        if run.file("confidence.png"):
            _copy(run.path / "confidence.png", folder / "confidence.png")
            plot = "confidence.png"
        elif run.metrics:
            plot_metrics(
                folder / "confidence.png",
                run.metrics,
                run.name,
                x_label="step" if run.kind == "gradient" else "generation",
            )
            plot = "confidence.png"
        report_file = run.file("report.txt")
        report = report_file.read_text(errors="replace") if report_file else None
        figures = [
            (
                label,
                format_confidence(float(run.summary[key])) if key in ("median", "mean") else _figure(run.summary[key]),
            )
            for key, label in SUMMARY_KEYS
            if key in run.summary
        ]
        # A setting the summary already shows is not repeated; one that differs (a run stopped early) is
        # labelled as the setting.
        shown = dict(figures)
        config = [
            (f"{label} (setting)" if label in shown else label, value)
            for label, value in _config_lines(run)
            if shown.get(label) != value
        ]
        self.render(
            "run.html",
            folder / "index.html",
            run=run,
            figures=figures,
            plot=plot,
            report=report,
            analyses=[(a, self.analysis_slugs[a.name]) for a in run.analyses],
            config=config,
        )

    def sweep_page(self, sweep: Sweep) -> None:
        links = {r.name: self.run_link(r) for r in sweep.runs}
        rows = [
            {key: row.get(key) for key in ("name", "status", "median", "classes_ge_99", "seconds")}
            | {"link": links.get(f"{sweep.name}/{row.get('name')}")}
            for row in sweep.rows
        ]
        self.render(
            "sweep.html",
            self.out / "sweeps" / self.sweep_slugs[sweep.name] / "index.html",
            sweep=sweep,
            rows=rows,
            spec=json.dumps(sweep.spec, indent=2, sort_keys=True),
        )

    def analysis_page(self, analysis: Analysis) -> None:
        folder = self.out / "analyses" / self.analysis_slugs[analysis.name]
        files = []
        for path in analysis.figures + analysis.tables:
            rel = path.relative_to(analysis.path).as_posix()
            _copy(path, folder / rel)
            files.append((rel, quote(rel)))  # quoted: a file name is never read as a URL scheme ("x:y.png")
        report = render_markdown(analysis.report) if analysis.report is not None else None
        self.render(
            "analysis.html",
            folder / "index.html",
            analysis=analysis,
            report=report,
            figures=[f for f in files if f[0].endswith(".png")],
            tables=[f for f in files if f[0].endswith(".csv")],
            summary=[(_label(keys), value) for keys, value in _flatten(analysis.summary)],
            runs=self.analysis_runs(analysis),
        )

    def analysis_runs(self, analysis: Analysis) -> list[tuple[str, str | None]]:
        """Each run the analysis names, with the link to its page where the gallery shows it. The analysis
        records the paths as they were given to it (relative to a folder the gallery cannot know), so a run
        matches when its folder ends with the recorded path's folder names, and only one run does."""
        out = []
        for given in analysis.runs:
            parts = tuple(p for p in PurePath(str(given)).parts if p not in ("/", ".", ".."))
            matches = [r for r in self.runs if parts and r.path.resolve().parts[-len(parts) :] == parts]
            out.append((str(given), self.run_link(matches[0]) if len(matches) == 1 else None))
        return out

    def class_pages_write(self) -> None:
        for n in range(len(self.keys)):
            self.class_page(n)

    def class_page(self, n: int) -> None:
        key = self.keys[n]
        columns = []
        for run, cells in zip(self.runs, self.lookup):
            e = cells.get(key)
            if e is None:
                continue
            media = self.media[run.name].get(e.index)
            slug = self.run_slugs[run.name]
            lineage = (
                [
                    {**step, "cells": [(c, self.class_pages[(c.index, c.name)]) for c in step["cells"]]}
                    for step in run.lineage(e)
                ]
                if e.parent_id is not None
                else []
            )
            held = run.holders().get(e.elite_id, []) if e.elite_id is not None else []
            twins = [(c, self.class_pages[(c.index, c.name)]) for c in held if c is not e]
            columns.append(
                {
                    "run": run,
                    "entry": e,
                    "run_link": self.run_link(run),
                    "image": f"runs/{slug}/{media[0]}" if media else None,
                    "side": media[1] if media else 0,
                    "lineage": lineage,
                    "twins": twins,
                    "svg": genome_svg(e.genome, color=run.color) if e.genome else None,
                    "genome_text": format_genome(e.genome) if e.genome else None,
                }
            )
        prev_page = self.class_pages[self.keys[n - 1]] if n > 0 else None
        next_page = self.class_pages[self.keys[n + 1]] if n + 1 < len(self.keys) else None
        self.render(
            "class.html",
            self.out / self.class_pages[key],
            key=key,
            columns=columns,
            prev_page=prev_page,
            next_page=next_page,
        )

    def index_page(self) -> dict[str, Any]:
        runs = [{"name": r.name, "found": r.found_label, "link": self.run_link(r)} for r in self.runs]
        classes, tiles = [], []
        for key in self.keys:
            per_run = []
            for run, cells in zip(self.runs, self.lookup):
                e = cells.get(key)
                media = self.media[run.name].get(e.index) if e is not None else None
                per_run.append(
                    None
                    if e is None
                    else [
                        round(e.confidence, 9),
                        e.found,
                        f"runs/{self.run_slugs[run.name]}/{media[0]}" if media else None,
                        media[1] if media else 0,
                    ]
                )
            first = next((i for i, v in enumerate(per_run) if v is not None), 0)
            classes.append({"k": key[0], "name": key[1], "page": self.class_pages[key], "r": per_run})
            tiles.append(
                {
                    "key": key,
                    "page": self.class_pages[key],
                    "run": first,
                    "cell": per_run[first],
                    "caption": caption(f"{key[0]}: {key[1]}"),
                }
            )
        data = script_json({"runs": runs, "classes": classes})
        sweeps = [(s, f"sweeps/{self.sweep_slugs[s.name]}/index.html") for s in self.sources.sweeps]
        analyses = [(a, f"analyses/{self.analysis_slugs[a.name]}/index.html") for a in self.sources.all_analyses()]
        self.render(
            "index.html",
            self.out / "index.html",
            runs=self.runs,
            run_rows=runs,
            tiles=tiles,
            data=data,
            sweeps=sweeps,
            analyses=analyses,
            thumb=TILE,
        )
        return {
            "format": GALLERY_FORMAT,
            "version": 1,
            "fooling_ext": __version__,
            "sources": [str(Path(g).resolve()) for g in self.given],
            "classes": len(self.keys),
            "runs": [
                {"name": r.name, "kind": r.kind, "path": str(r.path.resolve()), "page": self.run_link(r)}
                for r in self.runs
            ],
            "sweeps": [s.name for s in self.sources.sweeps],
            "analyses": [a.name for a in self.sources.all_analyses()],
        }


def _config_lines(run: Run) -> list[tuple[str, str]]:
    cfg = run.config
    found = []
    for label, section, key in (
        ("model", "classifier", "name"),
        ("encoding", "encoding", "encoding"),
        ("seed", "run", "seed"),
        ("children per generation", "run", "batch"),
        ("generations", "run", "generations"),
        ("image size", "run", "image_size"),
        ("insertion", "run", "insertion"),
        ("steps", "gradient", "steps"),
        ("target", "gradient", "target"),
    ):
        value = (cfg.get(section) or {}).get(key)
        if value is not None:
            found.append((label, "x".join(map(str, value)) if isinstance(value, list) else str(value)))
    return found


def _flatten(summary: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    rows = []
    for key, value in summary.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, (*prefix, str(key))))
        else:
            rows.append(((*prefix, str(key)), value))
    return rows


def _label(keys: Sequence[str]) -> str:
    """A summary key in words, as the analysis page shows it: ("pixel", "nearest_same") -> "pixel: nearest
    same", "share_after_ge99" -> "share after >= 99%" (the analyses name thresholds in percent so)."""
    words = [re.sub(r"(?:^|(?<=_))ge(\d+(?:\.\d+)?)$", r">= \1%", key).replace("_", " ").strip() or key for key in keys]
    return ": ".join(words)


def caption(text: str, limit: int = CAPTION) -> str:
    """`text` as a tile's caption: whole when it fits in `limit` characters, else cut at the last word
    boundary that leaves room for an ellipsis (a word longer than half the caption is cut where it must be)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rstrip().rfind(" ")
    if text[limit - 1].isalnum() and space >= limit // 2:
        head = head[:space]
    return head.rstrip(" ,;:-") + "\u2026"


def script_json(value: Any) -> str:
    """`value` as JSON to put inside a <script> element: "<", ">", "&" and the line separators U+2028 and
    U+2029 written as \\u escapes (JSON has them only inside strings), so no "</script>" or "<!--" can
    appear in it and end the element or hide the rest of the page."""
    text = json.dumps(value, separators=(",", ":"))  # ensure_ascii: U+2028 and U+2029 are escaped already
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build_gallery(runs: Sequence[str | Path], out: str | Path, *, overwrite: bool = False) -> Path:
    """Write the gallery of the given folders (runs of any kind, sweeps, analyses) into `out`; returns the
    path of its index.html. `out` must be empty or missing, or hold an earlier gallery (replaced only with
    `overwrite`)."""
    if not runs:
        raise GalleryError("give at least one run, sweep or analysis folder")
    if not str(out).strip():
        raise GalleryError("the output folder's name is empty: name a folder for the gallery")
    real = Path(out).resolve()
    for given in runs:
        source = Path(given).resolve()
        if source == real or source.is_relative_to(real):
            raise GalleryError(
                f"{out} is (or holds) the folder {given} that the gallery shows: write the gallery "
                "into a folder of its own"
            )
    sources = load_sources(runs)
    folder = GalleryFolder(out)
    folder.prepare(resume=False, overwrite=overwrite)  # takes the folder's lock: one writer at a time
    try:
        info = _Builder(sources, folder.path, [str(r) for r in runs]).build()
        atomic_write_text(folder.path / "gallery.json", json.dumps(info, indent=2) + "\n")
    finally:
        folder.release()
    return folder.path / "index.html"


def gallery_size(path: str | Path) -> int:
    """Bytes of every file under `path` (the whole site, for a gallery's folder)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
