"""``fooling evolve`` (MAP-Elites against a classifier, into a run folder) and ``fooling report``."""

from __future__ import annotations

import argparse
import dataclasses

from fooling_ext.cli.options import add_model_arguments, classifier_from_args, parse_size, probability, whole_number
from fooling_ext.core.render import COLORS, COORDS
from fooling_ext.runs.folder import RunFolder
from fooling_ext.runs.report import load_report, summary_line
from fooling_ext.search.archive import INSERTION_MODES
from fooling_ext.search.config import EvolveConfig, upgrade_recorded_config
from fooling_ext.search.encodings import ENCODINGS
from fooling_ext.search.evolve import evolve

_DEFAULTS = EvolveConfig()
_RECORDED_OPTIONS = ("coords", "color", "quantize")  # left out on --resume: the recorded run's value


def register_cli(sub) -> None:
    p = sub.add_parser("evolve", help="evolve fooling images with MAP-Elites",
                       description="Evolve images the classifier labels with near-certainty (MAP-Elites).")
    add_model_arguments(p)
    p.add_argument("--encoding", choices=ENCODINGS, default="cppn", help="genome encoding (default cppn)")
    p.add_argument("--generations", type=whole_number(1), default=200, help="generations to run (default 200)")
    p.add_argument("--batch", type=whole_number(1), default=None,
                   help="children per generation (default: the paper's, 400 for CPPNs against imagenet, else 200)")
    p.add_argument("--seed", type=whole_number(0), default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--insertion", choices=INSERTION_MODES, default="all",
                   help="'all': a child enters every cell it beats (the original code); 'top': only its top class")
    p.add_argument("--image-size", type=parse_size, default=None, metavar="HxW",
                   help="render size (default: the model's input size; 256x256 for imagenet)")
    p.add_argument("--checkpoint-every", type=whole_number(1), default=50, help="generations between checkpoints (default 50)")
    p.add_argument("--coords", choices=tuple(COORDS), default=None,
                   help=f"CPPN x, y inputs on [-1, 1] or as pixel indices (the original code) (default "
                        f"{_DEFAULTS.coords}; with --resume, the run's)")
    p.add_argument("--color", choices=tuple(COLORS), default=None,
                   help=f"how 3 CPPN outputs become RGB: hsl / hsv in float, hue over 360 degrees; hls8 the "
                        f"original code's 8-bit OpenCV HLS, hue bytes in half-degrees (default {_DEFAULTS.color}; "
                        f"with --resume, the run's)")
    p.add_argument("--quantize", action=argparse.BooleanOptionalAction, default=None,
                   help=f"8-bit pixels as the original's: CPPN outputs and direct genes become trunc(255 x) / 255 "
                        f"(default {'on' if _DEFAULTS.quantize else 'off'}; with --resume, the run's)")
    p.add_argument("--mutation-rate", type=probability, default=None,
                   help="direct encoding: per-gene mutation probability (default 0.1)")
    p.add_argument("--halve-every", type=whole_number(1), default=None,
                   help="direct encoding: halve the mutation rate every N generations (the paper: 1000)")
    p.add_argument("--fast-inference", action=argparse.BooleanOptionalAction, default=None,
                   help="run the classifier with the fastest settings (reduced precision, channels-last) whose "
                        "probabilities stay within 1e-3 of float32, measured at start (default: on for cuda, "
                        "off for cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evolve)

    r = sub.add_parser("report", help="print the per-class table of a run folder")
    r.add_argument("run", help="run folder")
    r.set_defaults(func=_cmd_report)


def _cmd_evolve(args) -> int:
    clf = classifier_from_args(args)
    direct_mutation = {} if args.mutation_rate is None else {"rate": args.mutation_rate}
    rendering = _rendering_options(args)
    config = EvolveConfig(
        model=args.model, encoding=args.encoding, generations=args.generations, batch=args.batch, seed=args.seed,
        backend=args.backend, insertion=args.insertion, image_size=args.image_size,
        checkpoint_every=args.checkpoint_every, **rendering,
        direct_mutation=direct_mutation, halve_every=args.halve_every, fast_inference=args.fast_inference,
    )
    result = evolve(config, args.out, classifier=clf, resume=args.resume, overwrite=args.overwrite,
                    progress=not args.no_progress)
    conf = result.archive.confidences()
    print(summary_line(conf))
    print(f"run folder: {result.folder}")
    return 0


def _rendering_options(args) -> dict:
    """--coords, --color, --quantize as given; those left out take the default, or on --resume the value the run
    was recorded with (runs recorded before an option existed: the behaviour they were made with)."""
    recorded: dict = {}
    folder = RunFolder(args.out)
    if args.resume and folder.config_path.is_file():
        recorded = upgrade_recorded_config(folder.read_config()).get("run") or {}
    defaults = dataclasses.asdict(_DEFAULTS)
    return {key: getattr(args, key) if getattr(args, key) is not None else recorded.get(key, defaults[key])
            for key in _RECORDED_OPTIONS}


def _cmd_report(args) -> int:
    print(load_report(args.run))
    return 0
