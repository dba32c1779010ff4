"""``fooling train-mnist``: train the paper's LeNet; with its defaults, the shipped weights."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
from pathlib import Path

from fooling_ext.cli.options import real_number, whole_number

# classifiers.training's DEFAULT_* and pinned_training.PINNED_ISA, spelled here so that building the parser
# imports no torch; tests/test_cli_help.py checks that they agree.
DEFAULT_OUT, DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE, DEFAULT_LR, DEFAULT_SEED, DEFAULT_THREADS = (
    "mnist_lenet.pt",
    4,
    128,
    3e-3,
    0,
    2,
)
PINNED_ISA = "AVX2"


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fooling train-mnist``."""
    parser = subparsers.add_parser(
        "train-mnist",
        help="train the paper's MNIST LeNet (reproducible from the seed)",
        description=(
            "Train Caffe's LeNet on MNIST with Adam and a one-cycle schedule, print the test accuracy, and write the "
            "weights (a state_dict) plus a JSON of metrics next to them. The training runs in a child process whose "
            f"PyTorch, MKL and oneDNN code paths are pinned to {PINNED_ISA} and whose threads are fixed (--cpu-paths), "
            "so that with the same torch version (the shipped file: 2.13.0+cpu) and --threads it trains the same "
            f"weights on Intel CPUs with {PINNED_ISA} or AVX-512; MKL does not promise this between AMD and Intel "
            "CPUs. The shipped weights were made with the defaults, unpinned (as --cpu-paths native), on a 2-core "
            "AMD EPYC with AVX2; neither mode reproduces them bit for bit there today: see docs/mnist.md. 176 s of "
            "training for the shipped file on 2 cores; far longer while other jobs share the cores "
            "(72 min on 2 cores at a load average near 20)."
        ),
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"weights file to write (default: ./{DEFAULT_OUT}); metrics go next to it as .json",
    )
    parser.add_argument(
        "--epochs",
        type=whole_number(1),
        default=DEFAULT_EPOCHS,
        help=f"passes over the data (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--batch-size",
        type=whole_number(1),
        default=DEFAULT_BATCH_SIZE,
        help=f"images per step (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--lr",
        type=real_number(0.0, low_open=True),
        default=DEFAULT_LR,
        help=f"peak learning rate (default {DEFAULT_LR})",
    )
    parser.add_argument(
        "--seed",
        type=whole_number(0),
        default=DEFAULT_SEED,
        help=f"seed for weights and shuffling (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--threads",
        type=whole_number(1),
        default=DEFAULT_THREADS,
        help=f"CPU threads; results are reproducible for the same count (default {DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--cpu-paths",
        choices=(PINNED_ISA.lower(), "native"),
        default=PINNED_ISA.lower(),
        help=f"{PINNED_ISA.lower()} (default): train in a process with every CPU code path pinned to "
        f"{PINNED_ISA}, so the weights are the same on every CPU with {PINNED_ISA}; native: train "
        "in this process with the paths this CPU picks (the same weights only on the same kind "
        "of CPU)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="MNIST as a .npz or a folder of the four IDX files (default: the copy in the package)",
    )
    parser.add_argument("--limit-train", type=whole_number(1), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_train_mnist)


def _output_paths(out: str, data: Path | None) -> tuple[Path, Path]:
    """The weights file and the metrics file beside it, checked before the training starts: neither may be a
    folder or special file, the same file as the other or as the data, and a metrics file there already must be
    one train-mnist wrote (the weights file is the one the user named; the metrics file they did not)."""
    if out == "":
        raise ValueError("--out is empty: name the weights file to write")
    weights = Path(out)
    metrics = weights.with_suffix(".json")
    if os.path.realpath(metrics) == os.path.realpath(weights):
        raise ValueError(
            f"--out {out}: the metrics go beside the weights as {metrics.name}, the weights file itself; "
            "give the weights another suffix, e.g. .pt"
        )
    for path, what in ((weights, "--out"), (metrics, "the metrics file of --out")):
        if path.exists() and not path.is_file():
            raise ValueError(f"{what} {path} exists and is not a regular file")
        if data is not None and os.path.realpath(path) == os.path.realpath(data):
            raise ValueError(f"{what} {path} is the --data file: a command never writes over what it reads")
    if metrics.exists():
        try:
            recorded = json.loads(metrics.read_text())
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            recorded = None
        if not isinstance(recorded, dict) or "test_accuracy" not in recorded:
            raise ValueError(
                f"{metrics} is there and was not written by train-mnist: the metrics of --out {out} "
                "would replace it; move it or choose another --out"
            )
    return weights, metrics


def _run_train_mnist(args: argparse.Namespace) -> int:
    import torch

    from fooling_ext._files import atomic_write_bytes, atomic_write_text
    from fooling_ext.classifiers.datasets.mnist import load_mnist
    from fooling_ext.classifiers.pinned_training import train_lenet_pinned
    from fooling_ext.classifiers.training import train_lenet

    out, metrics_path = _output_paths(args.out, args.data)
    if args.limit_train is not None and args.limit_train < 1:
        raise ValueError(f"--limit-train must be >= 1, got {args.limit_train}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    options = dict(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        progress=not args.quiet,
    )
    if args.cpu_paths == "native":
        data = load_mnist(args.data)
        if args.limit_train is not None:
            limit = args.limit_train
            data = dataclasses.replace(data, x_train=data.x_train[:limit], y_train=data.y_train[:limit])
        model, metrics = train_lenet(data, **options)
        metrics["cpu_paths"] = "native"
    else:
        if args.data is not None:
            load_mnist(args.data)  # a missing or malformed file is reported here, as in the native mode
        model, metrics = train_lenet_pinned(args.data, limit_train=args.limit_train, **options)
    metrics["data"] = str(args.data) if args.data is not None else "fooling_ext/classifiers/datasets/mnist.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    atomic_write_bytes(out, weights.getvalue())
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    print(
        f"test accuracy {metrics['test_accuracy']:.4f} on {metrics['num_test']} images "
        f"after {metrics['train_seconds']:.0f} s; wrote {out} and {metrics_path}"
    )
    return 0
