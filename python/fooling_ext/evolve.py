"""The MAP-Elites run: configuration, the generation loop, checkpoints, resume, and the `fooling evolve` and
`fooling report` commands.

One generation: ask the archive for children (parents drawn uniformly from the occupied cells, copied and
mutated by the core on the run's device), render them into one image tensor, classify that tensor, and tell
the archive the probabilities. On a GPU every step stays on the device; only the cells that change and the
per-generation metrics come back to the host.

Renders larger than the model's input (ImageNet: the paper's 256 x 256 for a 224 x 224 model) reach the model
as in the paper: resized to its input size, or, when the classifier scores crops, as the 10 crops cut from
the render itself. With fast inference (the default on a GPU) the classifier runs with the fastest settings
whose probabilities stay within 1e-3 of float32 (see :mod:`fooling_ext.inference`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from fooling_ext import __version__
from fooling_ext._backend import backend_device, resolve_backend
from fooling_ext.archive import INSERTION_MODES, Archive
from fooling_ext.encodings import make_encoding
from fooling_ext.inference import choose_inference_settings, current_settings
from fooling_ext.map_elites import MapElites
from fooling_ext.report import class_table, confidence_stats, plot_metrics, save_class_images, save_grids, \
    summary_line
from fooling_ext.runs import RunFolder, RunFolderError, atomic_write_text, config_differences

# Image size the paper renders at, for classifiers that resize their input (the paper: 256 x 256 for
# ImageNet, cropped to the network's input). Other models: their own input size.
PAPER_RENDER_SIZE = {"imagenet": (256, 256)}

# Settings that may change when a run is resumed: they do not change what the run computes.
RESUMABLE_CHANGES = ("run.generations", "run.checkpoint_every", "run.backend", "run.fast_inference")
# Parts of the recorded configuration measured anew each time a run starts or resumes.
MEASURED_AT_START = ("inference",)

METRIC_FIELDS = ("generation", "best", "median", "mean", "n99", "n9999", "classes", "occupied", "new_cells",
                 "improved_cells", "evaluations", "seconds")


@dataclass
class EvolveConfig:
    """Everything that defines a MAP-Elites run (the paper's MNIST settings by default)."""

    model: str = "mnist"
    encoding: str = "cppn"
    generations: int = 200
    batch: int = 200
    seed: int = 0
    backend: str = "auto"
    insertion: str = "all"
    image_size: tuple[int, int] | None = None  # None: the classifier's input size (ImageNet: 256 x 256)
    checkpoint_every: int = 50
    # CPPN encoding
    coords: str = "normalized"
    color: str = "hsl"
    max_nodes: int = 64
    max_edges: int = 256
    cppn_mutation: dict[str, Any] = field(default_factory=dict)
    # Direct encoding
    pixel_mutation: dict[str, Any] = field(default_factory=dict)
    halve_every: int | None = None
    # Fastest classifier settings within 1e-3 of float32, measured at start (None: on for CUDA, off on CPU)
    fast_inference: bool | None = None

    def check(self) -> None:
        if not isinstance(self.generations, int) or self.generations <= 0:
            raise ValueError(f"generations must be a positive integer, got {self.generations!r}")
        if not isinstance(self.batch, int) or self.batch <= 0:
            raise ValueError(f"batch must be a positive integer, got {self.batch!r}")
        if self.checkpoint_every <= 0:
            raise ValueError(f"checkpoint_every must be > 0, got {self.checkpoint_every}")
        if self.encoding not in ("cppn", "direct"):
            raise ValueError(f"encoding must be 'cppn' or 'direct', got {self.encoding!r}")
        if self.insertion not in INSERTION_MODES:
            raise ValueError(f"insertion must be one of {INSERTION_MODES}, got {self.insertion!r}")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ValueError(f"image_size must be (height, width) >= 1, got {self.image_size!r}")
        if self.halve_every is not None and self.halve_every <= 0:
            raise ValueError(f"halve_every must be > 0 when given, got {self.halve_every}")


@dataclass
class EvolveResult:
    folder: Path | None
    archive: Archive
    metrics: list[dict[str, Any]]
    generation: int
    config: dict[str, Any]


def describe_classifier(clf) -> dict[str, Any]:
    spec = clf.spec
    return {
        "name": clf.name,
        "description": getattr(clf, "description", ""),
        "num_classes": clf.num_classes,
        "class_names": list(clf.class_names),
        "spec": dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else dict(spec),
    }


def classifier_for_renders(clf, height: int, width: int):
    """The classifier a run scores its height x width renders with.

    A classifier that takes the render size, or that resizes its input itself, is used as it is. Otherwise
    the renders reach the model as the paper fed CaffeNet its 256 x 256 images: a classifier that scores
    crops gets the 10 crops cut from the render itself; one that does not gets the render resized to its
    input size (bilinear, antialiased). The adapted classifier shares the model; the given one is unchanged.
    An object that only behaves like a Classifier is used as it is: it must take the render size itself.
    """
    from fooling_ext.classifier import Classifier

    spec = clf.spec
    if (height, width) == (spec.height, spec.width) or spec.resize or not isinstance(clf, Classifier):
        return clf
    if spec.crops is not None and spec.crops <= min(height, width):
        spec = dataclasses.replace(spec, height=height, width=width)
    else:
        spec = dataclasses.replace(spec, resize=True)
    return Classifier(clf.model, spec, class_names=clf.class_names, device=clf.device, name=clf.name,
                      description=clf.description, max_batch=clf.max_batch, channels_last=clf.channels_last,
                      dtype=clf.dtype)


def generation_step(me: MapElites, classifier, images: torch.Tensor | None):
    """One generation: ask for children, render them into `images` (reused when it has the batch's shape),
    score them and tell the archive. Returns (images, AddResult)."""
    children = me.ask()
    encoding = me.encoding
    shape = (me.batch_size, encoding.channels, encoding.height, encoding.width)
    if images is None or tuple(images.shape) != shape:
        images = torch.empty(shape, dtype=torch.float32, device=me.device)
    images = encoding.render(children, out=images)
    return images, me.tell(classifier.probabilities(images), images)


def probe_images(encoding, config: EvolveConfig, device: torch.device) -> torch.Tensor:
    """A batch like the ones the run scores: the renders of a starting population of the run's batch size."""
    return encoding.render(encoding.initial(config.batch, seed=config.seed, device=device))


def build_encoding(config: EvolveConfig, clf):
    channels = clf.spec.channels
    if channels not in (1, 3):
        raise ValueError(f"the classifier takes {channels}-channel images; fooling_ext evolves 1 or 3 channels")
    height, width = config.image_size or PAPER_RENDER_SIZE.get(clf.name, (clf.spec.height, clf.spec.width))
    if config.encoding == "cppn":
        return make_encoding(
            "cppn", channels, height, width, coords=config.coords, color=config.color,
            max_nodes=config.max_nodes, max_edges=config.max_edges, mutation=dict(config.cppn_mutation),
        )
    return make_encoding("direct", channels, height, width, mutation=dict(config.pixel_mutation),
                         halve_every=config.halve_every)


def full_config(config: EvolveConfig, clf, encoding) -> dict[str, Any]:
    run = dataclasses.asdict(config)
    run["image_size"] = [encoding.height, encoding.width]
    return {
        "fooling_ext": __version__,
        "torch": str(torch.__version__),
        "run": run,
        "encoding": encoding.config(),
        "classifier": describe_classifier(clf),
    }


def generation_metrics(archive: Archive, generation: int, result, evaluations: int, seconds: float) -> dict[str, Any]:
    return {
        "generation": generation,
        **confidence_stats(archive.confidences()),
        "occupied": archive.num_occupied(),
        "new_cells": result.new_cells,
        "improved_cells": result.improved_cells,
        "evaluations": evaluations,
        "seconds": round(seconds, 3),
    }


def evolve(
    config: EvolveConfig,
    out: str | Path | None = None,
    *,
    classifier=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_generation: Callable[[dict[str, Any]], None] | None = None,
) -> EvolveResult:
    """Run (or resume) MAP-Elites against a classifier and, when `out` is given, write the run folder.

    classifier: a fooling_ext Classifier; by default the one `config.model` names, on the run's device. Any
    object with a Classifier's attributes works (probabilities, class_names, num_classes, spec, name,
    description, device, to, and for renders of another size or fast inference also model, max_batch, dtype
    and channels_last), as fooling_ext.retrain.WithoutFoolingClass shows.
    on_generation: called with each generation's metrics (after the archive update).
    """
    config.check()
    backend = resolve_backend(config.backend)
    device = backend_device(backend)
    if classifier is None:
        from fooling_ext.classifier import load_classifier

        classifier = load_classifier(config.model, device=device)
    else:
        classifier = classifier.to(device)
    encoding = build_encoding(config, classifier)
    classifier = classifier_for_renders(classifier, encoding.height, encoding.width)
    fast = config.fast_inference if config.fast_inference is not None else device.type == "cuda"
    if fast:
        choice = choose_inference_settings(classifier, probe_images(encoding, config, device))
        inference = choice.to_dict()
        if progress:
            print(choice.summary(), file=sys.stderr)
    else:
        inference = {"chosen": current_settings(classifier).to_dict()}
    cfg = full_config(config, classifier, encoding)
    cfg["inference"] = inference

    folder = RunFolder(out) if out is not None else None
    archive = Archive(classifier.class_names, encoding.tensors(encoding.initial(1, 0, device)),
                      (encoding.channels, encoding.height, encoding.width), insertion=config.insertion, device=device)
    metrics: list[dict[str, Any]] = []
    start, evaluations, elapsed = 0, 0, 0.0
    if folder is not None:
        folder.prepare(resume=resume, overwrite=overwrite)
        if resume:
            state = folder.load_checkpoint(required=("config", "generation", "archive", "metrics"))
            ignore = RESUMABLE_CHANGES + MEASURED_AT_START + ("fooling_ext", "torch")
            diffs = config_differences(state["config"], cfg, ignore=ignore)
            if diffs:
                raise RunFolderError("cannot resume with a different configuration: " + "; ".join(diffs))
            archive.load_state_dict(state["archive"])
            start = int(state["generation"])
            metrics = list(state["metrics"])
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
    try:
        for g in range(start, config.generations):
            images, result = generation_step(me, classifier, images)
            evaluations += config.batch
            elapsed = time.perf_counter() - t0
            row = generation_metrics(archive, g, result, evaluations, elapsed)
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
        checkpoint()  # keep every generation that finished
        raise
    finally:
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


def write_outputs(folder: RunFolder, archive: Archive, metrics: list[dict[str, Any]], cfg: dict[str, Any]) -> None:
    """The readable part of a run folder: archive.npz, images/, grids, confidence.png, report.txt."""
    state = archive.state_dict()
    archive.save_npz(folder.archive_path, extra_meta={"config": cfg})
    images = state["images"].numpy()
    occupied = state["occupied"].numpy()
    conf = state["confidence"].numpy()
    save_class_images(folder.images_dir, images, occupied, archive.class_names)
    save_grids(folder.path, images, conf, occupied, archive.class_names)
    if metrics:
        title = f"{cfg['classifier']['name']} / {cfg['encoding']['encoding']} / seed {cfg['run']['seed']}"
        plot_metrics(folder.path / "confidence.png", metrics, title)
    table = class_table(archive.class_names, conf, occupied, state["generation"].numpy(),
                        state["elite_id"].numpy(), state["parent_id"].numpy())
    atomic_write_text(folder.path / "report.txt", table + "\n")
    conf0 = np.where(occupied, conf, 0.0)
    stats = confidence_stats(conf0)
    summary = {
        "model": cfg["classifier"]["name"],
        "model_description": cfg["classifier"]["description"],
        "generations": metrics[-1]["generation"] + 1 if metrics else 0,
        "evaluations": metrics[-1]["evaluations"] if metrics else 0,
        "seconds": metrics[-1]["seconds"] if metrics else 0.0,
        **{k: stats[k] for k in ("median", "mean", "n99", "n9999")},
        "classes": [{"class": k, "name": n, "confidence": float(conf0[k]), "occupied": bool(occupied[k])}
                    for k, n in enumerate(archive.class_names)],
    }
    atomic_write_text(folder.path / "summary.json", json.dumps(summary, indent=2) + "\n")


def load_report(run: str | Path) -> str:
    """The per-class table of a run folder: from archive.npz when the run finished, else its checkpoint."""
    folder = RunFolder(run)
    if not folder.path.is_dir():
        raise FileNotFoundError(f"no run folder at {folder.path}")
    if folder.archive_path.exists():
        try:
            with np.load(folder.archive_path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                fields = {k: z[k] for k in ("confidence", "occupied", "generation", "elite_id", "parent_id")}
        except Exception as exc:
            raise ValueError(f"{folder.archive_path} is not a readable archive: {exc}") from exc
        names = meta["class_names"]
        status = "finished"
    else:
        state = folder.load_checkpoint(required=("archive", "generation", "config"))
        fields = {k: state["archive"][k].numpy() for k in ("confidence", "occupied", "generation", "elite_id", "parent_id")}
        names = state["config"]["classifier"]["class_names"]
        status = f"in progress or stopped after generation {int(state['generation'])}"
    conf = np.clip(fields["confidence"], 0.0, None)
    head = f"run {folder.path} ({status})"
    return head + "\n" + class_table(names, conf, fields["occupied"], fields["generation"], fields["elite_id"],
                                     fields["parent_id"])


# --------------------------------------------------------------------------------------------------
# Command line
def _image_size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().replace("x", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must be N or HxW, got {text!r}") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"image size must be N or HxW, got {text!r}")
    return parts[0], parts[1]


def register_cli(sub) -> None:
    from fooling_ext.classifier import add_model_arguments

    p = sub.add_parser("evolve", help="evolve fooling images with MAP-Elites",
                       description="Evolve images the classifier labels with near-certainty (MAP-Elites).")
    add_model_arguments(p)
    p.add_argument("--encoding", choices=("cppn", "direct"), default="cppn", help="genome encoding (default cppn)")
    p.add_argument("--generations", type=int, default=200, help="generations to run (default 200)")
    p.add_argument("--batch", type=int, default=None,
                   help="children per generation (default: 200; 400 for CPPNs against imagenet, as in the paper)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--insertion", choices=INSERTION_MODES, default="all",
                   help="'all': a child enters every cell it beats (the original code); 'top': only its top class")
    p.add_argument("--image-size", type=_image_size, default=None, metavar="HxW",
                   help="render size (default: the model's input size; 256x256 for imagenet)")
    p.add_argument("--checkpoint-every", type=int, default=50, help="generations between checkpoints (default 50)")
    p.add_argument("--coords", choices=("normalized", "pixel"), default="normalized",
                   help="CPPN x, y inputs on [-1, 1] or as pixel indices (the original code)")
    p.add_argument("--color", choices=("hsl", "hsv"), default="hsl", help="how 3 CPPN outputs become RGB")
    p.add_argument("--mutation-rate", type=float, default=None,
                   help="direct encoding: per-gene mutation probability (default 0.1)")
    p.add_argument("--halve-every", type=int, default=None,
                   help="direct encoding: halve the mutation rate every N generations (the paper: 1000)")
    p.add_argument("--fast-inference", action=argparse.BooleanOptionalAction, default=None,
                   help="run the classifier with the fastest settings (reduced precision, channels-last) whose "
                        "probabilities stay within 1e-3 of float32, measured at start (default: on for cuda, "
                        "off for cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evolve)

    r = sub.add_parser("report", help="print the per-class table of a run folder")
    r.add_argument("run", help="run folder")
    r.set_defaults(func=_cmd_report)


def _cmd_evolve(args) -> int:
    from fooling_ext.classifier import classifier_from_args

    clf = classifier_from_args(args)
    batch = args.batch
    if batch is None:
        batch = 400 if (args.encoding == "cppn" and clf.name == "imagenet") else 200
    pixel_mutation = {} if args.mutation_rate is None else {"rate": args.mutation_rate}
    config = EvolveConfig(
        model=args.model, encoding=args.encoding, generations=args.generations, batch=batch, seed=args.seed,
        backend=args.backend, insertion=args.insertion, image_size=args.image_size,
        checkpoint_every=args.checkpoint_every, coords=args.coords, color=args.color,
        pixel_mutation=pixel_mutation, halve_every=args.halve_every, fast_inference=args.fast_inference,
    )
    result = evolve(config, args.out, classifier=clf, resume=args.resume, overwrite=args.overwrite,
                    progress=not args.no_progress)
    conf = result.archive.confidences()
    print(summary_line(conf))
    print(f"run folder: {result.folder}")
    return 0


def _cmd_report(args) -> int:
    print(load_report(args.run))
    return 0

