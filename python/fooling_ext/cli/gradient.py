"""``fooling gradient``: fooling images by gradient ascent on the pixels, into a run folder."""

from __future__ import annotations

from fooling_ext.cli.options import add_model_arguments, classifier_from_args, real_number, whole_number

# experiments.gradient_ascent's START_MODES and LR_POLICIES, spelled here so that building the parser imports no
# torch; tests/test_cli_help.py checks that they agree.
START_MODES = ("mean_plus", "uniform", "zero")
LR_POLICIES = ("progress", "constant")


def register_cli(sub) -> None:
    p = sub.add_parser(
        "gradient",
        help="fooling images by gradient ascent on the pixels",
        description="Climb each class's softmax probability with respect to the pixels.",
    )
    add_model_arguments(p)
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--classes", default=None, help="comma-separated class indices or names (default: every class)")
    p.add_argument("--steps", type=whole_number(1), default=300, help="maximum steps (default 300)")
    p.add_argument(
        "--target",
        type=real_number(0.0, 1.0, low_open=True),
        default=0.9999,
        help="stop a class at this confidence (default 0.9999)",
    )
    p.add_argument(
        "--decay",
        type=real_number(0.0, 1.0, high_open=True),
        default=0.0,
        help="L2 decay towards the mean image per step (default 0; the original script used 0.01)",
    )
    p.add_argument("--blur", type=real_number(0.0), default=0.0, help="Gaussian blur sigma in pixels (default 0: off)")
    p.add_argument("--blur-every", type=whole_number(1), default=1, help="blur every N steps (default 1)")
    p.add_argument("--lr-policy", choices=LR_POLICIES, default="progress", help="step-size rule (default progress)")
    p.add_argument(
        "--lr",
        type=real_number(0.0, low_open=True),
        default=0.01,
        help="step size for --lr-policy constant (default 0.01)",
    )
    p.add_argument(
        "--start",
        choices=START_MODES,
        default="mean_plus",
        help="starting image: the model's mean image plus noise, uniform noise, or the mean image (default mean_plus)",
    )
    p.add_argument("--seed", type=whole_number(0), default=0, help="seed of the starting noise (default 0)")
    p.add_argument("--batch", type=whole_number(1), default=100, help="classes climbed at once (default 100)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_gradient)


def _cmd_gradient(args) -> int:
    from fooling_ext.experiments.gradient_ascent import (
        GradientConfig,
        GradientFolder,
        gradient_ascent,
        resolve_classes,
        write_gradient_run,
    )

    clf = classifier_from_args(args)
    classes = None if args.classes is None else [c.strip() for c in args.classes.split(",") if c.strip()]
    config = GradientConfig(
        classes=classes,
        steps=args.steps,
        target=args.target,
        decay=args.decay,
        blur_radius=args.blur,
        blur_every=args.blur_every,
        lr_policy=args.lr_policy,
        lr=args.lr,
        start=args.start,
        seed=args.seed,
        batch=args.batch,
    )
    config.check()
    resolve_classes(config.classes, clf.class_names)  # an unknown class is refused before the folder is made
    folder = GradientFolder(args.out)
    folder.prepare(resume=False, overwrite=args.overwrite)
    try:
        result = gradient_ascent(clf, config, progress=not args.no_progress)
        write_gradient_run(folder, result, config, clf)
    except BaseException:
        folder.abandon()  # a run that failed before its first result leaves nothing
        raise
    finally:
        folder.release()
    print((folder.path / "report.txt").read_text().rstrip())
    print(f"run folder: {folder.path}")
    return 0
