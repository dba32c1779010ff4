"""The options several commands share, each defined once: the classifier (``--model`` and the flags that
describe a model file), ``--backend``, and the parsers of sizes and number lists."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.loading import ModelSpec
from fooling_ext.classifiers.spec import OUTPUT_KINDS
from fooling_ext.core.backend import BACKENDS, resolve_device


class CLIError(Exception):
    """A user error on the command line: printed as one line, exit status 2."""


def add_backend_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    """``--backend cpu|cuda|auto``; `what` says what it places (the help's first words)."""
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help=f"{what}; auto picks cuda when the CUDA backend can be used, else cpu (default auto)")


def add_model_arguments(parser: argparse.ArgumentParser, *, default_model: str = "mnist") -> None:
    """Add the options that choose a classifier: ``--model`` and its description flags, ``--crops``, and
    ``--backend`` (where the classifier runs, and with it every other tensor of the command)."""
    group = parser.add_argument_group(
        "classifier",
        "The model to fool. A model file needs its input described, by flags or by a JSON description whose "
        "fields the flags override.",
    )
    group.add_argument("--model", default=default_model, metavar="MODEL",
                       help="mnist (the shipped LeNet), imagenet (EfficientNet-Lite0 standing in for the paper's "
                            "CaffeNet; needs the [imagenet] extra), or a .pt2 / TorchScript / .json file "
                            f"(default: {default_model})")
    group.add_argument("--model-channels", type=int, metavar="C", help="input channels of a model file")
    group.add_argument("--model-size", type=parse_size, metavar="HxW", help="input height x width, e.g. 28x28")
    group.add_argument("--model-mean", type=parse_floats, metavar="M[,M,M]",
                       help="per-channel mean subtracted after scaling (default 0)")
    group.add_argument("--model-std", type=parse_floats, metavar="S[,S,S]",
                       help="per-channel std divided by after subtracting the mean (default 1)")
    group.add_argument("--model-scale", type=float, metavar="X",
                       help="multiplier applied to [0, 1] images first, e.g. 255 (default 1)")
    group.add_argument("--model-output", choices=OUTPUT_KINDS, help="what the model returns (default logits)")
    group.add_argument("--model-classes", metavar="FILE", help="text file with one class name per line")
    group.add_argument("--model-resize", action="store_true", default=None,
                       help="resize images to the model's size instead of rejecting other sizes")
    group.add_argument("--crops", type=int, metavar="N",
                       help="score each image as the mean over 10 crops of NxN (corners, centre, mirrors)")
    add_backend_argument(group, "where the classifier, genomes and images live")


def classifier_from_args(args: argparse.Namespace) -> Classifier:
    """The classifier described by the options of :func:`add_model_arguments`."""
    if args.model.lower().endswith(".json"):
        description = ModelSpec.from_json(args.model)
    else:
        description = ModelSpec(path=args.model)
    overrides: dict[str, Any] = {
        "channels": args.model_channels,
        "mean": args.model_mean,
        "std": args.model_std,
        "scale": args.model_scale,
        "output": args.model_output,
        "resize": args.model_resize,
        "crops": args.crops,
        "classes": args.model_classes,
    }
    if args.model_size is not None:
        overrides["height"], overrides["width"] = args.model_size
    given = {key: value for key, value in overrides.items() if value is not None}
    return dataclasses.replace(description, **given).load(device=resolve_device(args.backend))


def parse_size(text: str) -> tuple[int, int]:
    """An image size given as N (square) or HxW."""
    parts = text.strip().lower().split("x")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        sizes = []
    if len(sizes) == 1:
        sizes *= 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected a size like 28x28 or 224, got {text!r}")
    return sizes[0], sizes[1]


def parse_floats(text: str) -> tuple[float, ...]:
    """Numbers separated by commas."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def whole_number(low: int):
    """An argparse type: a whole number >= `low` (argparse names the option in its message)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}")
        return value
    parse.__name__ = f"whole number >= {low}"
    return parse


def probability(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value
