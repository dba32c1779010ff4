"""The ``fooling`` command line (also ``python -m fooling_ext``).

Each command lives in a module of this package named after it; the module exposes ``register_cli(subparsers)``,
which adds its subcommand and sets ``func`` to a callable taking the parsed arguments and returning an exit
status. The options several commands share are defined once, in :mod:`fooling_ext.cli.options`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fooling_ext._version import __version__
from fooling_ext.cli.options import CLIError

# Modules that contribute subcommands, in the order `fooling --help` lists them.
_COMMAND_MODULES = (
    "fooling_ext.cli.evolve",
    "fooling_ext.cli.gradient",
    "fooling_ext.cli.imagenet_fooling_class",
    "fooling_ext.cli.mnist_fooling_class",
    "fooling_ext.cli.train_mnist",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fooling",
        description="Find images a classifier labels with near-certainty although no person would recognise them.",
    )
    parser.add_argument("--version", action="version", version=f"fooling_ext {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, FileNotFoundError, FileExistsError, ImportError) as exc:
        print(f"fooling {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fooling {args.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["CLIError", "build_parser", "main"]
