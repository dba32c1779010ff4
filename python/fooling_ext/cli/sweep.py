"""``fooling sweep``: a grid of MAP-Elites runs as Ray tasks, locally or on a cluster (docs/sweep.md)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from fooling_ext.cli.options import CLIError, real_number, whole_number


def register_cli(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="many evolve runs (models x encodings x option values x seeds) as Ray tasks",
        description=(
            "Run a grid of MAP-Elites runs on Ray: a local Ray by default, or a cluster with --address. Each run "
            "writes its evolve run folder under OUT/runs/; OUT/sweep.json records every run's status and "
            "OUT/summary.json the figures over runs. --resume skips finished runs and continues the others from "
            "their checkpoints. The grid comes from --spec (TOML or JSON) and the flags, which override it."
        ),
    )
    p.add_argument("--out", required=True, help="sweep folder to write")
    p.add_argument(
        "--spec",
        metavar="FILE",
        help="a .toml or .json specification (docs/sweep.md; default: none, the --option "
        "flags alone, or on --resume the recorded sweep)",
    )
    p.add_argument(
        "--models",
        type=_names,
        metavar="M[,M...]",
        help="mnist, imagenet or model files, separated by commas (default mnist)",
    )
    p.add_argument("--encodings", type=_names, metavar="E[,E...]", help="cppn, direct (default cppn)")
    p.add_argument("--seeds", metavar="S", help="seeds, e.g. 1-4 or 1,2,7 (default 0)")
    p.add_argument(
        "--generations",
        type=whole_number(1),
        default=None,
        metavar="N",
        help="generations of every run: the same as --option generations=N, which may also give "
        "several values (default: EvolveConfig's, 200)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=V[,V...]",
        help="an evolve setting and its values, e.g. generations=200 or batch=100,200; repeat for "
        "several (the keys of EvolveConfig, and cppn_mutation.<field> / direct_mutation.<field>; "
        "default: none, EvolveConfig's defaults)",
    )
    p.add_argument(
        "--cpus-per-run",
        type=real_number(0.0, low_open=True),
        metavar="N",
        help="CPUs of each run, also its threads (default 1)",
    )
    p.add_argument(
        "--gpus-per-run",
        type=real_number(0.0),
        metavar="F",
        help="GPUs of each run; a fraction shares one GPU (default 0)",
    )
    p.add_argument(
        "--max-retries", type=whole_number(0), metavar="N", help="restarts of a run whose worker died (default 3)"
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDRESS",
        help="the Ray cluster to join: auto (the one ray start made here) or HEAD:6379 (default: start a local Ray)",
    )
    p.add_argument(
        "--num-cpus", type=whole_number(1), default=None, metavar="N", help="CPUs of a local Ray (default: all)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in --out: finished runs are skipped, the others resume",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a sweep already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def spec_from_args(args: argparse.Namespace):
    """The specification (a SweepSpec): the file's (or, on --resume without one, the recorded sweep's), then
    the flags."""
    from fooling_ext.classifiers.loading import check_folder_model
    from fooling_ext.sweep import SweepFolder, SweepSpec
    from fooling_ext.sweep.spec import parse_option_assignment, parse_seeds, read_spec_file

    if args.spec:
        data = read_spec_file(args.spec)
    elif args.resume and SweepFolder(args.out).sweep_path.is_file():
        data = SweepFolder(args.out).read_state()["spec"]
    else:
        data = {}
    data = {**data, "options": dict(data.get("options", {})), "resources": dict(data.get("resources", {}))}
    for key in ("models", "encodings"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.seeds is not None:
        data["seeds"] = parse_seeds(args.seeds)
    for assignment in args.option:
        key, values = parse_option_assignment(assignment)
        if key == "generations" and args.generations is not None:
            raise CLIError(
                f"--generations {args.generations} and --option {assignment} both give the generations; "
                "give one of them"
            )
        data["options"][key] = values
    if args.generations is not None:
        data["options"]["generations"] = [args.generations]
    for key, flag in (("cpus", "cpus_per_run"), ("gpus", "gpus_per_run"), ("max_retries", "max_retries")):
        if getattr(args, flag) is not None:
            data["resources"][key] = getattr(args, flag)
    spec = SweepSpec.from_dict(data, source=args.spec or "the sweep's flags")
    if not args.spec and args.resume and args.models is None and SweepFolder(args.out).sweep_path.is_file():
        for model in spec.models:  # the sweep folder chose these, and it may come from elsewhere
            check_folder_model(model, args.out, "pass --spec or --models naming it to run it")
    return spec


def _cmd_sweep(args: argparse.Namespace) -> int:
    from fooling_ext.sweep import RayConnectionError, format_summary, run_sweep
    from fooling_ext.sweep.ray_runner import require_ray

    spec = spec_from_args(args)
    spec.check()  # a bad grid, or no Ray, is one line before the line that says Ray is starting
    require_ray()

    def announce_ray() -> None:  # once the folder is checked, before the long silent start of Ray
        if args.address:
            print(f"fooling sweep: joining the Ray cluster at {args.address}...", file=sys.stderr)
        else:
            cpus = args.num_cpus or os.cpu_count()
            print(
                f"fooling sweep: starting a local Ray with {cpus} CPU{'s' * (cpus != 1)} (this takes a while)...",
                file=sys.stderr,
            )

    try:
        result = run_sweep(
            spec,
            args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            address=args.address,
            num_cpus=args.num_cpus,
            progress=not args.no_progress,
            on_ray_start=announce_ray,
        )
    except RayConnectionError as exc:
        raise CLIError(str(exc)) from exc
    except KeyboardInterrupt:
        command = f"fooling sweep --out {shlex.quote(str(args.out))} --resume"
        print(
            f"fooling sweep: interrupted (finished runs and checkpoints are kept in {args.out}); continue "
            f"with: {command}",
            file=sys.stderr,
        )
        return 130
    print(format_summary(result.summary))
    print(f"sweep folder: {result.folder} (sweep.json, summary.json, summary.csv, runs/)")
    if result.failed:
        for run in result.failed:
            print(f"failed: {run['name']}: {run.get('error', 'unknown error')}", file=sys.stderr)
        print(f"{len(result.failed)} of {len(result.runs)} runs failed; --resume runs them again", file=sys.stderr)
        return 1
    return 0
