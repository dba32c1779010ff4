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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fooling_ext import _core
from fooling_ext._version import __version__
from fooling_ext.classifiers.choice_cache import default_fast_inference
from fooling_ext.classifiers.protocol import ImageScorer, describe_classifier
from fooling_ext.core.backend import resolve_device
from fooling_ext.runs.folder import RunFolder, RunFolderError, check_checkpoint_agrees, config_differences
from fooling_ext.runs.notebook import class_grid_html
from fooling_ext.runs.report import confidence_stats, summary_line
from fooling_ext.search.archive import AddResult, Archive
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
from fooling_ext.search.models import (
    PROBE_LIMIT as PROBE_LIMIT,  # re-exported (`as`), with probe_images: importers use them here
    check_moved_model,
    classifier_for_renders as classifier_for_renders,
    inference_record,
    lead_model,
    model_confidences,
    probe_images as probe_images,
    recorded_classifier,
    run_classifier,
)
from fooling_ext.search.outputs import write_outputs

# Settings that may change when a run is resumed: they do not change what the run computes. (`model` may change
# too, to the place a model file moved to: accepted when that model scores the run's elites as recorded.)
RESUMABLE_CHANGES = ("run.generations", "run.checkpoint_every", "run.backend", "run.fast_inference")
# Parts of the recorded configuration measured anew each time a run starts or resumes.
MEASURED_AT_START = ("inference",)

# blocked_add_edge / blocked_add_node: children whose add connection / add node fired but capacity blocked;
# max_nodes / max_edges: the largest elite's node and edge counts (each on its own); all 0 for the direct
# encoding, and absent from metrics written before they existed (read them with metric_value).
METRIC_FIELDS = (
    "generation",
    "best",
    "median",
    "mean",
    "n99",
    "n9999",
    "classes",
    "occupied",
    "new_cells",
    "improved_cells",
    "blocked_add_edge",
    "blocked_add_node",
    "max_nodes",
    "max_edges",
    "evaluations",
    "seconds",
)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run that writes a folder: the generations that finished are in its checkpoint and its
    readable outputs (archive.npz, images, grids, plot, report, summary). ``resume(folder)`` continues it."""

    def __init__(self, folder: Path, generation: int, generations: int):
        super().__init__(f"{folder}: interrupted after {generation} of {generations} generations")
        self.folder, self.generation, self.generations = folder, generation, generations


@dataclass
class EvolveResult:
    """What :func:`evolve` and :func:`resume` return: the run folder (None without one), the final archive, the
    metrics of every generation, the number of generations completed and the run's recorded configuration."""

    folder: Path | None
    archive: Archive
    metrics: list[dict[str, Any]]
    generation: int
    config: dict[str, Any]

    def __repr__(self) -> str:
        """A few lines (the archive holds every elite's genome and image: the default repr ran to tens of KB)."""
        run = self.config.get("run", {})
        return (
            f"EvolveResult({run.get('encoding')} against {self.config.get('classifier', {}).get('name')}, "
            f"{self.generation} generations, folder {self.folder}\n"
            f"  {summary_line(self.archive.confidences())})"
        )

    def _repr_html_(self) -> str:
        """In a notebook: the run's figures and its archive as an image grid."""
        a = self.archive
        title = f"{self.generation} generations: {summary_line(a.confidences())}"
        return class_grid_html(
            a.images.cpu().numpy(), a.confidence.cpu().numpy(), a.occupied.cpu().numpy(), a.class_names, title=title
        )


def generation_step(
    me: MapElites, classifier: ImageScorer, images: torch.Tensor | None
) -> tuple[torch.Tensor, AddResult]:
    """One generation: ask for children, render them into `images` (reused when it has the batch's shape),
    score them and tell the archive. Returns (images, AddResult)."""
    children = me.ask()
    encoding = me.encoding
    shape = (me.batch_size, encoding.channels, encoding.height, encoding.width)
    if images is None or tuple(images.shape) != shape:
        images = torch.empty(shape, dtype=torch.float32, device=me.device)
    images = encoding.render(children, out=images)
    return images, me.tell(classifier.probabilities(images), images)


def build_encoding(config: EvolveConfig, clf: ImageScorer) -> Encoding[Any]:
    """The run's encoding: its genomes render at the configured size, or the paper's for the classifier."""
    channels = clf.spec.channels
    if channels not in (1, 3):
        raise ValueError(f"the classifier takes {channels}-channel images; fooling_ext evolves 1 or 3 channels")
    height, width = config.image_size or render_size(clf)
    if config.encoding == "cppn":
        return make_encoding(
            "cppn",
            channels,
            height,
            width,
            coords=config.coords,
            color=config.color,
            quantize=config.quantize,
            max_nodes=config.max_nodes,
            max_edges=config.max_edges,
            mutation=dict(config.cppn_mutation),
        )
    return make_encoding(
        "direct",
        channels,
        height,
        width,
        mutation=dict(config.direct_mutation),
        halve_every=config.halve_every,
        quantize=config.quantize,
    )


def full_config(config: EvolveConfig, clf: ImageScorer, encoding: Encoding[Any]) -> dict[str, Any]:
    run = dataclasses.asdict(config)
    run["image_size"] = [encoding.height, encoding.width]
    if config.models is None:  # one model: the configuration it always was
        del run["models"], run["combine"]
    else:
        run["models"] = list(config.models)
    return {
        "fooling_ext": __version__,
        "torch": str(torch.__version__),
        "run": run,
        "encoding": encoding.config(),
        "classifier": describe_classifier(clf),
    }


def generation_metrics(
    archive: Archive,
    generation: int,
    result: AddResult,
    evaluations: int,
    seconds: float,
    encoding: Encoding[Any] | None = None,
) -> dict[str, Any]:
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


def resume(
    folder: str | Path,
    *,
    generations: int | None = None,
    checkpoint_every: int | None = None,
    backend: str | None = None,
    fast_inference: bool | None = None,
    model: str | Sequence[str] | None = None,
    classifier: ImageScorer | None = None,
    progress: bool = True,
    on_generation: Callable[[dict[str, Any]], None] | None = None,
) -> EvolveResult:
    """Continue the run in `folder` with the configuration it records (:meth:`EvolveConfig.from_run`). Only
    what does not change the results may be given: more (or the same) `generations`, `checkpoint_every`,
    `backend`, `fast_inference` (None keeps the recorded value), and `model`, the place a model file moved
    to, accepted when it scores the run's elites as recorded (a run against several models: a list of all of
    them, in the recorded order). `classifier` replaces the recorded model by an object in memory (checked
    against the recorded classes and input spec)."""
    if not RunFolder(folder).resume_path.exists():
        raise RunFolderError(f"nothing to resume: {RunFolder(folder).resume_path} does not exist")
    recorded = read_recorded_config(folder)
    config = EvolveConfig.from_recorded(recorded)
    if model is not None and not isinstance(model, (str, Path)):
        model = [str(m) for m in model]
        if config.models is None:
            if len(model) != 1:
                raise ValueError(f"the run was made with one model ({config.model}): give one, got {len(model)}")
            model = model[0]
    changes: dict[str, Any] = dict(
        generations=generations, checkpoint_every=checkpoint_every, backend=backend, fast_inference=fast_inference
    )
    if isinstance(model, list):
        changes.update(model=model[0], models=model)
    elif model is not None:
        changes["model"] = str(model)
    config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    if classifier is None:
        classifier = recorded_classifier(recorded, resolve_device(config.backend), model=model, folder=folder)
    return evolve(config, folder, classifier=classifier, resume=True, progress=progress, on_generation=on_generation)


def complete_metrics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows recorded by a version with fewer columns, with every METRIC_FIELDS column (0 where missing: the
    capacity columns did not exist), so that a resumed run's metrics.csv keeps one header."""
    return [{**{k: 0 for k in METRIC_FIELDS}, **row} for row in rows]


def evolve(
    config: EvolveConfig,
    out: str | Path | None = None,
    *,
    classifier: ImageScorer | Sequence[ImageScorer] | None = None,
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
    Several models at once: a list of them, combined by `config.combine` (a CombinedClassifier, which may also
    be given itself, with class maps; see :mod:`~fooling_ext.classifiers.combined`), or `config.models`; each
    model is adapted and given its fast inference settings on its own.
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
        return _evolve(
            config,
            folder,
            classifier=classifier,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
            on_generation=on_generation,
        )
    except BaseException:
        if folder is not None and not held_before:  # a run that failed before its first result leaves nothing
            folder.abandon()
        raise
    finally:
        if folder is not None and not held_before:
            folder.release()


def _evolve(
    config: EvolveConfig,
    folder: RunFolder | None,
    *,
    classifier: ImageScorer | Sequence[ImageScorer] | None,
    resume: bool,
    overwrite: bool,
    progress: bool,
    on_generation: Callable[[dict[str, Any]], None] | None,
) -> EvolveResult:
    config.check()
    device = resolve_device(config.backend)
    out = folder.path if folder is not None else None
    classifier, config = run_classifier(config, classifier, resume=resume, folder=folder, device=device)
    lead = lead_model(classifier)  # several models: the first decides the paper's defaults
    if config.batch is None:
        config = dataclasses.replace(config, batch=paper_batch(lead, config.encoding))
    if resume and out is not None and RunFolder(out).config_path.is_file():
        config = resume_settings(config, read_recorded_config(out))
    encoding = build_encoding(config, lead)
    check_run_memory(config, encoding, len(classifier.class_names), device)
    classifier = classifier_for_renders(classifier, encoding.height, encoding.width)
    # On unless the run or $FOOLING_FAST_INFERENCE says otherwise; the value used is recorded, so a resumed run
    # scores as it began (search/models.py: each model's choice, kept per machine by choice_cache).
    fast = config.fast_inference if config.fast_inference is not None else default_fast_inference()
    config = dataclasses.replace(config, fast_inference=fast)
    batch = config.batch
    assert batch is not None  # resolved above (paper_batch)
    inference = inference_record(classifier, config, encoding, device, folder=folder, resume=resume, progress=progress)
    cfg = full_config(config, classifier, encoding)
    cfg["inference"] = inference

    archive = Archive(
        classifier.class_names,
        encoding.tensors(encoding.initial(1, 0, device)),
        (encoding.channels, encoding.height, encoding.width),
        insertion=config.insertion,
        device=device,
    )
    metrics: list[dict[str, Any]] = []
    start, evaluations, elapsed = 0, 0, 0.0
    if folder is not None:
        # What can refuse the run (a render size, the core's FOOLING_NUM_THREADS) does so before the folder is made.
        _core.num_threads()
        encoding.render(encoding.initial(1, config.seed, device))
        folder.prepare(resume=resume, overwrite=overwrite)
        if resume:
            state = folder.load_checkpoint(required=("config", "generation", "archive", "metrics"))
            ignore: tuple[str, ...] = RESUMABLE_CHANGES + MEASURED_AT_START + ("fooling_ext", "torch")
            previous = upgrade_recorded_config(state["config"])
            moved = [previous.get("run", {}).get(k) for k in ("model", "models")] != [config.model, config.models]
            if moved:  # checked below, on the run's elites
                ignore += ("run.model", "run.models", "classifier.description")
            diffs = config_differences(_moved_members(previous, moved), _moved_members(cfg, moved), ignore=ignore)
            if diffs:
                raise RunFolderError("cannot resume with a different configuration: " + "; ".join(diffs))
            try:
                archive.load_state_dict(state["archive"])
                archive.validate(encoding, where=f"checkpoint {folder.checkpoint_path}")
                if moved:
                    check_moved_model(classifier, encoding, archive, batch, str(folder.path))
            except RunFolderError:
                raise
            except ValueError as exc:  # a resumed run never carries an invalid genome or score forward
                raise RunFolderError(
                    str(exc) if "checkpoint" in str(exc) else f"checkpoint {folder.checkpoint_path}: {exc}"
                ) from exc
            check_checkpoint_agrees(state, batch, folder.checkpoint_path)
            start = int(state["generation"])
            if config.generations < start:  # it counts generations in all: fewer would end before the run's start
                raise RunFolderError(
                    f"{folder.path} already has {start} generations: generations must be at least "
                    f"{start} (the number in all, not the number to add)"
                )
            metrics = complete_metrics(list(state["metrics"]))
            evaluations = int(state.get("evaluations", start * batch))
            elapsed = float(state.get("elapsed", 0.0))
            folder.write_metrics(metrics)
        folder.write_config(cfg)
    elif resume:
        raise ValueError("resume needs an output folder")

    me = MapElites(encoding, archive, batch_size=batch, seed=config.seed, generation=start)

    saved_at = None  # generation of the checkpoint this call last wrote

    def checkpoint() -> None:
        nonlocal saved_at
        if folder is not None and saved_at != me.generation:  # a generation's state is written once
            folder.save_checkpoint(
                {
                    "config": cfg,
                    "generation": me.generation,
                    "archive": archive.state_dict(),
                    "metrics": metrics,
                    "evaluations": evaluations,
                    "elapsed": elapsed,
                }
            )
            saved_at = me.generation

    bar = _progress_bar(config.generations, start, progress)
    images = None
    t0 = time.perf_counter() - elapsed
    interrupts = GenerationBoundaryInterrupts()
    try:
        for g in interrupts.generations(start, config.generations):
            images, result = generation_step(me, classifier, images)
            evaluations += batch
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
                    f"median {100 * row['median']:.2f}%",
                    refresh=False,
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
        write_outputs(folder, archive, metrics, cfg, model_confidences(classifier, encoding, archive, batch))
        raise RunInterrupted(folder.path, me.generation, config.generations) from None
    finally:
        interrupts.restore()
        if bar is not None:
            bar.close()
    checkpoint()
    if folder is not None:
        write_outputs(folder, archive, metrics, cfg, model_confidences(classifier, encoding, archive, batch))
    return EvolveResult(folder.path if folder else None, archive, metrics, me.generation, cfg)


def _moved_members(cfg: dict[str, Any], moved: bool) -> dict[str, Any]:
    """`cfg` where the models of a run against several may have moved: their records without the descriptions,
    which name their files."""
    members = cfg.get("classifier", {}).get("models")
    if not moved or not isinstance(members, list):
        return cfg
    described = [{k: v for k, v in m.items() if k != "description"} if isinstance(m, dict) else m for m in members]
    return {**cfg, "classifier": {**cfg["classifier"], "models": described}}


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:  # tqdm has no types
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="gen", dynamic_ncols=True, file=sys.stderr)
