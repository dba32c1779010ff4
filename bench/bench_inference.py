"""The old inference (PyTorch eager, as CPU runs scored before fast inference was on by default) against the new
(fast inference's choice among PyTorch eager and ONNX Runtime, the default), side by side in one process,
interleaved.

    python bench/bench_inference.py imagenet [--repeats 2]   # one ImageNet CPPN generation of 400 at 256 x 256
    python bench/bench_inference.py mnist [--repeats 2] [--generations 1000]  # the paper's MNIST run, 1000 x 200

imagenet: the 400 colour CPPNs of bench/populations.py (COLOUR_256) rendered at 256 x 256 by fx.render (the same
render for both contenders), scored by EfficientNet-Lite0 (``[imagenet]`` extra); a generation's time is the
render plus the scoring. mnist: ``fx.evolve`` of CPPNs against the shipped LeNet, seed 1, without a run folder;
the new contender's choice is measured (and kept, in $FOOLING_CACHE_DIR, else a new temporary folder) by a
one-generation run before the timed ones, as a user's first run of a model measures it.
Each contender runs `repeats` times, alternating; the medians and their ratio are printed, with the largest
difference of the per-class confidences (imagenet: every child's probabilities; mnist: the final archives).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from populations import COLOUR_256

import fooling_ext as fx
from fooling_ext.classifiers.choice_cache import FAST_INFERENCE_ENV
from fooling_ext.classifiers.engines import CACHE_ENV
from fooling_ext.classifiers.inference import InferenceSettings, apply_settings, choose_inference_settings
from fooling_ext.search import EvolveConfig, evolve
from fooling_ext.search.evolve import PROBE_LIMIT, classifier_for_renders


def imagenet(repeats: int) -> None:
    eager = classifier_for_renders(fx.load_classifier("imagenet"), COLOUR_256.side, COLOUR_256.side)
    population = COLOUR_256.population()
    images = fx.render(population, COLOUR_256.side, COLOUR_256.side)
    old_settings = InferenceSettings(channels_last=eager.channels_last)  # what load_classifier gives
    start = time.perf_counter()
    choice = choose_inference_settings(eager, images[:PROBE_LIMIT], repeats=1)  # as evolve probes
    print(choice.summary(), f"\n(choice made in {time.perf_counter() - start:.1f} s)", flush=True)
    new_settings = choice.settings
    times: dict[str, list[float]] = {"old": [], "new": []}
    scores = {}
    for _ in range(repeats):
        for name, settings in (("old", old_settings), ("new", new_settings)):
            apply_settings(eager, settings)
            start = time.perf_counter()
            rendered = fx.render(population, COLOUR_256.side, COLOUR_256.side)
            scores[name] = eager.probabilities(rendered)
            times[name].append(time.perf_counter() - start)
            print(f"  {name}: {times[name][-1]:.2f} s", flush=True)
    report(
        "ImageNet CPPN generation, 400 x 256 x 256",
        times,
        float((scores["old"] - scores["new"]).abs().max()),
        old_settings,
        new_settings,
    )


def mnist(repeats: int, generations: int) -> None:
    os.environ[FAST_INFERENCE_ENV] = "1"
    os.environ.setdefault(CACHE_ENV, tempfile.mkdtemp(prefix="bench-inference-"))
    # the machine's choice is measured (and the model exported) once, as a user's first run does, before timing
    evolve(EvolveConfig(encoding="cppn", generations=1, batch=200, seed=1, backend="cpu"), None, progress=False)
    times: dict[str, list[float]] = {"old": [], "new": []}
    confidences = {}
    chosen = {}
    for _ in range(repeats):
        for name, fast in (("old", False), ("new", None)):
            config = EvolveConfig(
                encoding="cppn", generations=generations, batch=200, seed=1, backend="cpu", fast_inference=fast
            )
            start = time.perf_counter()
            result = evolve(config, None, progress=False)
            times[name].append(time.perf_counter() - start)
            confidences[name] = result.archive.confidence.double()
            chosen[name] = result.config["inference"]["chosen"]
            print(f"  {name}: {times[name][-1]:.1f} s  ({chosen[name]})", flush=True)
    report(
        f"MNIST CPPN run, {generations} generations x 200",
        times,
        float((confidences["old"] - confidences["new"]).abs().max()),
        InferenceSettings.from_dict(chosen["old"]),
        InferenceSettings.from_dict(chosen["new"]),
    )


def report(
    what: str, times: dict[str, list[float]], difference: float, old: InferenceSettings, new: InferenceSettings
) -> None:
    old_median, new_median = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"{what}, torch {torch.__version__}, {torch.get_num_threads()} threads, {len(times['old'])} runs each:")
    print(f"  old ({old.describe()}): median {old_median:.2f} s")
    print(f"  new ({new.describe()}): median {new_median:.2f} s  ->  {old_median / new_median:.2f}x")
    print(f"  largest per-class confidence difference: {difference:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=("imagenet", "mnist"))
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--generations", type=int, default=1000, help="mnist: generations per run (default 1000)")
    args = parser.parse_args()
    if args.workload == "imagenet":
        imagenet(args.repeats or 2)
    else:
        mnist(args.repeats or 2, args.generations)


if __name__ == "__main__":
    main()
