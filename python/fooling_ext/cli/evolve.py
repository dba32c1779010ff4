"""``fooling evolve`` (MAP-Elites against a classifier, into a run folder) and ``fooling report``."""

from __future__ import annotations

import argparse
import sys

from fooling_ext import _core
from fooling_ext.cli.options import add_model_arguments, classifier_from_args, parse_size, probability, whole_number
from fooling_ext.core.cppn import DEFAULT_MAX_EDGES, DEFAULT_MAX_NODES, NUM_INPUTS
from fooling_ext.core.mutation import ADD_EDGE_MODES
from fooling_ext.core.render import COLORS, COORDS
from fooling_ext.runs.report import capacity_lines, capacity_totals, load_report, summary_line
from fooling_ext.search.archive import INSERTION_MODES
from fooling_ext.search.config import EvolveConfig, check_capacity
from fooling_ext.search.encodings import ENCODINGS
from fooling_ext.search.evolve import evolve


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
    p.add_argument("--coords", choices=tuple(COORDS), default="normalized",
                   help="CPPN x, y inputs on [-1, 1] or as pixel indices (the original code)")
    p.add_argument("--color", choices=tuple(COLORS), default="hsl", help="how 3 CPPN outputs become RGB")
    p.add_argument("--max-nodes", type=whole_number(NUM_INPUTS + 1), default=None,
                   help=f"CPPN genome capacity in nodes, inputs and outputs included (default {DEFAULT_MAX_NODES}; "
                        f"at most {_core.MAX_NODES_CAPACITY})")
    p.add_argument("--max-edges", type=whole_number(NUM_INPUTS), default=None,
                   help=f"CPPN genome capacity in edges (default {DEFAULT_MAX_EDGES}; at most "
                        f"{_core.MAX_EDGES_CAPACITY})")
    p.add_argument("--add-edge", choices=tuple(ADD_EDGE_MODES), default=None,
                   help="CPPN add connection: 'original' (the original code: any feed-forward target, parallel "
                        "edges allowed; the default) or 'rejection' (no duplicates; earlier runs' rule); on "
                        "--resume: the run's own")
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
    cppn_only = [name for name, value in (("--max-nodes", args.max_nodes), ("--max-edges", args.max_edges),
                                          ("--add-edge", args.add_edge)) if value is not None]
    if args.encoding != "cppn" and cppn_only:
        raise ValueError(f"{', '.join(cppn_only)} only apply to --encoding cppn (a {args.encoding} genome has no "
                         "nodes or edges)")
    capacity = {"max_nodes": args.max_nodes or DEFAULT_MAX_NODES, "max_edges": args.max_edges or DEFAULT_MAX_EDGES}
    check_capacity(**capacity)
    clf = classifier_from_args(args)
    direct_mutation = {} if args.mutation_rate is None else {"rate": args.mutation_rate}
    cppn_mutation = {} if args.add_edge is None else {"add_edge": args.add_edge}
    config = EvolveConfig(
        **capacity, cppn_mutation=cppn_mutation,
        model=args.model, encoding=args.encoding, generations=args.generations, batch=args.batch, seed=args.seed,
        backend=args.backend, insertion=args.insertion, image_size=args.image_size,
        checkpoint_every=args.checkpoint_every, coords=args.coords, color=args.color,
        direct_mutation=direct_mutation, halve_every=args.halve_every, fast_inference=args.fast_inference,
    )
    result = evolve(config, args.out, classifier=clf, resume=args.resume, overwrite=args.overwrite,
                    progress=not args.no_progress)
    conf = result.archive.confidences()
    print(summary_line(conf))
    if args.encoding == "cppn":
        for line in capacity_lines(capacity_totals(result.metrics), config.max_nodes, config.max_edges):
            print(line, file=sys.stderr if line.startswith("WARNING") else sys.stdout)
    print(f"run folder: {result.folder}")
    return 0


def _cmd_report(args) -> int:
    print(load_report(args.run))
    return 0
