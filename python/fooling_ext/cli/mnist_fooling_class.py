"""``fooling retrain``: the MNIST fooling-class experiment over several rounds."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from fooling_ext.cli.options import (
    CLIError,
    Option,
    add_backend_argument,
    fill_defaults,
    real_number,
    refuse_changes_on_resume,
)


def _recorded(key: str):
    return lambda cfg: cfg["experiment"].get(key)


# RetrainConfig's defaults, spelled here so that building the parser imports no torch; tests/test_cli_help.py
# checks that they agree with RetrainConfig().
_DEFAULTS = SimpleNamespace(
    rounds=3,
    seed=0,
    images_per_round=6000,
    generations=10,
    measure_runs=5,
    measure_generations=200,
    batch=200,
    epochs=4,
    threads=2,
    train_limit=None,
    test_limit=None,
)
# The options that describe the experiment: their default (argparse leaves them None, so that an option given
# can be told from one left out) and their value in config.json (None: --resume accepts it: more rounds extend
# the experiment, the backend changes where it runs). Ray's options and --no-progress never change the results.
RETRAIN_OPTIONS = {
    "rounds": Option(_DEFAULTS.rounds),
    "backend": Option("auto"),
    **{
        key: Option(getattr(_DEFAULTS, key), _recorded(key))
        for key in (
            "seed",
            "images_per_round",
            "generations",
            "measure_runs",
            "measure_generations",
            "batch",
            "epochs",
            "threads",
            "train_limit",
            "test_limit",
        )
    },
}


def register_cli(sub) -> None:
    defaults = _DEFAULTS
    p = sub.add_parser(
        "retrain",
        help="the MNIST fooling-class experiment: retrain with fooling images, evolve again",
        description=(
            "Evolve fooling images against LeNet, retrain it with them as an 11th class, evolve against the new "
            "network, and repeat; writes every round's network, images and metrics, a table and a plot."
        ),
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"retrained networks, after round 0's shipped LeNet (default {defaults.rounds})",
    )
    p.add_argument("--out", required=True, help="experiment folder to write")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the experiment in --out at its first unfinished round, with the configuration it "
        "records (only --rounds, --backend and the options of Ray and progress may be given)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an experiment already in --out")
    p.add_argument("--seed", type=int, default=None, help=f"experiment seed (default {defaults.seed})")
    p.add_argument(
        "--images-per-round",
        type=int,
        default=None,
        help="fooling images evolved per round, a multiple of 20 (each run gives one image per digit, "
        f"and both encodings run equally often; default {defaults.images_per_round})",
    )
    p.add_argument(
        "--generations",
        type=int,
        default=None,
        help=f"generations of each harvest run (default {defaults.generations})",
    )
    p.add_argument(
        "--measure-runs",
        type=int,
        default=None,
        help=f"measure runs per encoding and round, 0 for none (default {defaults.measure_runs})",
    )
    p.add_argument(
        "--measure-generations",
        type=int,
        default=None,
        help=f"generations of each measure run (default {defaults.measure_generations}, the paper's)",
    )
    p.add_argument("--batch", type=int, default=None, help=f"children per generation (default {defaults.batch})")
    p.add_argument("--epochs", type=int, default=None, help=f"training epochs per round (default {defaults.epochs})")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"CPU threads for torch; training is reproducible for the same count (default {defaults.threads})",
    )
    add_backend_argument(p, "where evolution runs (training runs on the CPU)", default=None)
    p.add_argument(
        "--train-limit",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N MNIST training digits only, for quick trials (default: all 60,000)",
    )
    p.add_argument(
        "--test-limit",
        type=int,
        default=None,
        metavar="N",
        help="measure on the first N MNIST test digits only, for quick trials (default: all 10,000)",
    )
    p.add_argument(
        "--runner",
        choices=("auto", "local", "ray"),
        default="auto",
        help="where the evolution runs go: Ray tasks (as fooling sweep runs them), or one after the other "
        "in this process; auto: Ray when it is installed (default auto). The results are the same",
    )
    p.add_argument(
        "--address", default=None, help="with Ray: the cluster to join (default: start a local Ray with every CPU)"
    )
    p.add_argument(
        "--cpus-per-run",
        type=real_number(0.0, low_open=True),
        default=1.0,
        help="with Ray: CPUs of each run (default 1)",
    )
    p.add_argument(
        "--gpus-per-run",
        type=real_number(0.0),
        default=0.0,
        help="with Ray: GPUs of each run, a fraction to share one (default 0)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_retrain)


def _cmd_retrain(args: argparse.Namespace) -> int:
    from fooling_ext.experiments.mnist_fooling_class import RetrainConfig, format_table, run_retrain
    from fooling_ext.experiments.mnist_fooling_class.experiment import ExperimentFolder
    from fooling_ext.runs.folder import check_out_path
    from fooling_ext.sweep import RayConnectionError, RayMap, RayWorkerLost, ray_available, ray_session

    check_out_path(args.out)  # before Ray starts
    if args.resume and not args.overwrite and ExperimentFolder(args.out).resume_path.is_file():
        recorded = ExperimentFolder(args.out).read_config()
        refuse_changes_on_resume(args, RETRAIN_OPTIONS, recorded, args.out, "experiment")
        for dest in RETRAIN_OPTIONS:  # the recorded experiment, with the --rounds and --backend given
            if getattr(args, dest) is None and dest in recorded.get("experiment", {}):
                setattr(args, dest, recorded["experiment"][dest])
    fill_defaults(args, RETRAIN_OPTIONS)
    config = RetrainConfig(
        rounds=args.rounds,
        seed=args.seed,
        images_per_round=args.images_per_round,
        generations=args.generations,
        measure_runs=args.measure_runs,
        measure_generations=args.measure_generations,
        batch=args.batch,
        epochs=args.epochs,
        threads=args.threads,
        backend=args.backend,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
    )
    config.check()  # before Ray starts
    start = time.perf_counter()
    use_ray = args.runner == "ray" or (args.runner == "auto" and ray_available())
    map_runs = RayMap(args.address, cpus=args.cpus_per_run, gpus=args.gpus_per_run) if use_ray else None
    try:
        with ray_session(args.address) if use_ray else contextlib.nullcontext():  # one Ray for every round
            rounds = run_retrain(
                config,
                args.out,
                resume=args.resume,
                overwrite=args.overwrite,
                progress=not args.no_progress,
                map_runs=map_runs,
            )
    except RayConnectionError as exc:
        raise CLIError(str(exc)) from exc
    except RayWorkerLost as exc:  # not the user's input: status 1, and --resume continues from the last round
        print(f"fooling retrain: error: {exc}; --resume continues from the last finished round", file=sys.stderr)
        return 1
    print(format_table(rounds, config))
    folder = Path(args.out)
    print(f"experiment folder: {folder} (table.md, table.csv, rounds.png, round_0..round_{config.rounds})")
    print(
        f"wall time of this command: {(time.perf_counter() - start) / 60:.1f} min; "
        f"of all rounds: {sum(m.seconds.get('total', 0.0) for m in rounds) / 60:.1f} min"
    )
    return 0
