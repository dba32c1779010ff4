"""Why the direct encoding needs more than the paper's 50 generations on MNIST: one setting at a time, 5 seeds each.

For each setting, every seed runs MAP-Elites (direct encoding, 200 children per generation) against a LeNet and
records the first generation after which all 10 digits are at >= 99.99%. Generation 0 is the random initial
population of 200, as in the original code (init_size = size = 200). Prints a markdown table: median and range.

Settings (--settings picks some):

  default        no crossover, float pixels (--no-quantize), insertion into every cell a child beats
  crossover      the original code's SBX crossover on (rate 0.5, eta_c 10), as the project implements it
  quantised      8-bit pixels as the original stored them, int(255 g) / 255 (--quantize)
  crossover+q    both: the original code's operators and pixels
  top            insertion only into the child's top class
  batch400       400 children per generation (generations then hold twice the evaluations)
  caffe          crossover+q against a LeNet trained as Caffe's example was: SGD (lr 0.01, momentum 0.9,
                 weight decay 5e-4, "inv" schedule), 10,000 steps of 64 images, on (255 x - mean image) / 256
  caffe-plain    the same Caffe-style LeNet with the project's operators (no crossover, float pixels)

The Caffe-style LeNet is trained once and kept at --caffe-weights.

    python scripts/mnist_direct_factors.py --generations 300
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fooling_ext.classifiers import MNIST_SPEC, evaluate_accuracy, load_classifier
from fooling_ext.classifiers.datasets.mnist import load_mnist
from fooling_ext.classifiers.models import LeNet, load_lenet
from fooling_ext.search import EvolveConfig, evolve

SETTINGS = ("default", "crossover", "quantised", "crossover+q", "top", "batch400", "caffe", "caffe-plain")


class CaffeInput(nn.Module):
    """Caffe's MNIST input from [0, 1] images: pixels in 0..255 minus the mean image, scaled by 1/256."""

    def __init__(self, mean_image: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean_image.reshape(1, 1, 28, 28).to(torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images * 255.0 - self.mean) / 256.0


def caffe_lenet(path: Path, steps: int = 10_000, seed: int = 0) -> nn.Module:
    """Caffe's LeNet on Caffe's input (CaffeInput then LeNet), trained with Caffe's lenet_solver, cached at path."""
    data = load_mnist()
    mean = torch.from_numpy(data.x_train).to(torch.float32).mean(dim=0)
    model = nn.Sequential(CaffeInput(mean), LeNet())
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    torch.manual_seed(seed)
    model[1].reset_parameters()
    x = torch.from_numpy(data.x_train).to(torch.float32).div_(255.0).unsqueeze(1)
    y = torch.from_numpy(data.y_train).to(torch.int64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: (1 + 1e-4 * it) ** -0.75)
    shuffle = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=shuffle)
    position, t0 = 0, time.perf_counter()
    model.train()
    for _ in range(steps):
        if position + 64 > len(y):
            order, position = torch.randperm(len(y), generator=shuffle), 0
        batch = order[position : position + 64]
        position += 64
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    accuracy = evaluate_accuracy(model, data.x_test, data.y_test)
    print(f"Caffe-style LeNet: {accuracy:.4f} test accuracy after {time.perf_counter() - t0:.0f} s; wrote {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


class _AllFooled(Exception):
    def __init__(self, generation: int) -> None:
        super().__init__(generation)
        self.generation = generation


def _stop_when_all_fooled(row: dict) -> None:
    if row["n9999"] == row["classes"]:
        raise _AllFooled(row["generation"])


def first_all_fooled(config: EvolveConfig, classifier) -> int | None:
    """The first generation after which every class is at >= 99.99% (the run stops there), or None."""
    try:
        evolve(config, out=None, classifier=classifier, progress=False, on_generation=_stop_when_all_fooled)
    except _AllFooled as done:
        return done.generation
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--caffe-weights", type=Path, default=Path("runs/caffe_style_lenet.pt"))
    parser.add_argument("--caffe-steps", type=int, default=10_000, help="SGD steps for the Caffe-style LeNet")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    shipped = load_lenet()
    caffe = None  # trained (or read) when a setting first needs it
    names = [str(d) for d in range(10)]

    def scorer(model: nn.Module):
        return load_classifier(model, spec=MNIST_SPEC, class_names=names, name="LeNet")

    print(
        "| setting | first generation with all 10 digits >= 99.99%, per seed | median | range "
        "| seconds per run (to the first generation) |"
    )
    print("|---|---|---|---|---|")
    for setting in args.settings:
        crossover = setting in ("crossover", "crossover+q", "caffe")
        quantised = setting in ("quantised", "crossover+q", "caffe")
        if setting.startswith("caffe") and caffe is None:
            caffe = caffe_lenet(args.caffe_weights, args.caffe_steps)
        network = caffe if setting.startswith("caffe") else shipped
        classifier = scorer(network)
        firsts, seconds = [], []
        for seed in args.seeds:
            config = EvolveConfig(
                model="mnist",
                encoding="direct",
                generations=args.generations,
                seed=seed,
                backend="cpu",
                batch=400 if setting == "batch400" else 200,
                insertion="top" if setting == "top" else "all",
                direct_mutation={"crossover": crossover},
                quantize=quantised,
            )
            t0 = time.perf_counter()
            firsts.append(first_all_fooled(config, classifier))
            seconds.append(time.perf_counter() - t0)
        reached = sorted(f for f in firsts if f is not None)
        shown = ", ".join(str(f) if f is not None else f"> {args.generations - 1}" for f in firsts)
        if len(reached) == len(firsts):
            median, span = f"{statistics.median(reached):g}", f"{reached[0]} to {reached[-1]}"
        else:
            median, span = "not all reached", f"{len(reached)} of {len(firsts)} reached"
        print(f"| {setting} | {shown} | {median} | {span} | {statistics.median(seconds):.1f} |", flush=True)


if __name__ == "__main__":
    main()
