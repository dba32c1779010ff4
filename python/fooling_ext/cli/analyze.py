"""``fooling analyze``: the paper's findings about evolved images, measured on finished runs (diversity across
runs, removing repeated motifs, global structure), and how the elites fare on other networks (transfer), each
into an analysis folder."""

from __future__ import annotations

import argparse

from fooling_ext.cli.options import (
    BACKEND_CHOICES,
    CLIError,
    add_model_arguments,
    description_from_args,
    probability,
    real_number,
    whole_number,
)


def register_cli(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="measure the paper's findings on finished runs (diversity, repetition, "
        "structure) and how elites transfer to other networks",
        description="Analyses of finished runs, each written to an analysis folder (analysis.json, "
        "report.md, CSV tables, PNG figures, examples/).",
    )
    kinds = p.add_subparsers(dest="analysis", metavar="ANALYSIS")
    kinds.required = True

    d = kinds.add_parser(
        "diversity",
        help="do runs with different seeds find different patterns per class?",
        description="Compare the elites of runs of one model and encoding, per class, across runs "
        "and against other classes, in pixel and feature space.",
    )
    d.add_argument("runs", nargs="+", metavar="RUN", help="run folders (at least two), or sweep folders")
    d.add_argument(
        "--pixel-side",
        type=whole_number(1),
        default=None,
        help="images are area-averaged to at most this side for pixel distances (default 64)",
    )
    d.add_argument(
        "--grid-classes",
        type=whole_number(1),
        default=None,
        help="classes in the classes x runs grid (default 10, the most confident)",
    )
    _common(d, every_run=True)
    d.set_defaults(func=_cmd_diversity)

    r = kinds.add_parser(
        "repetition",
        help="keep one copy of each elite's repeated motif and score again",
        description="Find a repeated motif in each elite, keep one copy, paint the others with the "
        "background and score again; a control paints the same area at random places.",
    )
    r.add_argument("run", metavar="RUN", help="a finished run folder")
    r.add_argument(
        "--min-peak",
        type=real_number(0.0, 1.0),
        default=None,
        help="autocorrelation at the period for a repeat to count (default 0.5)",
    )
    r.add_argument(
        "--min-period",
        type=real_number(0.0, low_open=True),
        default=None,
        help="shortest period of a motif, in pixels (default 4)",
    )
    r.add_argument("--examples", type=whole_number(0), default=None, help="example triples (default 12)")
    r.add_argument("--seed", type=whole_number(0), default=0, help="seed of the control's random places (default 0)")
    _common(r)
    r.set_defaults(func=_cmd_repetition)

    s = kinds.add_parser(
        "structure",
        help="shuffle tiles of elites and natural images; occlusion maps",
        description="Shuffle each elite's tiles on k x k grids and score again, beside natural images "
        "of the same classes; occlusion maps of a few elites.",
    )
    s.add_argument("run", metavar="RUN", help="a finished run folder")
    s.add_argument("--grids", default="2,4,8", help="k of the k x k grids, comma-separated (default 2,4,8)")
    s.add_argument("--permutations", type=whole_number(1), default=None, help="random tile orders per grid (default 3)")
    s.add_argument(
        "--natural-per-class", type=whole_number(1), default=None, help="MNIST test images per digit (default 20)"
    )
    s.add_argument("--no-natural", action="store_true", help="skip the natural images")
    s.add_argument("--occlusion", type=whole_number(0), default=None, help="elites with occlusion maps (default 4)")
    s.add_argument(
        "--patch", type=whole_number(0), default=0, help="occluding patch side in pixels (default: a sixth of the side)"
    )
    s.add_argument(
        "--seed", type=whole_number(0), default=0, help="seed of the tile orders and the natural images (default 0)"
    )
    _common(s)
    s.set_defaults(func=_cmd_structure)

    t = kinds.add_parser(
        "transfer",
        help="score each elite on other networks: do the images fool them too?",
        description="Score each elite of the runs on the run's classifier (the source) and on each "
        "--model (the targets: same classes, same order), with the input handling of "
        "fooling evolve (resize or crops, grey <-> colour). Prints the table; writes "
        "it with the per-class and per-elite tables, a scatter plot and examples.",
    )
    t.add_argument("runs", nargs="+", metavar="RUN", help="finished run folders, or sweep folders (their done runs)")
    add_model_arguments(t, unset_defaults=True, several="The target models (the description flags apply to each).")
    t.add_argument(
        "--source-model",
        default=None,
        metavar="MODEL",
        help="the run's classifier, where its recorded model file moved (default: the run's)",
    )
    t.add_argument(
        "--examples",
        type=whole_number(0),
        default=None,
        help="elites per target in examples/transfer_best.png and transfer_worst.png (default 8)",
    )
    t.add_argument(
        "--fast-inference",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score with the fastest engine and settings within 1e-3 of float32, as fooling evolve "
        "(default: on, unless FOOLING_FAST_INFERENCE=0)",
    )
    t.add_argument("--out", required=True, help="analysis folder to write")
    t.add_argument("--overwrite", action="store_true", help="replace an analysis already in --out")
    t.add_argument("--batch", type=whole_number(1), default=None, help="images per classifier call (default 256)")
    t.add_argument(
        "--top",
        type=whole_number(1),
        default=None,
        metavar="N",
        help="only each run's N most confident elites (default: all)",
    )
    t.add_argument(
        "--min-confidence",
        type=probability,
        default=None,
        metavar="P",
        help="only each run's elites whose recorded confidence is >= P, in [0, 1]; with --top, its N most "
        "confident of those (default: all)",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_transfer)


def _common(parser, every_run: bool = False) -> None:
    parser.add_argument("--out", required=True, help="analysis folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an analysis already in --out")
    parser.add_argument(
        "--model",
        default=None,
        metavar="MODEL",
        help="the classifier to score with, where the run's recorded model file moved: mnist, "
        "imagenet or a model file (default: the run's; its input description stays the run's)",
    )
    parser.add_argument("--batch", type=whole_number(1), default=256, help="images per classifier call (default 256)")
    parser.add_argument(
        "--top",
        type=whole_number(1),
        default=None,
        metavar="N",
        help="only the N most confident classes"
        + (" (by the mean confidence over the runs)" if every_run else "")
        + " (default: all)",
    )
    parser.add_argument(
        "--min-confidence",
        type=probability,
        default=None,
        metavar="P",
        help=(
            "only the classes whose elite is >= P in every run (the runs' recorded confidence)"
            if every_run
            else "only the classes whose elite is >= P (the run's recorded confidence)"
        )
        + ", P in [0, 1]; with --top, the N most confident of those (default: all)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=None,
        help="where the classifier scores: cpu, cuda, or auto (cuda when the CUDA backend can be "
        "used); default: the run's",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _given(args, names) -> dict:
    """The settings given on the command line (the others keep the configuration's defaults)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _print(summary, out) -> int:
    """The verdict in words (one per model and encoding where a diversity analysis made several); the figures
    are in the folder's report.md and analysis.json."""
    conclusions = [summary["conclusion"]] if "conclusion" in summary else [s["conclusion"] for s in summary.values()]
    print("\n".join(conclusions))
    print(f"analysis folder: {out} (report.md, analysis.json)")
    return 0


def _cmd_diversity(args) -> int:
    from fooling_ext.analyses import DiversityConfig, diversity

    config = DiversityConfig(**_given(args, ("pixel_side", "grid_classes", "batch", "top", "min_confidence")))
    summary = diversity(
        args.runs,
        args.out,
        config=config,
        model=args.model,
        device=args.backend,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    return _print(summary, args.out)


def _cmd_repetition(args) -> int:
    from fooling_ext.analyses import RepetitionConfig, repetition

    config = RepetitionConfig(
        **_given(args, ("min_peak", "min_period", "examples", "seed", "batch", "top", "min_confidence"))
    )
    summary = repetition(
        args.run,
        args.out,
        config=config,
        model=args.model,
        device=args.backend,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    return _print(summary, args.out)


def _cmd_structure(args) -> int:
    from fooling_ext.analyses import StructureConfig, structure

    try:
        grids = tuple(int(part) for part in args.grids.split(",") if part.strip())
    except ValueError:
        raise CLIError(f"--grids: expected numbers separated by commas, got {args.grids!r}") from None
    if not grids or min(grids) < 1 or len(set(grids)) < len(grids):
        raise CLIError(f"--grids: expected distinct whole numbers >= 1, got {args.grids!r}")
    config = StructureConfig(
        grids=grids,
        natural=not args.no_natural,
        **_given(
            args, ("permutations", "natural_per_class", "occlusion", "patch", "seed", "batch", "top", "min_confidence")
        ),
    )
    summary = structure(
        args.run,
        args.out,
        config=config,
        model=args.model,
        device=args.backend,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    return _print(summary, args.out)


def _cmd_transfer(args) -> int:
    from fooling_ext.analyses import TransferConfig, transfer
    from fooling_ext.analyses.transfer import table_text

    config = TransferConfig(**_given(args, ("examples", "batch", "top", "min_confidence")))
    models = {model: description_from_args(args, model) for model in args.model}
    if len(models) < len(args.model):
        raise CLIError(f"--model {next(m for m in args.model if args.model.count(m) > 1)} is given twice")
    summary = transfer(
        args.runs,
        args.out,
        models=models,
        config=config,
        source_model=args.source_model,
        device=args.backend,
        fast_inference=args.fast_inference,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(table_text(summary))
    print(f"analysis folder: {args.out} (report.md, analysis.json, transfer.csv)")
    return 0
