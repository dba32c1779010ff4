"""Every command's --help: each option has help, and each option that takes a value shows its default."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from fooling_ext.cli import build_parser
from fooling_ext.cli.evolve import EVOLVE_OPTIONS
from fooling_ext.cli.options import flag


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def options(command: str) -> list[argparse.Action]:
    return [
        a for a in commands()[command]._actions if a.option_strings and a.dest != "help" and a.help != argparse.SUPPRESS
    ]


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
        "--generations",
        "--checkpoint-every",
        "--fast-inference",
        "--no-progress",
        "--backend",
        "--model",
    ]


def test_model_classes_help_says_the_file_may_be_json_as_well_as_one_name_per_line():
    for command in ("evolve", "gradient"):
        text = next(a.help for a in options(command) if a.dest == "model_classes")
        assert "one name per line" in text and "JSON list of names" in text and '"0".."K-1"' in text


@pytest.mark.parametrize("argv", [["--help"], ["report", "--help"], ["evolve", "--help"]])
def test_help_imports_no_torch_matplotlib_or_ray(argv):
    code = (
        "import sys\nfrom fooling_ext.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'ray', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_the_choices_and_defaults_the_parser_spells_agree_with_the_package():
    # The parser spells them itself so that `fooling --help` imports no torch; they must stay the package's.
    gradient_ascent = importlib.import_module("fooling_ext.experiments.gradient_ascent")  # the module
    from fooling_ext.classifiers import pinned_training, training
    from fooling_ext.classifiers.combined import COMBINE_RULES
    from fooling_ext.classifiers.datasets.photos import FOOLBOX_HINT
    from fooling_ext.classifiers.spec import OUTPUT_KINDS
    from fooling_ext.cli import gradient, imagenet_fooling_class, mnist_fooling_class, options, train_mnist
    from fooling_ext.core.backend import BACKENDS
    from fooling_ext.core.cppn import DEFAULT_MAX_EDGES, DEFAULT_MAX_NODES
    from fooling_ext.core.mutation import ADD_EDGE_MODES
    from fooling_ext.core.render import COLORS, COORDS
    from fooling_ext.experiments.imagenet_fooling_class import RowFit
    from fooling_ext.experiments.mnist_fooling_class import RetrainConfig
    from fooling_ext.search.archive import INSERTION_MODES
    from fooling_ext.search.encodings import ENCODINGS

    assert options.BACKEND_CHOICES == BACKENDS and options.OUTPUT_CHOICES == OUTPUT_KINDS
    assert options.ENCODING_CHOICES == ENCODINGS and options.INSERTION_CHOICES == INSERTION_MODES
    assert options.COORDS_CHOICES == tuple(COORDS) and set(options.COLOR_CHOICES) == set(COLORS)
    assert options.ADD_EDGE_CHOICES == tuple(ADD_EDGE_MODES)
    assert options.COMBINE_CHOICES == COMBINE_RULES
    assert (options.DEFAULT_MAX_NODES, options.DEFAULT_MAX_EDGES) == (DEFAULT_MAX_NODES, DEFAULT_MAX_EDGES)
    assert (gradient.START_MODES, gradient.LR_POLICIES) == (gradient_ascent.START_MODES, gradient_ascent.LR_POLICIES)
    assert imagenet_fooling_class.FOOLBOX_HINT == FOOLBOX_HINT
    assert imagenet_fooling_class.WEIGHT_DECAY == RowFit().weight_decay
    assert train_mnist.PINNED_ISA == pinned_training.PINNED_ISA
    for name in ("OUT", "EPOCHS", "BATCH_SIZE", "LR", "SEED", "THREADS"):
        assert getattr(train_mnist, f"DEFAULT_{name}") == getattr(training, f"DEFAULT_{name}"), name
    config = RetrainConfig()
    for key, value in vars(mnist_fooling_class._DEFAULTS).items():
        assert getattr(config, key) == value, key


def test_the_fooling_class_table_covers_its_options_and_agrees_with_the_config():
    """imagenet-fooling-class: every option that describes the experiment is in the table that --resume checks,
    is left None by argparse, and defaults to FoolingClassConfig's value."""
    from fooling_ext.cli.imagenet_fooling_class import FOOLING_CLASS_OPTIONS
    from fooling_ext.experiments.imagenet_fooling_class import FoolingClassConfig, RowFit

    actions = {a.dest: a for a in options("imagenet-fooling-class")}
    assert set(actions) - set(FOOLING_CLASS_OPTIONS) == {"out", "resume", "overwrite", "no_progress"}
    assert all(actions[dest].default is None for dest in FOOLING_CLASS_OPTIONS)
    config = FoolingClassConfig(runs=["run"])
    for dest in ("natural", "views", "holdout", "folds", "seed", "batch", "evolve_seed", "generations", "backend"):
        assert FOOLING_CLASS_OPTIONS[dest].default == getattr(config, dest), dest
    assert FOOLING_CLASS_OPTIONS["fast_inference"].default is config.fast_inference is None
    assert FOOLING_CLASS_OPTIONS["weight_decay"].default == RowFit().weight_decay
    assert FOOLING_CLASS_OPTIONS["no_evolve"].default is (not config.evolve)
    assert [flag(d) for d, o in FOOLING_CLASS_OPTIONS.items() if o.recorded is None] == [
        "--generations",
        "--backend",
        "--fast-inference",
    ]
