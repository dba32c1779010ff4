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
import select
import sys

from fooling_ext._version import __version__
from fooling_ext.cli.options import CLIError

# Modules that contribute subcommands, in the order `fooling --help` lists them.
_COMMAND_MODULES = (
    "fooling_ext.cli.evolve",
    "fooling_ext.cli.analyze",
    "fooling_ext.cli.gradient",
    "fooling_ext.cli.gallery",
    "fooling_ext.cli.pack",
    "fooling_ext.cli.imagenet_fooling_class",
    "fooling_ext.cli.mnist_fooling_class",
    "fooling_ext.cli.sweep",
    "fooling_ext.cli.train_mnist",
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``fooling`` command, with every command's subcommand."""
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
            message = re.sub(rf"(?<![\w./\\-]){re.escape(action.dest)}(?= must| is | =)", max(flags, key=len), message)
    return message


def _describe_os_error(exc: OSError) -> str:
    """An operating-system error as one line that names the path (read-only, no space, no permission...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    return f"{reason}: {' -> '.join(str(p) for p in paths)}" if paths else reason


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe or socket whose reader went away (`fooling report RUN | head`). Asked of
    the descriptor itself (poll reports POLLERR on a pipe with no reader), so the answer does not depend on
    whether Python's buffer still held the bytes that failed."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def _quiet_stdout() -> None:
    """Send what is left of standard output to /dev/null, so that the interpreter's last flush does not fail
    (and print "Exception ignored ... BrokenPipeError") on a pipe with no reader."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _flush_stdout() -> bool:
    """Flush standard output; False, with stdout quieted, when its reader went away."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        return False
    except (AttributeError, ValueError):  # replaced by a caller, or closed
        pass
    if _stdout_reader_gone():
        _quiet_stdout()
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error (bad option, bad file, bad folder, bad environment variable) prints one
    line naming the option or the path and exits with status 2, never a traceback. A reader of standard output
    that goes away early (`| head`, `| true`) ends the command quietly with status 0: what it printed was read
    as far as the reader wanted."""
    try:
        status = _main(argv)
    except SystemExit as exc:  # argparse: --help, --version, a usage error
        if not _flush_stdout() and exc.code in (0, None):
            return 0
        raise
    except BrokenPipeError:  # `fooling report RUN | true`: stdout's reader went away before it was written
        if not _stdout_reader_gone():
            raise
        _quiet_stdout()
        return 0
    if not _flush_stdout():
        return 0
    return status


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"fooling {args.command}: error:"
    try:
        return int(args.func(args) or 0)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_reader_gone():  # stop quietly (main)
            raise
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
