"""``fooling imagenet-fooling-class``: the 1001-class experiment on ImageNet."""

from __future__ import annotations

import argparse

from fooling_ext.cli.options import add_backend_argument, real_number, whole_number

# classifiers.datasets.photos.FOOLBOX_HINT and RowFit().weight_decay, spelled here so that building the parser
# imports no torch; tests/test_cli_help.py checks that they agree.
FOOLBOX_HINT = "pip install --no-deps foolbox==3.3.4"
WEIGHT_DECAY = 1e-3


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
        required=True,
        dest="runs",
        metavar="RUN",
        help="a finished CPPN run folder against --model imagenet (repeat for more)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--natural",
        default=None,
        metavar="DIR",
        help="natural images: an ImageNet-style folder (class subfolders) or a flat folder (default: "
        f"the 60 sample photos of the foolbox wheel; {FOOLBOX_HINT})",
    )
    p.add_argument(
        "--views", type=whole_number(1), default=8, help="views per natural photo: whole + random crops (default 8)"
    )
    p.add_argument(
        "--holdout",
        type=real_number(0.0, 1.0, high_open=True),
        default=0.2,
        help="share of the elites held out (default 0.2)",
    )
    p.add_argument(
        "--folds", type=whole_number(2), default=5, help="cross-validation folds over the photos (default 5)"
    )
    p.add_argument(
        "--weight-decay",
        type=real_number(0.0),
        default=WEIGHT_DECAY,
        help=f"L2 penalty on the new row (default {WEIGHT_DECAY})",
    )
    p.add_argument(
        "--seed", type=whole_number(0), default=0, help="seed of the hold-out split and the crops (default 0)"
    )
    p.add_argument("--no-evolve", action="store_true", help="fit and measure the class only")
    p.add_argument(
        "--generations", type=whole_number(1), default=None, help="generations of the new run (default: as RUN)"
    )
    p.add_argument("--batch", type=whole_number(1), default=None, help="children per generation (default: as RUN)")
    p.add_argument("--evolve-seed", type=whole_number(0), default=None, help="seed of the new run (default: as RUN)")
    add_backend_argument(p, "where the networks and the new run compute")
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
    result = run_experiment(config, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    print(summary_text(result))
    print(f"output folder: {args.out}")
    return 0
