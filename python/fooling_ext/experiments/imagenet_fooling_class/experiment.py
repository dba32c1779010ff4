"""The 1001-class experiment on ImageNet: teach the network a "fooling image" class, then evolve again.

The paper retrained CaffeNet with a 1001st class made of evolved CPPN images (and the 1.3 million ImageNet
training images for the other 1000), evolved new images against the retrained network, and saw their median
confidence fall from 88.1% to 11.7%. Without the ImageNet training set the 1000 original classes cannot be
retrained without collapsing, so here the backbone and the 1000 original rows of the last layer stay frozen
and only the new row (weights and bias) is learned: the 1000 original logits are those of the original network
bit for bit, and only the new class competes with them in the softmax.

The new row is fitted to the penultimate features of

* positives: the distinct elite images of one or more finished CPPN runs against the original network (a share
  of them is held out to measure how well the class generalises), and
* negatives: natural images, which must not be called "fooling": a folder of the user's photos, or by default
  the 60 sample photos the ``foolbox`` wheel carries (20 ImageNet photos, 20 CIFAR-10 and 20 CIFAR-100, the
  latter two only 32 x 32), each seen as several random crops and mirrors.

The loss is the 1001-way softmax's own: with the original logits fixed, the probability of the new class is
``sigmoid(w . f + b - logsumexp(original logits))``, so fitting the row is a logistic regression with a known
offset, balanced between positives and negatives and with an L2 penalty on ``w``. False positives on natural
images are estimated by cross-validation over the photos. Finally MAP-Elites runs again against the 1001-class
network with the settings of the first run, and the median confidence over the 1000 original classes is
compared with the first run's.

The experiment resumes: ``fit.json`` (written once the row is fitted and measured) records the configuration and
the figures so far, ``fooling_head.pt`` the row, and the new run (``after/``) checkpoints as any run does, so a
stopped experiment continues with ``resume=True`` without fitting again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fooling_ext import _core
from fooling_ext._files import atomic_write_bytes, atomic_write_text
from fooling_ext._version import __version__
from fooling_ext.classifiers.datasets.photos import foolbox_photos, image_files, photo_views
from fooling_ext.classifiers.loading import load_classifier
from fooling_ext.classifiers.spec import InputSpec
from fooling_ext.core.backend import resolve_device
from fooling_ext.experiments.imagenet_fooling_class.config import (
    FIT_FORMAT,
    FIT_VERSION,
    HEAD_FORMAT,
    RESUMABLE,
    FoolingClassConfig,
    config_record,
    read_fit_record,
    read_head,
    recorded_config,
)
from fooling_ext.experiments.imagenet_fooling_class.network import (
    FoolingHead,
    RowFit,
    fit_fooling_row,
    fooling_probability,
    imagenet_with_fooling_class,
    penultimate_features,
    probabilities_of,
)
from fooling_ext.runs.archive_file import read_archive
from fooling_ext.runs.folder import LOCK_NAME, RunFolder, RunFolderError, check_out_path
from fooling_ext.runs.kinds import folder_kind
from fooling_ext.search.config import EvolveConfig, upgrade_recorded_config
from fooling_ext.search.evolve import evolve


def load_source_run(path: str | Path) -> dict[str, Any]:
    """A finished run's config, and per cell its elite's image (uint8), id and confidence (0 when empty);
    it must be a run against the 1000-class imagenet model."""
    folder = RunFolder(path)
    if not folder.archive_path.exists():
        raise RunFolderError(f"{folder.path} holds no finished run (no {folder.archive_path.name})")
    config = upgrade_recorded_config(folder.read_config())
    classifier = config.get("classifier", {})
    if classifier.get("name") != "imagenet" or len(classifier.get("class_names", ())) != 1000:
        raise ValueError(
            f"{folder.path} is a run against {classifier.get('name')!r}; the fooling class needs runs "
            "against the 1000-class imagenet model"
        )
    _, archive = read_archive(folder.archive_path, ("images", "confidence", "occupied", "elite_id"))
    occupied = archive["occupied"]
    images, confidence, elite_id = archive["images"], archive["confidence"], archive["elite_id"]
    return {
        "path": folder.path,
        "config": config,
        "images": images,
        "occupied": occupied,
        "elite_id": elite_id,
        "confidence": np.where(occupied, confidence, 0.0),
    }


def confidence_digest(source: dict[str, Any]) -> str:
    """SHA-256 of a source run's per-cell confidences: what a resumed experiment checks to compare the new run
    with the run the row was fitted on."""
    return hashlib.sha256(np.ascontiguousarray(source["confidence"], dtype=np.float64).tobytes()).hexdigest()


def distinct_elite_cells(occupied: np.ndarray, elite_id: np.ndarray) -> np.ndarray:
    """One occupied cell per distinct elite image (the first cell it holds)."""
    cells = np.flatnonzero(occupied)
    _, first = np.unique(elite_id[cells], return_index=True)
    return np.sort(cells[first])


def split_elites(source: dict[str, Any], holdout: float, rng: np.random.Generator):
    """The run's distinct elite images split at random into (fit, held out), `holdout` of them held out.

    One image may hold several cells (it beat every elite it could), so images are split, not cells: a
    held-out image never has a copy among the fitted ones. Returns (fit images, held-out images).
    """
    cells = distinct_elite_cells(source["occupied"], source["elite_id"])
    order = rng.permutation(len(cells))
    held = int(round(holdout * len(cells)))
    return source["images"][cells[np.sort(order[held:])]], source["images"][cells[np.sort(order[:held])]]


class FoolingClassFolder(RunFolder):
    """The folder of the ImageNet fooling-class experiment (docs/run-folder.md); it resumes from fit.json."""

    KIND = "fooling-class experiment"
    FILES = ("fit.json", "fooling_head.pt", "fooling_class.json", "report.txt")
    DIRS = ("after",)
    PATTERNS = ()
    DIR_ENTRIES = {"after": RunFolder}
    SETUP_FILES = ()
    resume_path = property(lambda self: self.path / "fit.json")
    head_path = property(lambda self: self.path / "fooling_head.pt")


def run_experiment(
    config: FoolingClassConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit the fooling class, measure it, evolve again against the 1001-class network; write `out`:
    fooling_head.pt (the new row), fit.json (the configuration and the figures before the new run),
    fooling_class.json and report.txt (all the figures), after/ (the new run).
    `out` is locked for this process while the experiment writes it.

    resume: continue the experiment in `out` from its fitted row (nothing is fitted again) and the new run's
    checkpoint; `config` (see :func:`recorded_config`) may differ from the recorded one only in RESUMABLE.
    A Ctrl-C or SIGTERM during the new run raises :class:`~fooling_ext.search.evolve.RunInterrupted` with its
    generations saved."""
    config.check()
    _core.num_threads()  # a bad FOOLING_NUM_THREADS is refused before the folder is made
    folder = FoolingClassFolder(out)
    held_before = folder.holds_lock()
    try:
        if resume:
            if overwrite:
                raise RunFolderError("resume=True and overwrite=True cannot be used together")
            return _resume_experiment(config, folder, progress=progress)
        return _run_experiment(config, folder, overwrite=overwrite, progress=progress)
    except BaseException:
        if not held_before:  # an experiment that failed before its first result leaves nothing
            folder.abandon()
        raise
    finally:
        if not held_before:
            folder.release()


def _run_experiment(
    config: FoolingClassConfig, folder: FoolingClassFolder, *, overwrite: bool, progress: bool
) -> dict[str, Any]:
    out = folder.path
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out} exists and is not a folder")
    if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()) and not overwrite:
        if folder_kind(out) == folder.KIND:
            raise RunFolderError(f"{out} holds another {folder.KIND}; {folder.RESUME_HINT}overwrite=True to replace it")
        raise RunFolderError(f"{out} is not empty; choose an empty folder or pass overwrite=True")
    check_out_path(out, [*config.runs, *([config.natural] if config.natural is not None else [])])
    device = resolve_device(config.backend)
    sources = [load_source_run(path) for path in config.runs]
    spec = InputSpec(**sources[0]["config"]["classifier"]["spec"])
    for source in sources[1:]:
        if InputSpec(**source["config"]["classifier"]["spec"]) != spec:
            raise ValueError(f"{source['path']} scored its images differently from {sources[0]['path']}")
    render_size = tuple(sources[0]["config"]["run"]["image_size"])
    photos = image_files(config.natural) if config.natural is not None else foolbox_photos()
    folder.prepare(resume=False, overwrite=overwrite)  # the sources are readable: lock, clear, write
    log = _logger(progress)

    rng = np.random.default_rng(config.seed)
    splits = [split_elites(source, config.holdout, rng) for source in sources]
    fit_images = np.concatenate([fit for fit, _ in splits])
    held_images = np.concatenate([held for _, held in splits])
    views = np.stack([photo_views(path, config.views, render_size, rng) for path in photos])  # [P, V, 3, H, W]
    log(
        f"fitting the fooling class: {len(fit_images)} evolved images ({len(held_images)} held out), "
        f"{len(photos)} natural photos x {config.views} views"
    )

    clf, head = imagenet_with_fooling_class(spec, device=device)
    positive = penultimate_features(clf, head, fit_images)
    natural = penultimate_features(clf, head, views.reshape(-1, *views.shape[2:]))
    natural = natural.view(len(photos), -1, natural.shape[-1])  # [P, views (x 10 crops), F]
    per_image = 10 if spec.crops is not None else 1
    natural_cv = cross_validated_p_fooling(head, positive, natural, per_image, config.folds, config.fit, rng)
    fit_stats = fit_fooling_row(head, positive, natural.flatten(0, 1), config.fit)
    buffer = io.BytesIO()
    torch.save({"format": HEAD_FORMAT, "spec": dataclasses.asdict(spec), **head.row_state()}, buffer)
    atomic_write_bytes(out / "fooling_head.pt", buffer.getvalue())

    original = load_classifier("imagenet", spec=spec, device=device)
    result: dict[str, Any] = {
        "fooling_ext": __version__,
        "source_runs": [str(source["path"]) for source in sources],
        "source_confidence_sha256": confidence_digest(sources[0]),
        "spec": dataclasses.asdict(spec),
        "positives_fit": len(fit_images),
        "positives_held_out": len(held_images),
        "natural_photos": [str(path) for path in photos],
        "natural_views": config.views,
        "fit": {**dataclasses.asdict(config.fit), **fit_stats},
        "natural_cross_validated_share_fooling": float((natural_cv > 0.5).mean()),
        "natural_cross_validated_median_p_fooling": float(np.median(natural_cv)),
        **held_out_figures(clf, original, held_images),
        **natural_figures(clf, original, views[:, 0]),
    }
    record = {"format": FIT_FORMAT, "version": FIT_VERSION, "config": config_record(config), "result": result}
    atomic_write_text(folder.resume_path, json.dumps(record, indent=2) + "\n")  # from here on, it resumes
    log(summary_text(result))
    return _finish(config, folder, sources[0], clf, result, resume=False, overwrite=overwrite, progress=progress)


def _resume_experiment(config: FoolingClassConfig, folder: FoolingClassFolder, *, progress: bool) -> dict[str, Any]:
    if not folder.resume_path.exists():  # before the lock: a folder that holds no experiment is left as it is
        raise RunFolderError(f"nothing to resume: {folder.resume_path} does not exist")
    recorded = recorded_config(folder.path)
    given, made = config_record(config), config_record(recorded)
    diffs = [
        f"{key}: {made[key]!r} recorded, {given[key]!r} given"
        for key in made
        if key not in RESUMABLE and given[key] != made[key]
    ]
    if diffs:
        raise RunFolderError(f"cannot resume {folder.path} with a different configuration: " + "; ".join(diffs))
    folder.prepare(resume=True, overwrite=False)
    record = read_fit_record(folder.resume_path)  # again, now that the folder is ours
    result = record["result"]
    spec = InputSpec(**result["spec"])
    row = read_head(folder.head_path, spec)
    source = load_source_run(made["runs"][0])
    if confidence_digest(source) != result.get("source_confidence_sha256"):
        raise RunFolderError(
            f"{source['path']} is not the run it was when the row was fitted (its elites' confidences changed): "
            "the new run would be compared with another run; start a new experiment"
        )
    clf, _ = imagenet_with_fooling_class(spec, device=resolve_device(config.backend), row=row)
    _logger(progress)(f"resuming the fooling-class experiment in {folder.path} (the row fitted before is kept)")
    after = RunFolder(folder.path / "after")
    return _finish(
        config, folder, source, clf, result, resume=after.checkpoint_path.exists(), overwrite=False, progress=progress
    )


def _finish(
    config: FoolingClassConfig,
    folder: FoolingClassFolder,
    source: dict[str, Any],
    clf,
    result: dict[str, Any],
    *,
    resume: bool,
    overwrite: bool,
    progress: bool,
) -> dict[str, Any]:
    """The new run (when the experiment evolves), then fooling_class.json and report.txt."""
    result = dict(result)
    if config.evolve:
        result["evolution"] = evolve_again(config, source, clf, folder.path / "after", overwrite, progress, resume)
    atomic_write_text(folder.path / "fooling_class.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(folder.path / "report.txt", summary_text(result) + "\n")
    return result


def cross_validated_p_fooling(
    head: FoolingHead,
    positive: torch.Tensor,
    natural: torch.Tensor,
    per_image: int,
    folds: int,
    fit: RowFit,
    rng: np.random.Generator,
) -> np.ndarray:
    """p(fooling) of each natural photo (its whole view, as the classifier scores it) from a row fitted
    without that photo: `folds`-fold cross-validation over the photos, a photo's views staying together."""
    fold_of = np.arange(len(natural)) % folds
    rng.shuffle(fold_of)
    p_fooling = np.zeros(len(natural))
    for fold in range(folds):
        test = fold_of == fold
        if not test.any() or test.all():
            continue
        fit_fooling_row(head, positive, natural[torch.as_tensor(~test)].flatten(0, 1), fit)
        whole = natural[torch.as_tensor(test)][:, :per_image]  # view 0: the whole photo (its 10 crops)
        # averaged over the crops when the classifier averages its softmax over crops
        p_fooling[test] = fooling_probability(head, whole.flatten(0, 1)).view(-1, per_image).mean(1).cpu().numpy()
    return p_fooling


def held_out_figures(clf, original, images: np.ndarray) -> dict[str, float | None]:
    """Held-out evolved images: the share the new class takes, their median p(fooling), and their median top
    confidence among the 1000 original classes under the original network and under the 1001-class one."""
    if len(images) == 0:
        return {
            key: None
            for key in (
                "held_out_share_classified_fooling",
                "held_out_median_p_fooling",
                "held_out_median_top_confidence_original",
                "held_out_median_top_confidence_1001",
            )
        }
    new = probabilities_of(clf, images)
    old = probabilities_of(original, images)
    return {
        "held_out_share_classified_fooling": float((new.argmax(1) == new.shape[1] - 1).mean()),
        "held_out_median_p_fooling": float(np.median(new[:, -1])),
        "held_out_median_top_confidence_original": float(np.median(old.max(1))),
        "held_out_median_top_confidence_1001": float(np.median(new[:, :-1].max(1))),
    }


def natural_figures(clf, original, images: np.ndarray) -> dict[str, float]:
    """Natural photos under the final head: the share whose top class among the 1000 is unchanged, and the
    largest change of any of the 1000 original probabilities (the logits are unchanged; the new class takes
    its share of the softmax)."""
    new = probabilities_of(clf, images)
    old = probabilities_of(original, images)
    return {
        "natural_top1_unchanged": float((new[:, :-1].argmax(1) == old.argmax(1)).mean()),
        "natural_share_classified_fooling": float((new.argmax(1) == new.shape[1] - 1).mean()),
        "natural_max_abs_change_of_1000_probabilities": float(np.abs(new[:, :-1] - old).max()),
    }


def evolve_again(
    config: FoolingClassConfig,
    source: dict[str, Any],
    clf,
    out: Path,
    overwrite: bool,
    progress: bool,
    resume: bool = False,
) -> dict[str, Any]:
    """MAP-Elites against the 1001-class network with the source run's settings (unless overridden); the
    median is taken over the 1000 original classes, as for the source run. Also: how many of the new run's
    distinct elites the network still classifies as fooling images, and their median p(fooling)."""
    run = dict(source["config"]["run"])
    run.update(image_size=tuple(run["image_size"]), backend=config.backend, fast_inference=config.fast_inference)
    for key, value in (("generations", config.generations), ("batch", config.batch), ("seed", config.evolve_seed)):
        if value is not None:
            run[key] = value
    known = {field.name for field in dataclasses.fields(EvolveConfig)}
    evolve_config = EvolveConfig(**{key: value for key, value in run.items() if key in known})
    after = evolve(evolve_config, out, classifier=clf, resume=resume, overwrite=overwrite, progress=progress)
    conf = after.archive.confidences()[:1000]
    before = source["confidence"]
    state = after.archive.state_dict()
    cells = distinct_elite_cells(state["occupied"].numpy()[:1000], state["elite_id"].numpy()[:1000])
    elites = probabilities_of(clf, state["images"].numpy()[cells])
    return {
        "encoding": evolve_config.encoding,
        "generations": after.generation,
        "batch": evolve_config.batch,
        "seed": evolve_config.seed,
        "before_run": str(source["path"]),
        "before_generations": int(source["config"]["run"]["generations"]),
        "before_median": float(np.median(before)),
        "before_n99": int((before >= 0.99).sum()),
        "after_median": float(np.median(conf)),
        "after_n99": int((conf >= 0.99).sum()),
        "after_seconds": after.metrics[-1]["seconds"] if after.metrics else 0.0,
        "after_distinct_elites": len(cells),
        "after_share_classified_fooling": float((elites.argmax(1) == elites.shape[1] - 1).mean())
        if len(cells)
        else None,
        "after_median_p_fooling": float(np.median(elites[:, -1])) if len(cells) else None,
    }


def summary_text(result: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}%"

    lines = [
        f"fooling class fitted on {result['positives_fit']} evolved images and "
        f"{len(result['natural_photos'])} natural photos x {result['natural_views']} views",
        f"held-out evolved images ({result['positives_held_out']}): classified 'fooling' "
        f"{pct(result['held_out_share_classified_fooling'])}, median p(fooling) "
        f"{pct(result['held_out_median_p_fooling'])}; median top confidence among the 1000 classes "
        f"{pct(result['held_out_median_top_confidence_original'])} (original network) -> "
        f"{pct(result['held_out_median_top_confidence_1001'])} (1001 classes)",
        f"natural photos, cross-validated: classified 'fooling' "
        f"{pct(result['natural_cross_validated_share_fooling'])}, "
        f"median p(fooling) {pct(result['natural_cross_validated_median_p_fooling'])}",
        f"natural photos, final head (fitted on them): classified 'fooling' "
        f"{pct(result['natural_share_classified_fooling'])}, top-1 of the 1000 classes unchanged "
        f"{pct(result['natural_top1_unchanged'])}, largest change of a class probability "
        f"{result['natural_max_abs_change_of_1000_probabilities']:.4f}",
    ]
    evolution = result.get("evolution")
    if evolution:
        lines.append(
            f"evolution ({evolution['encoding']}, {evolution['generations']} generations of {evolution['batch']}): "
            f"median confidence over the 1000 classes {pct(evolution['before_median'])} before -> "
            f"{pct(evolution['after_median'])} after; classes >= 99%: {evolution['before_n99']} -> "
            f"{evolution['after_n99']}; the new run's {evolution['after_distinct_elites']} distinct images: "
            f"classified 'fooling' {pct(evolution['after_share_classified_fooling'])}, median p(fooling) "
            f"{pct(evolution['after_median_p_fooling'])}"
        )
    return "\n".join(lines)


def _logger(enabled: bool):
    def log(message: str) -> None:
        if enabled:
            print(message, file=sys.stderr)

    return log
