"""A griffe extension for the API reference (mkdocs.yml): the docstrings name other objects with Sphinx roles
(:class:`Classifier`, :func:`~fooling_ext.core.render`), which mkdocstrings would print as written. Each
becomes the object's name in code, linked to its documentation where the reference documents it."""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?P<role>class|func|meth|mod|attr|data|exc|obj|const):`(?P<tilde>~?)(?P<target>[\w.]+)`")


def _identifier(obj: griffe.Object, role: str, target: str) -> str:
    """The full path of what `target` names in the scope of `obj`, or `target` itself when it is not found."""
    first, _, rest = target.partition(".")
    try:
        path = obj.resolve(first)
    except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError):
        return target
    path = f"{path}.{rest}" if rest else path
    # A function named like the submodule that defines it (analyses.diversity): griffe keeps the submodule
    # under that name, where Python has the function.
    name = path.rsplit(".", 1)[-1]
    try:
        found = obj.modules_collection.get_member(path)
    except (KeyError, ValueError):
        return path
    return f"{path}.{name}" if role != "mod" and found.is_module and name in found.members else path


def _link(obj: griffe.Object, match: re.Match) -> str:
    target = match["target"]
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
    # An optional reference: a link where the target is documented, plain code (no warning) where it is not.
    return f'<autoref identifier="{_identifier(obj, match["role"], target)}" optional><code>{shown}</code></autoref>'


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        objects = [pkg]
        while objects:
            obj = objects.pop()
            if obj.docstring is not None:
                obj.docstring.value = _ROLE.sub(lambda match: _link(obj, match), obj.docstring.value)
            objects.extend(member for member in obj.members.values() if not member.is_alias)
