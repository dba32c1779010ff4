"""``fooling imagenet-fooling-class``: the 1001-class experiment on ImageNet."""

from __future__ import annotations

import argparse
import shlex
import sys

from fooling_ext.cli.options import (
    CLIError,
    Option,
    add_backend_argument,
    fill_defaults,
    real_number,
    refuse_changes_on_resume,
    whole_number,
)

# classifiers.datasets.photos.FOOLBOX_HINT and RowFit().weight_decay, spelled here so that building the parser
# imports no torch; tests/test_cli_help.py checks that they agree.
FOOLBOX_HINT = "pip install --no-deps foolbox==3.3.4"
WEIGHT_DECAY = 1e-3


def _recorded(key: str):
    return lambda cfg: cfg["config"][key]


# The options that describe the experiment: their default (argparse leaves them None, so that an option given can
# be told from one left out) and their value in fit.json (None: --resume accepts it: more generations extend the
# new run, the backend and the engine change where and how it computes).
FOOLING_CLASS_OPTIONS = {
    "runs": Option(None, _recorded("runs")),
    "natural": Option(None, _recorded("natural")),
    "views": Option(8, _recorded("views")),
    "holdout": Option(0.2, _recorded("holdout")),
    "folds": Option(5, _recorded("folds")),
    "weight_decay": Option(WEIGHT_DECAY, lambda cfg: cfg["config"]["fit"]["weight_decay"]),
    "seed": Option(0, _recorded("seed")),
    "no_evolve": Option(False, lambda cfg: not cfg["config"]["evolve"]),
    "batch": Option(None, _recorded("batch")),
    "evolve_seed": Option(None, _recorded("evolve_seed")),
    "generations": Option(None),
    "backend": Option("auto"),
    "fast_inference": Option(None),
}


def register_cli(sub) -> None:
    p = sub.add_parser(
        "imagenet-fooling-class",
        help="the 1001-class experiment: learn a 'fooling image' class, evolve again",
        description="Add a 1001st 'fooling image' class to the ImageNet model (only its row of the last layer is "
        "learned, from the elites of finished CPPN runs and natural photos), measure it, and run "
        "MAP-Elites again against the 1001-class network.",
    )
    p.add_argument(
        "--run",
        action="append",
        default=None,
        dest="runs",
        metavar="RUN",
        help="a finished CPPN run folder against --model imagenet (repeat for more; default: with --resume the "
        "recorded runs, else required)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the experiment in --out with the row it fitted and its new run's checkpoint, with the "
        "configuration fit.json records (only --generations, --backend, --fast-inference and --no-progress may "
        "be given)",
    )
    p.add_argument(
        "--natural",
        default=None,
        metavar="DIR",
        help="natural images: an ImageNet-style folder (class subfolders) or a flat folder (default: "
        f"the 60 sample photos of the foolbox wheel; {FOOLBOX_HINT})",
    )
    p.add_argument(
        "--views", type=whole_number(1), default=None, help="views per natural photo: whole + random crops (default 8)"
    )
    p.add_argument(
        "--holdout",
        type=real_number(0.0, 1.0, high_open=True),
        default=None,
        help="share of the elites held out (default 0.2)",
    )
    p.add_argument(
        "--folds", type=whole_number(2), default=None, help="cross-validation folds over the photos (default 5)"
    )
    p.add_argument(
        "--weight-decay",
        type=real_number(0.0),
        default=None,
        help=f"L2 penalty on the new row (default {WEIGHT_DECAY})",
    )
    p.add_argument(
        "--seed", type=whole_number(0), default=None, help="seed of the hold-out split and the crops (default 0)"
    )
    p.add_argument("--no-evolve", action="store_true", default=None, help="fit and measure the class only")
    p.add_argument(
        "--generations", type=whole_number(1), default=None, help="generations of the new run (default: as RUN)"
    )
    p.add_argument("--batch", type=whole_number(1), default=None, help="children per generation (default: as RUN)")
    p.add_argument("--evolve-seed", type=whole_number(0), default=None, help="seed of the new run (default: as RUN)")
    add_backend_argument(p, "where the networks and the new run compute", default=None)
    p.add_argument(
        "--fast-inference",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fastest classifier engine and settings within 1e-3 of float32 (default: on)",
    )
    p.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_fooling_class)


def _cmd_fooling_class(args) -> int:
    from fooling_ext.experiments.imagenet_fooling_class import FoolingClassConfig, RowFit, run_experiment, summary_text
    from fooling_ext.experiments.imagenet_fooling_class.experiment import FoolingClassFolder, read_fit_record
    from fooling_ext.search.evolve import RunInterrupted

    if args.resume:
        if args.overwrite:
            raise CLIError("--resume and --overwrite cannot be used together")
        record = read_fit_record(FoolingClassFolder(args.out).resume_path)
        refuse_changes_on_resume(args, FOOLING_CLASS_OPTIONS, record, args.out, "experiment")
        recorded = record["config"]
        args.runs, args.natural, args.views = recorded["runs"], recorded["natural"], recorded["views"]
        args.holdout, args.folds, args.seed = recorded["holdout"], recorded["folds"], recorded["seed"]
        args.weight_decay, args.no_evolve = recorded["fit"]["weight_decay"], not recorded["evolve"]
        args.batch, args.evolve_seed = recorded["batch"], recorded["evolve_seed"]
        for dest in ("generations", "backend", "fast_inference"):  # the recorded value unless given
            if getattr(args, dest) is None:
                setattr(args, dest, recorded[dest])
    elif not args.runs:
        raise CLIError("the following arguments are required: --run (unless --resume)")
    fill_defaults(args, FOOLING_CLASS_OPTIONS)
    config = FoolingClassConfig(
        runs=args.runs,
        natural=args.natural,
        views=args.views,
        holdout=args.holdout,
        folds=args.folds,
        seed=args.seed,
        fit=RowFit(weight_decay=args.weight_decay),
        evolve=not args.no_evolve,
        generations=args.generations,
        batch=args.batch,
        evolve_seed=args.evolve_seed,
        backend=args.backend,
        fast_inference=args.fast_inference,
    )
    try:
        result = run_experiment(
            config, args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress
        )
    except RunInterrupted as exc:
        command = f"fooling imagenet-fooling-class --out {shlex.quote(str(args.out))} --resume"
        print(
            f"fooling imagenet-fooling-class: the new run was interrupted after {exc.generation} of "
            f"{exc.generations} generations (the fitted row, its figures and the run's checkpoint are written to "
            f"{args.out}); continue with: {command}",
            file=sys.stderr,
        )
        return 130
    print(summary_text(result))
    print(f"output folder: {args.out}")
    return 0
