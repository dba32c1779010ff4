"""``fooling evolve`` (MAP-Elites against a classifier, into a run folder) and ``fooling report``."""

from __future__ import annotations

import argparse
import shlex
import sys

from fooling_ext import _core
from fooling_ext.cli.options import (
    ADD_EDGE_CHOICES,
    COLOR_CHOICES,
    COMBINE_CHOICES,
    COORDS_CHOICES,
    DEFAULT_MAX_EDGES,
    DEFAULT_MAX_NODES,
    ENCODING_CHOICES,
    INSERTION_CHOICES,
    CLIError,
    Option,
    add_model_arguments,
    check_applies,
    classifier_from_args,
    fill_defaults,
    flag,
    parse_size,
    probability,
    refuse_changes_on_resume,
    whole_number,
)

NUM_INPUTS = _core.NUM_INPUTS


def _run(key: str):
    return lambda cfg: cfg["run"].get(key)


def _spec(key: str):
    return lambda cfg: cfg["classifier"]["spec"].get(key)


def _size(cfg) -> str:
    return "x".join(str(n) for n in cfg["run"]["image_size"])


def _model_size(cfg) -> str:
    return f"{_spec('height')(cfg)}x{_spec('width')(cfg)}"


def _classes(cfg) -> str:
    names = cfg["classifier"]["class_names"]
    return f"its {len(names)} recorded class names ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"


def _class_maps(cfg) -> str | None:
    maps = [m.get("class_map") for m in cfg["classifier"].get("models", [])]
    return "its recorded class maps" if any(maps) else None


def _add_edge(cfg) -> str | None:
    return (cfg["run"].get("cppn_mutation") or {}).get("add_edge")


def _direct_rate(cfg) -> float | None:
    return cfg["encoding"].get("mutation", {}).get("rate")


CPPN, DIRECT = ("cppn",), ("direct",)
# Every option that describes a run: its default (argparse leaves it None, so that an option given can be told
# from one left out), its value in the run's config.json (None: --resume accepts it, as it does not change what
# the run computes: search.evolve.RESUMABLE_CHANGES, and --model for a model file that moved), and the
# encodings it applies to (another encoding refuses it). A new option joins with one line.
EVOLVE_OPTIONS = {
    "encoding": Option("cppn", _run("encoding")),
    "generations": Option(200),
    "batch": Option(None, _run("batch")),
    "seed": Option(0, _run("seed")),
    "insertion": Option("all", _run("insertion")),
    "image_size": Option(None, _size),
    "checkpoint_every": Option(50),
    "coords": Option("normalized", _run("coords"), CPPN),
    "color": Option("hls8", _run("color"), CPPN),
    "quantize": Option(True, _run("quantize")),
    "max_nodes": Option(DEFAULT_MAX_NODES, _run("max_nodes"), CPPN),
    "max_edges": Option(DEFAULT_MAX_EDGES, _run("max_edges"), CPPN),
    "add_edge": Option(None, _add_edge, CPPN),
    "mutation_rate": Option(None, _direct_rate, DIRECT),
    "halve_every": Option(None, _run("halve_every"), DIRECT),
    "fast_inference": Option(None),
    "no_progress": Option(False),
    "backend": Option("auto"),
    "model": Option("mnist"),
    "model_channels": Option(None, _spec("channels")),
    "model_size": Option(None, _model_size),
    "model_mean": Option(None, _spec("mean")),
    "model_std": Option(None, _spec("std")),
    "model_scale": Option(None, _spec("scale")),
    "model_output": Option(None, _spec("output")),
    "model_classes": Option(None, _classes),
    "model_resize": Option(None, _spec("resize")),
    "crops": Option(None, _spec("crops")),
    "combine": Option(None, _run("combine")),
    "class_map": Option(None, _class_maps),
}
# The flags that describe one model file: with several --model, each is described in a .json description.
DESCRIPTION_OPTIONS = (
    "model_channels",
    "model_size",
    "model_mean",
    "model_std",
    "model_scale",
    "model_output",
    "model_classes",
    "model_resize",
    "crops",
)


def _default(dest: str) -> str:
    return f"default {EVOLVE_OPTIONS[dest].default}"


def register_cli(sub) -> None:
    p = sub.add_parser(
        "evolve",
        help="evolve fooling images with MAP-Elites",
        description="Evolve images the classifier labels with near-certainty (MAP-Elites). "
        "`fooling evolve --out RUN --resume` continues a run with the configuration RUN records; only "
        "--generations, --checkpoint-every, --backend, --fast-inference, --no-progress and --model "
        "(a model file that moved; of a run against several models, all of them again, in order) may "
        "be given with it.",
    )
    add_model_arguments(p, unset_defaults=True, several=True)
    p.add_argument(
        "--combine",
        choices=COMBINE_CHOICES,
        default=None,
        help="with several --model: a class's fitness is the lowest of their probabilities for it "
        "('min': the image fools all of them) or their mean ('mean') (default min)",
    )
    p.add_argument(
        "--class-map",
        metavar="FILE",
        help="with several --model whose class names differ from the first's: a JSON object mapping "
        'each other --model (as given) to "index" (classes by position) or to {its class name: '
        "the first model's class name} (docs/classifiers.md) (default: none; every model has the "
        "first's class names in the same order)",
    )
    p.add_argument(
        "--encoding", choices=ENCODING_CHOICES, default=None, help=f"genome encoding ({_default('encoding')})"
    )
    p.add_argument(
        "--generations",
        type=whole_number(1),
        default=None,
        help=f"generations to run, in all ({_default('generations')}; on --resume the recorded number)",
    )
    p.add_argument(
        "--batch",
        type=whole_number(1),
        default=None,
        help="children per generation (default: the paper's, 400 for CPPNs against imagenet, else 200)",
    )
    p.add_argument("--seed", type=whole_number(0), default=None, help=f"random seed ({_default('seed')})")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint, with the configuration it records",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument(
        "--insertion",
        choices=INSERTION_CHOICES,
        default=None,
        help="'all': a child enters every cell it beats (the original code); 'top': only its top class "
        f"({_default('insertion')})",
    )
    p.add_argument(
        "--image-size",
        type=parse_size,
        default=None,
        metavar="HxW",
        help="render size (default: the model's input size; 256x256 for imagenet)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=whole_number(1),
        default=None,
        help=f"generations between checkpoints ({_default('checkpoint_every')})",
    )
    p.add_argument(
        "--coords",
        choices=COORDS_CHOICES,
        default=None,
        help="cppn encoding: the x, y inputs on [-1, 1] ('normalized') or as pixel indices ('pixel', the "
        f"original code) ({_default('coords')})",
    )
    p.add_argument(
        "--color",
        choices=COLOR_CHOICES,
        default=None,
        help="cppn encoding: how 3 CPPN outputs become RGB: hsl / hsv in float, hue over 360 degrees; hls8 "
        "the original code's 8-bit OpenCV HLS, hue bytes in half-degrees "
        f"({_default('color')})",
    )
    p.add_argument(
        "--quantize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="8-bit pixels as the original's: CPPN outputs and direct genes become trunc(255 x) / 255 (default on)",
    )
    p.add_argument(
        "--max-nodes",
        type=whole_number(NUM_INPUTS + 1),
        default=None,
        help=f"cppn encoding: genome capacity in nodes, inputs and outputs included "
        f"({_default('max_nodes')}; at most {_core.MAX_NODES_CAPACITY})",
    )
    p.add_argument(
        "--max-edges",
        type=whole_number(NUM_INPUTS),
        default=None,
        help=f"cppn encoding: genome capacity in edges ({_default('max_edges')}; at most {_core.MAX_EDGES_CAPACITY})",
    )
    p.add_argument(
        "--add-edge",
        choices=ADD_EDGE_CHOICES,
        default=None,
        help="cppn encoding: add connection as 'original' (the original code: any target that is not an "
        "ancestor of the source, parallel edges allowed) or 'rejection' (no duplicates, earlier "
        "versions' rule) (default original)",
    )
    p.add_argument(
        "--mutation-rate",
        type=probability,
        default=None,
        help="direct encoding: per-gene mutation probability (default 0.1)",
    )
    p.add_argument(
        "--halve-every",
        type=whole_number(1),
        default=None,
        help="direct encoding: halve the mutation rate every N generations (default: never; the paper: 1000)",
    )
    p.add_argument(
        "--fast-inference",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the classifier with the fastest engine and settings (ONNX Runtime, reduced "
        "precision, channels-last) whose probabilities stay within 1e-3 of float32, measured at "
        "start (once per model and machine, then kept, so runs of one seed score alike); a resumed "
        "run keeps the recorded ones (default: on, unless FOOLING_FAST_INFERENCE=0; "
        "--no-fast-inference: plain PyTorch)",
    )
    p.add_argument("--no-progress", action="store_true", default=None, help="no progress bar")
    p.set_defaults(func=_cmd_evolve)

    r = sub.add_parser("report", help="print the per-class table of a run folder")
    r.add_argument("run", help="run folder")
    r.set_defaults(func=_cmd_report)


def _cmd_evolve(args) -> int:
    from fooling_ext.runs.report import capacity_lines, capacity_totals, summary_line
    from fooling_ext.search.evolve import RunInterrupted

    try:
        result = _resume(args) if args.resume else _new_run(args)
    except RunInterrupted as exc:
        command = f"fooling evolve --out {shlex.quote(str(args.out))} --resume --generations {exc.generations}"
        print(
            f"fooling evolve: interrupted after {exc.generation} of {exc.generations} generations (checkpoint and "
            f"outputs written to {exc.folder}); continue with: {command}",
            file=sys.stderr,
        )
        return 130
    print(summary_line(result.archive.confidences()))
    run = result.config["run"]
    if run["encoding"] == "cppn":
        for line in capacity_lines(capacity_totals(result.metrics), run["max_nodes"], run["max_edges"]):
            print(line, file=sys.stderr if line.startswith("WARNING") else sys.stdout)
    print(f"run folder: {result.folder}")
    return 0


def _new_run(args):
    from fooling_ext.classifiers.combined import combined_classifier, read_class_maps
    from fooling_ext.search.config import EvolveConfig, check_capacity
    from fooling_ext.search.evolve import evolve

    check_applies(args, EVOLVE_OPTIONS, "encoding")
    fill_defaults(args, EVOLVE_OPTIONS)
    models = [args.model] if isinstance(args.model, str) else list(args.model)
    _check_models(args, models)
    class_maps = read_class_maps(args.class_map, models) if args.class_map is not None else None
    clf = combined_classifier([classifier_from_args(args, model) for model in models], args.combine, class_maps)
    direct_mutation = {} if args.mutation_rate is None else {"rate": args.mutation_rate}
    cppn_mutation = {} if args.add_edge is None else {"add_edge": args.add_edge}
    capacity = {"max_nodes": args.max_nodes, "max_edges": args.max_edges}
    check_capacity(**capacity)
    config = EvolveConfig(
        **capacity,
        cppn_mutation=cppn_mutation,
        model=models[0],
        models=models if len(models) > 1 else None,
        combine=args.combine,
        encoding=args.encoding,
        generations=args.generations,
        batch=args.batch,
        seed=args.seed,
        backend=args.backend,
        insertion=args.insertion,
        image_size=args.image_size,
        checkpoint_every=args.checkpoint_every,
        coords=args.coords,
        color=args.color,
        quantize=args.quantize,
        direct_mutation=direct_mutation,
        halve_every=args.halve_every,
        fast_inference=args.fast_inference,
    )
    return evolve(config, args.out, classifier=clf, overwrite=args.overwrite, progress=not args.no_progress)


def _check_models(args, models: list[str]) -> None:
    """Several --model: each described in full (a name or a .json description), none twice; --combine and
    --class-map only with several."""
    if len(models) == 1:
        for dest in ("combine", "class_map"):
            if getattr(args, dest) is not None:
                raise CLIError(f"{flag(dest)} applies to several --model, and one was given")
        return
    described = [flag(dest) for dest in DESCRIPTION_OPTIONS if getattr(args, dest) is not None]
    if described:
        raise CLIError(
            f"{described[0]} describes one model file; with several --model, describe each model file in "
            "a .json description (docs/classifiers.md) and give that"
        )
    twice = next((m for i, m in enumerate(models) if m in models[:i]), None)
    if twice is not None:
        raise CLIError(f"--model {twice} is given twice")


def _resume(args):
    """--resume: the configuration comes from the run folder; only what does not change the results may be given."""
    from fooling_ext.runs.folder import RunFolder
    from fooling_ext.search.config import read_recorded_config
    from fooling_ext.search.evolve import resume

    if args.overwrite:
        raise CLIError("--resume and --overwrite cannot be used together")
    folder = RunFolder(args.out)
    if not folder.resume_path.exists():
        raise CLIError(f"nothing to resume: {folder.resume_path} does not exist")
    refuse_changes_on_resume(args, EVOLVE_OPTIONS, read_recorded_config(args.out), args.out)
    return resume(
        args.out,
        generations=args.generations,
        checkpoint_every=args.checkpoint_every,
        backend=args.backend,
        fast_inference=args.fast_inference,
        model=args.model,
        progress=not args.no_progress,
    )


def _cmd_report(args) -> int:
    from fooling_ext.runs.report import load_report

    print(load_report(args.run))
    return 0
