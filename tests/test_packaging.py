"""Packaging: the supported Python versions agree across pyproject.toml, and the installed package holds its data."""

from __future__ import annotations

import re
import shlex
import tomllib
from importlib import resources
from pathlib import Path

import pytest

import fooling_ext

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def minor_versions_of_classifiers() -> list[int]:
    found = []
    for classifier in PYPROJECT["project"]["classifiers"]:
        match = re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", classifier)
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def test_requires_python_starts_at_the_oldest_classifier_and_the_classifiers_are_a_range() -> None:
    minors = minor_versions_of_classifiers()
    assert minors, "no 'Programming Language :: Python :: 3.N' classifier"
    assert minors == list(range(minors[0], minors[-1] + 1)), f"the classifiers skip a version: 3.{minors}"
    assert PYPROJECT["project"]["requires-python"] == f">=3.{minors[0]}"


def test_cibuildwheel_builds_exactly_the_classified_versions() -> None:
    selectors = PYPROJECT["tool"]["cibuildwheel"]["build"].split()
    built = sorted(int(re.fullmatch(r"cp3(\d+)-\*", s).group(1)) for s in selectors)
    assert built == minor_versions_of_classifiers()


def test_cibuildwheel_runs_the_quick_start_and_the_subset_of_wheel_check() -> None:
    commands = PYPROJECT["tool"]["cibuildwheel"]["test-command"]
    readme = (REPO / "README.md").read_text()
    quick_start = re.search(r"&& (fooling evolve [^\n`]*)", readme).group(1)
    assert commands[0] == quick_start
    script = (REPO / "scripts" / "wheel_check.sh").read_text()
    subset = shlex.split(re.search(r"^SUBSET=\(([^)]*)\)", script, re.MULTILINE).group(1))
    pytest_args = shlex.split(commands[1])
    assert [a for a in pytest_args if a.startswith("tests/")] == subset


def package_data_in_source() -> list[str]:
    """The files of python/fooling_ext/ that are not Python modules or build products: models, data, templates."""
    root = REPO / "python" / "fooling_ext"
    skipped = {".py", ".pyc", ".so"}
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and path.suffix not in skipped and "__pycache__" not in path.parts
    )


def test_the_package_data_includes_the_shipped_model_data_and_templates() -> None:
    data = package_data_in_source()
    for needed in (
        "classifiers/models/mnist_lenet.pt",
        "classifiers/datasets/mnist.npz",
        "gallery/templates/base.html",
    ):
        assert needed in data


@pytest.mark.parametrize("name", package_data_in_source())
def test_the_installed_package_holds_each_data_file(name: str) -> None:
    installed = resources.files(fooling_ext).joinpath(*name.split("/"))
    assert installed.is_file(), f"{name} is not in the installed package at {Path(fooling_ext.__file__).parent}"
