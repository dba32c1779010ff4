"""Reproduce the paper's MNIST result: both encodings against the shipped LeNet, 5 seeds each, 200 generations
of 200 children. Prints a markdown table (per seed: the first generation at which all 10 digits reach
>= 99.99%, and the final confidences) and writes each run folder under OUT.

    python scripts/mnist_results.py runs/mnist
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from fooling_ext.classifiers import load_classifier
from fooling_ext.search import EvolveConfig, evolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument(
        "--quantize",
        action=argparse.BooleanOptionalAction,
        default=EvolveConfig.quantize,
        help=f"8-bit pixels, as the original code (default: EvolveConfig's, {EvolveConfig.quantize})",
    )
    args = parser.parse_args()

    lenet = load_classifier("mnist")
    print(
        "| encoding | seed | first generation with all 10 digits >= 99.99% | min confidence at the end "
        "| median at the end | seconds |"
    )
    print("|---|---|---|---|---|---|")
    summary = {}
    for encoding in ("cppn", "direct"):
        firsts, mins = [], []
        for seed in args.seeds:
            config = EvolveConfig(
                model="mnist",
                encoding=encoding,
                generations=args.generations,
                batch=args.batch,
                seed=seed,
                backend="cpu",
                quantize=args.quantize,
            )
            t0 = time.perf_counter()
            result = evolve(
                config, args.out / f"{encoding}_seed{seed}", classifier=lenet, overwrite=True, progress=False
            )
            seconds = time.perf_counter() - t0
            first = next((m["generation"] for m in result.metrics if m["n9999"] == 10), None)
            conf = result.archive.confidences()
            firsts.append(first if first is not None else float("inf"))
            mins.append(float(conf.min()))
            print(
                f"| {encoding} | {seed} | {first if first is not None else 'not reached'} | "
                f"{100 * conf.min():.4f}% | {100 * statistics.median(conf):.4f}% | {seconds:.1f} |",
                flush=True,
            )
        summary[encoding] = (statistics.median(firsts), statistics.median(mins))
    print()
    for encoding, (first, low) in summary.items():
        print(
            f"{encoding}: median over seeds of the first generation with all 10 digits >= 99.99%: {first}; "
            f"median over seeds of the lowest final confidence: {100 * low:.4f}%"
        )


if __name__ == "__main__":
    main()
