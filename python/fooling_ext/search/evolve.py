"""The MAP-Elites run: the generation loop, checkpoints and resume, around :class:`MapElites`.

One generation: ask the archive for children (parents drawn uniformly from the occupied cells, copied and
mutated by the core on the run's device), render them into one image tensor, classify that tensor, and tell
the archive the probabilities. On a GPU every step stays on the device; only the cells that change and the
per-generation metrics come back to the host.

Renders larger than the model's input (ImageNet: the paper's 256 x 256 for a 224 x 224 model) reach the model
as in the paper: resized to its input size, or, when the classifier scores crops, as the 10 crops cut from
the render itself. With fast inference (the default on a GPU) the classifier runs with the fastest settings
whose probabilities stay within 1e-3 of float32 (see :mod:`fooling_ext.classifiers.inference`).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from fooling_ext import _core
from fooling_ext._version import __version__
from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.inference import apply_recorded, choose_inference_settings, current_settings
from fooling_ext.classifiers.loading import BUILTIN_MODELS, CUSTOM_MODEL, load_classifier, recorded_model
from fooling_ext.classifiers.protocol import ImageScorer, describe_classifier
from fooling_ext.classifiers.spec import InputSpec
from fooling_ext.core.backend import resolve_device
from fooling_ext.runs.folder import RunFolder, RunFolderError, check_checkpoint_agrees, config_differences
from fooling_ext.runs.notebook import class_grid_html
from fooling_ext.runs.report import confidence_stats, summary_line
from fooling_ext.search.archive import Archive
from fooling_ext.search.config import (
    EvolveConfig,
    check_run_memory,
    read_recorded_config,
    resume_settings,
    upgrade_recorded_config,
)
from fooling_ext.search.defaults import paper_batch, render_size
from fooling_ext.search.encodings import Encoding, make_encoding
from fooling_ext.search.interrupts import GenerationBoundaryInterrupts
from fooling_ext.search.map_elites import MapElites
from fooling_ext.search.outputs import write_outputs

# Settings that may change when a run is resumed: they do not change what the run computes. (`model` may change
# too, to the place a model file moved to: accepted when that model scores the run's elites as recorded.)
RESUMABLE_CHANGES = ("run.generations", "run.checkpoint_every", "run.backend", "run.fast_inference")
# How far a moved model's probabilities for the run's elites may lie from the recorded ones: fast inference
# keeps each run within 1e-3 of float32, so two runs' settings within 2e-3 of each other.
MOVED_MODEL_TOLERANCE = 2e-3
# Parts of the recorded configuration measured anew each time a run starts or resumes.
MEASURED_AT_START = ("inference",)

# blocked_add_edge / blocked_add_node: children whose add connection / add node fired but capacity blocked;
# max_nodes / max_edges: the largest elite's node and edge counts (each on its own); all 0 for the direct
# encoding, and absent from metrics written before they existed (read them with metric_value).
METRIC_FIELDS = ("generation", "best", "median", "mean", "n99", "n9999", "classes", "occupied", "new_cells",
                 "improved_cells", "blocked_add_edge", "blocked_add_node", "max_nodes", "max_edges", "evaluations",
                 "seconds")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run that writes a folder: the generations that finished are in its checkpoint and its
    readable outputs (archive.npz, images, grids, plot, report, summary). ``resume(folder)`` continues it."""

    def __init__(self, folder: Path, generation: int, generations: int):
        super().__init__(f"{folder}: interrupted after {generation} of {generations} generations")
        self.folder, self.generation, self.generations = folder, generation, generations


@dataclass
class EvolveResult:
    folder: Path | None
    archive: Archive
    metrics: list[dict[str, Any]]
    generation: int
    config: dict[str, Any]

    def __repr__(self) -> str:
        """A few lines (the archive holds every elite's genome and image: the default repr ran to tens of KB)."""
        run = self.config.get("run", {})
        return (f"EvolveResult({run.get('encoding')} against {self.config.get('classifier', {}).get('name')}, "
                f"{self.generation} generations, folder {self.folder}\n"
                f"  {summary_line(self.archive.confidences())})")

    def _repr_html_(self) -> str:
        """In a notebook: the run's figures and its archive as an image grid."""
        a = self.archive
        title = f"{self.generation} generations: {summary_line(a.confidences())}"
        return class_grid_html(a.images.cpu().numpy(), a.confidence.cpu().numpy(), a.occupied.cpu().numpy(),
                               a.class_names, title=title)


def classifier_for_renders(clf: ImageScorer, height: int, width: int) -> ImageScorer:
    """The classifier a run scores its height x width renders with.

    A classifier that takes the render size, or that resizes its input itself, is used as it is. Otherwise
    the renders reach the model as the paper fed CaffeNet its 256 x 256 images: a classifier that scores
    crops gets the 10 crops cut from the render itself; one that does not gets the render resized to its
    input size (bilinear, antialiased). The adapted classifier shares the model; the given one is unchanged.
    Any other :class:`ImageScorer` is used as it is: it must take the render size itself.
    """
    spec = clf.spec
    if (height, width) == (spec.height, spec.width) or spec.resize or not isinstance(clf, Classifier):
        return clf
    if spec.crops is not None and spec.crops <= min(height, width):
        spec = dataclasses.replace(spec, height=height, width=width)
    else:
        spec = dataclasses.replace(spec, resize=True)
    return clf.with_spec(spec)


def generation_step(me: MapElites, classifier: ImageScorer, images: torch.Tensor | None):
    """One generation: ask for children, render them into `images` (reused when it has the batch's shape),
    score them and tell the archive. Returns (images, AddResult)."""
    children = me.ask()
    encoding = me.encoding
    shape = (me.batch_size, encoding.channels, encoding.height, encoding.width)
    if images is None or tuple(images.shape) != shape:
        images = torch.empty(shape, dtype=torch.float32, device=me.device)
    images = encoding.render(children, out=images)
    return images, me.tell(classifier.probabilities(images), images)


# Fast inference's probe: at most this many renders, so that measuring every candidate costs seconds, not minutes
# (EfficientNet-Lite0 in eager PyTorch scores about 20 images/s on 2 cores, and each candidate runs twice or more).
PROBE_LIMIT = 64


def probe_images(encoding: Encoding, config: EvolveConfig, device: torch.device) -> torch.Tensor:
    """A batch like the ones the run scores: the renders of a starting population of the run's batch size (at
    most PROBE_LIMIT)."""
    return encoding.render(encoding.initial(min(config.batch, PROBE_LIMIT), seed=config.seed, device=device))


def build_encoding(config: EvolveConfig, clf: ImageScorer) -> Encoding:
    """The run's encoding: its genomes render at the configured size, or the paper's for the classifier."""
    channels = clf.spec.channels
    if channels not in (1, 3):
        raise ValueError(f"the classifier takes {channels}-channel images; fooling_ext evolves 1 or 3 channels")
    height, width = config.image_size or render_size(clf)
    if config.encoding == "cppn":
        return make_encoding(
            "cppn", channels, height, width, coords=config.coords, color=config.color,
            quantize=config.quantize, max_nodes=config.max_nodes, max_edges=config.max_edges,
            mutation=dict(config.cppn_mutation),
        )
    return make_encoding("direct", channels, height, width, mutation=dict(config.direct_mutation),
                         halve_every=config.halve_every, quantize=config.quantize)


def full_config(config: EvolveConfig, clf: ImageScorer, encoding: Encoding) -> dict[str, Any]:
    run = dataclasses.asdict(config)
    run["image_size"] = [encoding.height, encoding.width]
    return {
        "fooling_ext": __version__,
        "torch": str(torch.__version__),
        "run": run,
        "encoding": encoding.config(),
        "classifier": describe_classifier(clf),
    }


def generation_metrics(archive: Archive, generation: int, result, evaluations: int, seconds: float,
                       encoding: Encoding | None = None) -> dict[str, Any]:
    blocked_edge, blocked_node = encoding.blocked_counts() if encoding is not None else (0, 0)
    nodes, edges = encoding.largest_genome(archive.genomes, archive.occupied) if encoding is not None else (0, 0)
    return {
        "generation": generation,
        **confidence_stats(archive.confidences()),
        "occupied": archive.num_occupied(),
        "new_cells": result.new_cells,
        "improved_cells": result.improved_cells,
        "blocked_add_edge": blocked_edge,
        "blocked_add_node": blocked_node,
        "max_nodes": nodes,
        "max_edges": edges,
        "evaluations": evaluations,
        "seconds": round(seconds, 3),
    }


def recorded_classifier(recorded: dict[str, Any], device: str | torch.device = "cpu", *,
                        model: str | None = None, folder: str | Path | None = None) -> Classifier:
    """The classifier a run was made with, from its recorded configuration: the recorded model (or `model`,
    where the file is now) with the recorded input spec, class names and name, so that a model file described
    by flags when the run started needs no description again. The recorded model of the run `folder` is loaded
    only when it is built in or a file inside `folder` that runs no code (see load_classifier's confine_to):
    a run folder may come from elsewhere; `model` is the caller's choice."""
    run, described = recorded["run"], recorded["classifier"]
    path = str(model if model is not None else run["model"])
    if path == CUSTOM_MODEL:
        raise ValueError(f"the run was made with a classifier given in memory ({described.get('description')}), "
                         "which it cannot load again: pass classifier=... (Python), or model=PATH, a file of the "
                         "same model")
    if path not in BUILTIN_MODELS and not Path(path).exists():
        raise FileNotFoundError(f"the run's model file {path!r} is not there (moved?): pass model=PATH with the "
                                "place it is now")
    spec = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in described["spec"].items()})
    return load_classifier(path, spec=spec, class_names=described["class_names"], name=described["name"],
                           device=device, confine_to=folder if model is None else None)


def resume(
    folder: str | Path,
    *,
    generations: int | None = None,
    checkpoint_every: int | None = None,
    backend: str | None = None,
    fast_inference: bool | None = None,
    model: str | None = None,
    classifier: ImageScorer | None = None,
    progress: bool = True,
    on_generation: Callable[[dict[str, Any]], None] | None = None,
) -> EvolveResult:
    """Continue the run in `folder` with the configuration it records (:meth:`EvolveConfig.from_run`). Only
    what does not change the results may be given: more (or the same) `generations`, `checkpoint_every`,
    `backend`, `fast_inference` (None keeps the recorded value), and `model`, the place a model file moved
    to, accepted when it scores the run's elites as recorded. `classifier` replaces the recorded model by an
    object in memory (checked against the recorded classes and input spec)."""
    if not RunFolder(folder).resume_path.exists():
        raise RunFolderError(f"nothing to resume: {RunFolder(folder).resume_path} does not exist")
    recorded = read_recorded_config(folder)
    config = EvolveConfig.from_recorded(recorded)
    changes = dict(generations=generations, checkpoint_every=checkpoint_every, backend=backend,
                   fast_inference=fast_inference, model=None if model is None else str(model))
    config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    if classifier is None:
        classifier = recorded_classifier(recorded, resolve_device(config.backend), model=model, folder=folder)
    return evolve(config, folder, classifier=classifier, resume=True, progress=progress, on_generation=on_generation)


def check_moved_model(classifier: ImageScorer, encoding: Encoding, archive: Archive, batch: int, where: str) -> None:
    """Refuse a model that does not score the run's elites as recorded: the run continues only with the
    classifier it was made with (a model file may move, not change)."""
    cells = archive.occupied_cells()
    worst = 0.0
    for start in range(0, cells.numel(), batch):
        ids = cells[start:start + batch]
        genomes = encoding.from_tensors({k: v[ids].contiguous() for k, v in archive.genomes.items()})
        probs = classifier.probabilities(encoding.render(genomes))
        got = probs[torch.arange(ids.numel(), device=probs.device), ids.to(probs.device)].double().cpu()
        worst = max(worst, float((got - archive.confidence[ids].double().cpu()).abs().max()))
    if worst > MOVED_MODEL_TOLERANCE:
        raise RunFolderError(f"{where}: the model {classifier.name!r} is not the one the run was made with: it scores "
                             f"the run's elites up to {worst:.3g} away from the recorded confidences")


def complete_metrics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows recorded by a version with fewer columns, with every METRIC_FIELDS column (0 where missing: the
    capacity columns did not exist), so that a resumed run's metrics.csv keeps one header."""
    return [{**{k: 0 for k in METRIC_FIELDS}, **row} for row in rows]


def evolve(
    config: EvolveConfig,
    out: str | Path | None = None,
    *,
    classifier: ImageScorer | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_generation: Callable[[dict[str, Any]], None] | None = None,
) -> EvolveResult:
    """Run (or resume) MAP-Elites against a classifier and, when `out` is given, write the run folder.

    The run folder is locked for this process while the run writes it (another process writing it is
    refused with :class:`~fooling_ext.runs.folder.RunFolderBusy`), and unlocked when the call returns.

    classifier: what scores the images (see :class:`~fooling_ext.classifiers.protocol.ImageScorer`); by
    default the Classifier `config.model` names, on the run's device. A Classifier is adapted to renders of
    another size and, with fast inference, run with its fastest settings; any other object is used as it is.
    config.batch None: the paper's number of children for the classifier and encoding (search.defaults).
    on_generation: called with each generation's metrics (after the archive update).
    resume: continue the run in `out` (:func:`resume` reads its configuration from the folder). `config` may
    differ from the recorded one only in RESUMABLE_CHANGES, and in `model` where a model file moved (it must
    score the run's elites as recorded). Without `classifier`, the recorded model and input description.
    Ctrl-C (KeyboardInterrupt) checkpoints the generations that finished, writes the readable outputs and
    raises :class:`RunInterrupted`.
    """
    folder = RunFolder(out) if out is not None else None
    held_before = folder is not None and folder.holds_lock()
    try:
        return _evolve(config, folder, classifier=classifier, resume=resume, overwrite=overwrite,
                       progress=progress, on_generation=on_generation)
    except BaseException:
        if folder is not None and not held_before:  # a run that failed before its first result leaves nothing
            folder.abandon()
        raise
    finally:
        if folder is not None and not held_before:
            folder.release()


def _evolve(config, folder, *, classifier, resume, overwrite, progress, on_generation) -> EvolveResult:
    config.check()
    device = resolve_device(config.backend)
    out = folder.path if folder is not None else None
    if classifier is None and resume and folder is not None and folder.resume_path.exists():
        classifier = recorded_classifier(read_recorded_config(out), device, model=config.model)
    elif classifier is None:
        classifier = load_classifier(config.model, device=device)
    else:
        classifier = classifier.to(device)
        if not resume:  # record the model really used, not config.model's default
            config = dataclasses.replace(config, model=recorded_model(classifier, config.model))
    if config.batch is None:
        config = dataclasses.replace(config, batch=paper_batch(classifier, config.encoding))
    if resume and out is not None and RunFolder(out).config_path.is_file():
        config = resume_settings(config, read_recorded_config(out))
    encoding = build_encoding(config, classifier)
    check_run_memory(config, encoding, len(classifier.class_names), device)
    classifier = classifier_for_renders(classifier, encoding.height, encoding.width)
    # On by default on a GPU; on the CPU only when asked (--fast-inference): its choice is made by timing, so two
    # runs of one seed may score with different engines, whose last bits differ (docs/classifiers.md).
    fast = config.fast_inference if config.fast_inference is not None else device.type == "cuda"
    if fast and isinstance(classifier, Classifier):
        recorded_choice = None
        if resume and folder is not None and folder.config_path.is_file():
            recorded_choice = (folder.read_config().get("inference") or {}).get("chosen")
        probe = probe_images(encoding, config, device)
        if recorded_choice:  # a resumed run keeps its engine and settings (its scores' last bits depend on them)
            choice = apply_recorded(classifier, probe, recorded_choice)
        else:
            choice = choose_inference_settings(classifier, probe)
        inference = choice.to_dict()
        if progress:
            print(choice.summary(), file=sys.stderr)
        else:
            for line in choice.fallbacks():
                print(line, file=sys.stderr)
    elif isinstance(classifier, Classifier):
        inference = {"chosen": current_settings(classifier).to_dict()}
    else:
        inference = {"chosen": None}  # not a Classifier: it runs as it is
    cfg = full_config(config, classifier, encoding)
    cfg["inference"] = inference

    archive = Archive(classifier.class_names, encoding.tensors(encoding.initial(1, 0, device)),
                      (encoding.channels, encoding.height, encoding.width), insertion=config.insertion, device=device)
    metrics: list[dict[str, Any]] = []
    start, evaluations, elapsed = 0, 0, 0.0
    if folder is not None:
        # What can refuse the run (a render size, the core's FOOLING_NUM_THREADS) does so before the folder is made.
        _core.num_threads()
        encoding.render(encoding.initial(1, config.seed, device))
        folder.prepare(resume=resume, overwrite=overwrite)
        if resume:
            state = folder.load_checkpoint(required=("config", "generation", "archive", "metrics"))
            ignore = RESUMABLE_CHANGES + MEASURED_AT_START + ("fooling_ext", "torch")
            previous = upgrade_recorded_config(state["config"])
            moved = previous.get("run", {}).get("model") != config.model
            if moved:  # checked below, on the run's elites
                ignore += ("run.model", "classifier.description")
            diffs = config_differences(previous, cfg, ignore=ignore)
            if diffs:
                raise RunFolderError("cannot resume with a different configuration: " + "; ".join(diffs))
            try:
                archive.load_state_dict(state["archive"])
                archive.validate(encoding, where=f"checkpoint {folder.checkpoint_path}")
                if moved:
                    check_moved_model(classifier, encoding, archive, config.batch, str(folder.path))
            except RunFolderError:
                raise
            except ValueError as exc:  # a resumed run never carries an invalid genome or score forward
                raise RunFolderError(str(exc) if "checkpoint" in str(exc) else
                                     f"checkpoint {folder.checkpoint_path}: {exc}") from exc
            check_checkpoint_agrees(state, config.batch, folder.checkpoint_path)
            start = int(state["generation"])
            if config.generations < start:  # it counts generations in all: fewer would end before the run's start
                raise RunFolderError(f"{folder.path} already has {start} generations: generations must be at least "
                                     f"{start} (the number in all, not the number to add)")
            metrics = complete_metrics(list(state["metrics"]))
            evaluations = int(state.get("evaluations", start * config.batch))
            elapsed = float(state.get("elapsed", 0.0))
            folder.write_metrics(metrics)
        folder.write_config(cfg)
    elif resume:
        raise ValueError("resume needs an output folder")

    me = MapElites(encoding, archive, batch_size=config.batch, seed=config.seed, generation=start)

    saved_at = None  # generation of the checkpoint this call last wrote

    def checkpoint() -> None:
        nonlocal saved_at
        if folder is not None and saved_at != me.generation:  # a generation's state is written once
            folder.save_checkpoint({
                "config": cfg, "generation": me.generation, "archive": archive.state_dict(),
                "metrics": metrics, "evaluations": evaluations, "elapsed": elapsed,
            })
            saved_at = me.generation

    bar = _progress_bar(config.generations, start, progress)
    images = None
    t0 = time.perf_counter() - elapsed
    interrupts = GenerationBoundaryInterrupts()
    try:
        for g in interrupts.generations(start, config.generations):
            images, result = generation_step(me, classifier, images)
            evaluations += config.batch
            elapsed = time.perf_counter() - t0
            row = generation_metrics(archive, g, result, evaluations, elapsed, encoding)
            metrics.append(row)
            if folder is not None:
                folder.append_metrics(row)
            if on_generation is not None:
                on_generation(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(
                    f"evals/s {evaluations / max(elapsed, 1e-9):,.0f}  >=99%: {row['n99']}/{row['classes']}  "
                    f"median {100 * row['median']:.2f}%", refresh=False,
                )
            if me.generation % config.checkpoint_every == 0:
                checkpoint()
    except KeyboardInterrupt:
        interrupts.restore()
        if bar is not None:
            bar.close()
            bar = None
        checkpoint()  # keep every generation that finished, and show them
        if folder is None:
            raise
        write_outputs(folder, archive, metrics, cfg)
        raise RunInterrupted(folder.path, me.generation, config.generations) from None
    finally:
        interrupts.restore()
        if bar is not None:
            bar.close()
    checkpoint()
    if folder is not None:
        write_outputs(folder, archive, metrics, cfg)
    return EvolveResult(folder.path if folder else None, archive, metrics, me.generation, cfg)


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="gen", dynamic_ncols=True, file=sys.stderr)
