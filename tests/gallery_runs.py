"""Folders for the gallery's tests and benchmark: a synthetic evolve run with many classes (CPPN genomes rendered
by the core, known confidences, generations and lineages) written with the package's own writers, and a sweep
and an analysis folder laid out as `fooling sweep` and `fooling analyze` write them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from genomes import random_population

from fooling_ext.core.render import render
from fooling_ext.runs.archive_file import write_archive
from fooling_ext.runs.folder import RunFolder
from fooling_ext.runs.images import save_class_images, to_uint8
from fooling_ext.runs.report import class_table, confidence_stats

ANIMALS = ("zebra", "otter", "heron", "lynx", "gecko", "walrus", "ibis", "marmot")
BATCH = 200
CHAIN = 10  # classes k, k+1, ..., k+9 (k a multiple of 10) descend one from the other


def class_names(classes: int) -> list[str]:
    return [f"{ANIMALS[k % len(ANIMALS)]} {k}" for k in range(classes)]


def is_empty(k: int) -> bool:
    return k % 97 == 96


def synthetic_cells(classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Per class: confidence (distinct, spread over the nines), occupied, generation, elite and parent ids.
    Within each chain of CHAIN classes, class k's parent is the elite of class k - 1 (found one generation
    earlier); the first of a chain comes from the initial population. The last class holds the same elite as
    the one before it (one image taking two cells). Every 97th class is empty."""
    rng = np.random.default_rng(seed)
    k = np.arange(classes)
    confidence = (1.0 - 10.0 ** -rng.uniform(0.0, 5.0, classes)).astype(np.float32)
    occupied = np.array([not is_empty(i) for i in k])
    generation = (k % CHAIN) * 3 + 1
    elite_id = generation * BATCH + (k // CHAIN) % BATCH
    parent_id = np.where(k % CHAIN == 0, -1, np.roll(elite_id, 1)).astype(np.int64)
    elite_id[-1], parent_id[-1], generation[-1] = elite_id[-2], parent_id[-2], generation[-2]
    confidence = np.where(occupied, confidence, -1.0).astype(np.float32)
    for arr in (generation, elite_id, parent_id):
        arr[~occupied] = -1
    return {
        "confidence": confidence,
        "occupied": occupied,
        "generation": generation.astype(np.int64),
        "elite_id": elite_id.astype(np.int64),
        "parent_id": parent_id,
    }


def synthetic_run(
    folder: Path,
    classes: int = 1000,
    side: int = 32,
    seed: int = 0,
    name: str = "synthetic",
    population=None,
    plot: bool = False,
) -> Path:
    """An evolve run folder as `fooling evolve` leaves it (config.json, archive.npz, images/, metrics.csv,
    report.txt, summary.json, and with `plot` confidence.png), of `classes` classes of colour CPPN images
    side x side: the renders of `population` (default: random genomes with 1 to 8 hidden nodes)."""
    folder = Path(folder)
    run = RunFolder(folder)
    run.prepare(resume=False, overwrite=False)
    names = class_names(classes)
    pop = (
        population
        if population is not None
        else random_population(classes, num_outputs=3, hidden=(1, 8), seed=seed, max_edges=128)
    )
    images = to_uint8(render(pop, side, side)).numpy()
    cells = synthetic_cells(classes, seed)
    generations = int(cells["generation"].max()) + 1
    config = {
        "fooling_ext": "test",
        "run": {
            "seed": seed,
            "batch": BATCH,
            "generations": generations,
            "image_size": [side, side],
            "insertion": "all",
        },
        "encoding": {"encoding": "cppn", "channels": 3, "height": side, "width": side, "color": "hsl"},
        "classifier": {"name": name, "description": "synthetic", "class_names": names, "num_classes": classes},
    }
    run.write_config(config)
    arrays = {f"genome_{k}": v.numpy() for k, v in pop.tensors().items()}
    arrays.update(images=images, **cells)
    write_archive(run.archive_path, arrays, {"class_names": names, "insertion": "all", "config": config})
    save_class_images(run.images_dir, images, cells["occupied"], names)
    conf0 = np.where(cells["occupied"], cells["confidence"], 0.0)
    metrics = []
    for g in range(generations):
        stats = confidence_stats(np.where(cells["generation"] <= g, conf0, 0.0))
        metrics.append(
            {
                "generation": g,
                **stats,
                "occupied": int((cells["generation"] <= g).sum()),
                "new_cells": 0,
                "improved_cells": 0,
                "evaluations": (g + 1) * BATCH,
                "seconds": g * 0.1,
            }
        )
    run.write_metrics(metrics)
    if plot:
        from fooling_ext.runs.plots import plot_metrics

        plot_metrics(folder / "confidence.png", metrics, name)
    (folder / "report.txt").write_text(
        class_table(names, conf0, cells["occupied"], cells["generation"], cells["elite_id"], cells["parent_id"]) + "\n"
    )
    stats = confidence_stats(conf0)
    summary = {
        "model": name,
        "generations": generations,
        "evaluations": generations * BATCH,
        "seconds": 1.5,
        **{k: stats[k] for k in ("median", "mean", "n99", "n9999")},
        "classes": [
            {"class": k, "name": n, "confidence": float(conf0[k]), "occupied": bool(o)}
            for k, (n, o) in enumerate(zip(names, cells["occupied"]))
        ],
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    run.release()
    return folder


def sweep_folder(folder: Path, runs: dict[str, Path | None]) -> Path:
    """A sweep folder: sweep.json and summary.json naming `runs` (name -> a finished run folder to copy in, or
    None for a run still pending)."""
    import shutil

    folder = Path(folder)
    entries, figures = [], []
    for name, source in runs.items():
        rel = f"runs/{name}"
        if source is not None:
            shutil.copytree(source, folder / rel)
            summary = json.loads((folder / rel / "summary.json").read_text())
            entries.append({"name": name, "folder": rel, "status": "done"})
            figures.append(
                {
                    "name": name,
                    "folder": rel,
                    "median": summary["median"],
                    "classes_ge_99": summary["n99"],
                    "seconds": 12.5,
                }
            )
        else:
            entries.append({"name": name, "folder": rel, "status": "pending"})
    (folder / "sweep.json").write_text(
        json.dumps({"format": "fooling_ext.sweep", "version": 1, "spec": {"seeds": [1, 2]}, "runs": entries})
    )
    (folder / "summary.json").write_text(json.dumps({"runs": figures}))
    return folder


def analysis_folder(folder: Path, kind: str = "diversity") -> Path:
    """An analysis folder: analysis.json, report.md (with a table and an image), a CSV, a figure and an example."""
    from PIL import Image

    folder = Path(folder)
    (folder / "examples").mkdir(parents=True)
    (folder / "analysis.json").write_text(
        json.dumps(
            {
                "format": "fooling_ext.analysis",
                "version": 1,
                "analysis": kind,
                "runs": ["runs/a", "runs/b"],
                "summary": {"mean_distance": 0.4375, "clusters": 3, "per_encoding": {"cppn": 0.25}},
            }
        )
    )
    (folder / "report.md").write_text(
        "# Diversity\n\nMean pairwise distance **0.4375** over `2` runs.\n\n| encoding | distance |\n|---|---|\n"
        "| cppn | 0.25 |\n\n- first point\n- second <script>alert(1)</script>\n\n![distances](distances.png)\n"
        "[bad](javascript:alert(1))\n"
    )
    (folder / "distances.csv").write_text("a,b,distance\n0,1,0.5\n")
    Image.new("RGB", (60, 40), (200, 40, 40)).save(folder / "distances.png")
    Image.new("L", (28, 28), 128).save(folder / "examples" / "example_0.png")
    return folder


def mnist_runs(folder: Path) -> tuple[Path, Path]:
    """A short real CPPN run against the shipped LeNet and a short gradient-ascent run on two digits."""
    from fooling_ext.classifiers import load_classifier
    from fooling_ext.experiments.gradient_ascent import GradientConfig, gradient_ascent, write_gradient_run
    from fooling_ext.search import EvolveConfig, evolve

    lenet = load_classifier("mnist")
    evolve_dir, gradient_dir = Path(folder) / "mnist_cppn", Path(folder) / "mnist_gradient"
    evolve(
        EvolveConfig(model="mnist", encoding="cppn", generations=20, batch=40, seed=1, backend="cpu"),
        evolve_dir,
        classifier=lenet,
        progress=False,
    )
    config = GradientConfig(classes=[3, 8], steps=25, seed=0)
    run = RunFolder(gradient_dir)
    run.prepare(resume=False, overwrite=False)
    write_gradient_run(run, gradient_ascent(lenet, config), config, lenet)
    run.release()
    return evolve_dir, gradient_dir
