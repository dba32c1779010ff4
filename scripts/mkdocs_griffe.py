"""Griffe extensions for the API reference (mkdocs.yml), for what griffe's reading of the source misses.

SphinxRoles: the docstrings name other objects with Sphinx roles (:class:`Classifier`,
:func:`~fooling_ext.core.render`), which mkdocstrings would print as written. Each becomes the object's name in
code, linked to its documentation where the reference documents it.

TupleConstants: griffe skips the names of a tuple assignment (`NOT_ADDED, IMPROVED, NEW = 0, 1, 2`), so names
re-exported from one could not be resolved; each becomes a module attribute, with the string after the
assignment as its docstring."""

from __future__ import annotations

import ast
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
                obj.docstring.value = _ROLE.sub(lambda match, obj=obj: _link(obj, match), obj.docstring.value)
            objects.extend(member for member in obj.members.values() if not member.is_alias)


class TupleConstants(griffe.Extension):
    def on_module_members(self, *, node: ast.AST, mod: griffe.Module, agent, **kwargs) -> None:
        if not isinstance(node, ast.Module):
            return
        for statement, following in zip(node.body, [*node.body[1:], None]):
            if not (
                isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Tuple)
                and isinstance(statement.value, ast.Tuple)
                and len(statement.targets[0].elts) == len(statement.value.elts)
            ):
                continue
            docstring = None
            if (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docstring = following.value
            for target, value in zip(statement.targets[0].elts, statement.value.elts):
                if not isinstance(target, ast.Name) or target.id in mod.members:
                    continue
                attribute = griffe.Attribute(
                    target.id, lineno=statement.lineno, endlineno=statement.end_lineno, value=ast.unparse(value)
                )
                attribute.labels.add("module-attribute")  # as griffe labels the constants it reads itself
                if docstring is not None:
                    attribute.docstring = griffe.Docstring(
                        docstring.value,
                        lineno=docstring.lineno,
                        endlineno=docstring.end_lineno,
                        parent=attribute,
                        parser=agent.docstring_parser,
                        parser_options=agent.docstring_options,
                    )
                mod.set_member(target.id, attribute)
