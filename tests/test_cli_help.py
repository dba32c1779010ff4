"""Every command's --help: each option has help, and each option that takes a value shows its default."""

from __future__ import annotations

import argparse

import pytest

from fooling_ext.cli import build_parser
from fooling_ext.cli.evolve import EVOLVE_OPTIONS
from fooling_ext.cli.options import flag


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def options(command: str) -> list[argparse.Action]:
    return [a for a in commands()[command]._actions if a.option_strings and a.dest != "help"
            and a.help != argparse.SUPPRESS]


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_option_has_help_and_every_value_shows_its_default(command):
    for action in options(command):
        assert action.help and len(action.help) > 10, action.option_strings
        takes_value = action.nargs != 0 and not isinstance(action, argparse.BooleanOptionalAction)
        if takes_value and not action.required:
            assert "default" in action.help, (command, action.option_strings, action.help)


def test_evolve_help_shows_the_defaults_its_table_fills_in():
    actions = {a.dest: a for a in options("evolve")}
    for dest, option in EVOLVE_OPTIONS.items():
        action = actions[dest]
        assert action.default is None, dest  # so that an option given can be told from one left out
        if option.default not in (None, False):
            shown = "on" if option.default is True else option.default
            assert f"default {shown}" in action.help or f"default: {shown}" in action.help, dest
    text = " ".join(commands()["evolve"].format_help().split())
    assert "(default normalized)" in text and "(default hls8)" in text


def test_every_evolve_option_that_describes_the_run_is_in_the_table():
    """An option outside the table would be neither refused on --resume nor checked against the encoding."""
    outside = {a.dest for a in options("evolve")} - set(EVOLVE_OPTIONS)
    assert outside == {"out", "resume", "overwrite"}
    assert [flag(d) for d, o in EVOLVE_OPTIONS.items() if o.recorded is None] == [
        "--generations", "--checkpoint-every", "--fast-inference", "--no-progress", "--backend", "--model"]


def test_model_classes_help_says_the_file_may_be_json_as_well_as_one_name_per_line():
    for command in ("evolve", "gradient"):
        text = next(a.help for a in options(command) if a.dest == "model_classes")
        assert "one name per line" in text and "JSON list of names" in text and '"0".."K-1"' in text
