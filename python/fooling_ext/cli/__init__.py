"""The ``fooling`` command line (also ``python -m fooling_ext``).

Each command lives in a module of this package named after it; the module exposes ``register_cli(subparsers)``,
which adds its subcommand and sets ``func`` to a callable taking the parsed arguments and returning an exit
status. The options several commands share are defined once, in :mod:`fooling_ext.cli.options`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from fooling_ext._version import __version__
from fooling_ext.cli.options import CLIError

# Modules that contribute subcommands, in the order `fooling --help` lists them.
_COMMAND_MODULES = (
    "fooling_ext.cli.evolve",
    "fooling_ext.cli.analyze",
    "fooling_ext.cli.gradient",
    "fooling_ext.cli.gallery",
    "fooling_ext.cli.imagenet_fooling_class",
    "fooling_ext.cli.mnist_fooling_class",
    "fooling_ext.cli.sweep",
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


# Python parameters named in the library's messages, and the flags a command-line user knows them by.
_PARAMETERS_AS_FLAGS = (("resume=True", "--resume"), ("overwrite=True", "--overwrite"), ("model=PATH", "--model PATH"))


def _as_flags(message: str, parser: argparse.ArgumentParser, command: str) -> str:
    """The library's message in command-line terms: "resume=True" becomes "--resume", and a parameter that
    the message says something about ("seed must be ...") becomes the command's flag for it ("--seed")."""
    for parameter, flag in _PARAMETERS_AS_FLAGS:
        message = message.replace(parameter, flag)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in subparsers.choices[command]._actions:
        flags = [o for o in action.option_strings if o.startswith("--")]
        if flags and action.dest != "help":
            message = re.sub(rf"(?<![\w.-]){re.escape(action.dest)}(?= must| is | =)", max(flags, key=len), message)
    return message


def _describe_os_error(exc: OSError) -> str:
    """An operating-system error as one line that names the path (read-only, no space, no permission...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    return f"{reason}: {' -> '.join(str(p) for p in paths)}" if paths else reason


def _stdout_is_broken() -> bool:
    """Whether standard output's reader went away (a broken pipe elsewhere, a socket say, is an error)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error (bad option, bad file, bad folder, bad environment variable) prints one
    line naming the option or the path and exits with status 2, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"fooling {args.command}: error:"
    try:
        return int(args.func(args) or 0)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_is_broken():  # `fooling report RUN | head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        if exc.errno is None:  # raised by the package with its own message (a FileNotFoundError naming a file)
            print(f"{prefix} {_as_flags(str(exc), parser, args.command)}", file=sys.stderr)
        else:  # from the operating system: read-only folder, disk full, permission denied...
            print(f"{prefix} {_describe_os_error(exc)}", file=sys.stderr)
        return 2
    except (CLIError, ValueError, KeyError, ImportError) as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"{prefix} {_as_flags(message, parser, args.command)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{prefix} out of memory; try a smaller --batch or image size", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fooling {args.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["CLIError", "build_parser", "main"]
