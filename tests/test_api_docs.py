"""The API reference (mkdocs.yml, docs/api/) covers every public name: each subpackage's ``__all__`` and the names
``fooling_ext`` exports have a docstring and a place on a reference page, so that a new public name without either
fails here rather than going missing from the site."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import fooling_ext

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api"
SUBPACKAGES = ("core", "classifiers", "search", "runs", "analyses", "experiments", "sweep", "gallery", "cli")

_DIRECTIVE = re.compile(r"^::: ([\w.]+)\n((?:    .*\n)*)", re.M)


def public_names() -> list[tuple[str, str]]:
    return [(sub, name) for sub in SUBPACKAGES for name in importlib.import_module(f"fooling_ext.{sub}").__all__]


def submodules(package: str) -> set[str]:
    return {info.name for info in pkgutil.iter_modules(importlib.import_module(package).__path__)}


def directives(page: Path) -> list[tuple[str, list[str] | None]]:
    """Each ``::: path`` of a page with its ``members`` option: a list, or None for the module's public names."""
    found = []
    for match in _DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
        options = match[2]
        members = None
        if re.search(r"^\s+members: false$", options, re.M):
            members = []
        elif block := re.search(r"^\s+members:\n((?:\s+- \w+\n)+)", options, re.M):
            members = re.findall(r"- (\w+)", block[1])
        found.append((match[1], members))
    return found


def documented(page: Path) -> set[str]:
    """The paths of the objects a page documents, as mkdocstrings anchors them."""
    paths = set()
    for path, members in directives(page):
        paths.add(path)
        if members is None and inspect.ismodule(module := resolve(path)):
            # the module's __all__, but griffe shows a submodule where __init__ imports its namesake from it
            members = [name for name in module.__all__ if name not in submodules(path)]
        paths.update(f"{path}.{name}" for name in members or ())
    return paths


def resolve(path: str):
    """The object a dotted path names: the module itself where there is one (fooling_ext.core.render is a module
    there, while the attribute `render` of fooling_ext.core is a function)."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def defining_path(obj) -> str | None:
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{name}" if module and name else None


def own_docstring(obj) -> str:
    """The object's own docstring: not one inherited from a base class, nor the signature a dataclass makes up."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        return "" if doc.startswith(f"{obj.__name__}(") else inspect.cleandoc(doc)
    return inspect.getdoc(obj) or ""


def has_docstring_at_run_time(sub: str, name: str) -> bool:
    """Classes, functions and modules; a constant's docstring is in the source only
    (test_reference_reads_every_docstring)."""
    obj = getattr(importlib.import_module(f"fooling_ext.{sub}"), name)
    return inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)


@pytest.mark.parametrize(
    ("sub", "name"), [(sub, name) for sub, name in public_names() if has_docstring_at_run_time(sub, name)]
)
def test_public_name_has_a_docstring(sub, name):
    obj = getattr(importlib.import_module(f"fooling_ext.{sub}"), name)
    assert own_docstring(obj).strip(), f"fooling_ext.{sub}.{name} has no docstring"


@pytest.mark.parametrize(("sub", "name"), public_names())
def test_public_name_is_on_its_reference_page(sub, name):
    page = API / f"{sub}.md"
    obj = getattr(importlib.import_module(f"fooling_ext.{sub}"), name)
    # under this name, from the subpackage, the module that defines it or one that imports it
    assert any(path.rpartition(".")[2] == name and resolve(path) is obj for path in documented(page)), (
        f"fooling_ext.{sub}.{name} is documented by no directive of {page.relative_to(ROOT)}"
    )


def test_every_subpackage_has_a_reference_page():
    assert {name for name in submodules("fooling_ext") if not name.startswith("_")} == set(SUBPACKAGES)
    assert {page.stem for page in API.glob("*.md")} == {*SUBPACKAGES, "index"}


def test_top_level_exports_link_to_their_documentation():
    """docs/api/index.md lists each name of ``import fooling_ext as fx`` and links it to where it is documented."""
    links = dict(re.findall(r"\[`fx\.(\w+)`\]\[([\w.]+)\]", (API / "index.md").read_text(encoding="utf-8")))
    exported = set(fooling_ext.__all__) - {"__version__"}
    assert set(links) == exported
    anchors = set().union(*(documented(page) for page in API.glob("*.md")))
    for name in sorted(exported):
        assert links[name] in anchors, f"fx.{name} links to {links[name]}, which no reference page documents"
        assert resolve(links[name]) is getattr(fooling_ext, name), f"fx.{name} links to another object"


def test_directives_parse_as_mkdocstrings_reads_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# x\n\n::: fooling_ext.gallery\n    options:\n      show_root_heading: false\n\n"
        "::: fooling_ext.runs.plots\n    options:\n      members:\n        - nines\n"
        "        - plot_metrics\n\n"
        "::: fooling_ext.runs\n    options:\n      members: false\n",
        encoding="utf-8",
    )
    assert directives(page) == [
        ("fooling_ext.gallery", None),
        ("fooling_ext.runs.plots", ["nines", "plot_metrics"]),
        ("fooling_ext.runs", []),
    ]
    # genome_svg is the name of a submodule of gallery as well as a function: griffe documents the module there
    assert "fooling_ext.gallery.genome_svg" not in documented(page)
    assert {"fooling_ext.gallery.build_gallery", "fooling_ext.runs.plots.nines"} <= documented(page)


def test_reference_reads_every_docstring():
    """What the site shows: griffe, reading the source as mkdocstrings does (with the reference's extensions),
    finds each public name, constants included, and its docstring."""
    griffe = pytest.importorskip("griffe", reason="the docs extra: pip install '.[docs]'")
    extensions = griffe.load_extensions(f"{ROOT / 'scripts' / 'mkdocs_griffe.py'}:TupleConstants")
    package = griffe.load("fooling_ext", search_paths=[ROOT / "python"], extensions=extensions)
    missing = []
    for sub, name in public_names():
        obj = getattr(importlib.import_module(f"fooling_ext.{sub}"), name)
        path = defining_path(obj) if inspect.isclass(obj) or inspect.isroutine(obj) else f"fooling_ext.{sub}.{name}"
        found = package[path.removeprefix("fooling_ext.")]
        if found.docstring is None or not found.docstring.value.strip():
            missing.append(path)
    assert not missing, f"no docstring where the reference reads one: {missing}"
