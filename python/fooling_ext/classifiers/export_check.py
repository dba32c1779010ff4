"""Refusing a ``torch.export`` archive (.pt2) that would run code while it loads or runs.

``torch.export.load`` unpickles parts of the archive and, when torch's weights-only unpickler refuses one,
falls back to the full unpickler, which runs whatever the pickle names. It also unpickles tensors flagged
``use_pickle`` and custom or opaque objects with the full unpickler, loads AOTInductor shared libraries, parses
the symbolic shape expressions with ``sympy.sympify`` (which evaluates Python), and resolves call targets to any
attribute of ``torch``, ``operator`` or ``math``. :func:`check_export_archive` reads the archive's bytes before
torch does and refuses each of these unless it is data: every part torch would unpickle must load with the
weights-only unpickler (so torch's fallback never runs), no compiled code, no pickled Python objects, shape
expressions made of numbers, symbols and sympy's arithmetic only, and call targets that are operators. The
caller then hands torch the very bytes that were checked.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from fooling_ext.classifiers.classifier import first_line

_TEXT_PARTS = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
_PAYLOAD_CONFIGS = ("data/weights/", "data/constants/")

# Functions a serialized shape expression may call: sympy's constructors and the torch.utils._sympy functions
# the deserializer provides. Anything else (sympify, S, Lambda, a builtin) could evaluate code.
_SYMPY_CALLS = {
    "Symbol",
    "Integer",
    "Rational",
    "Float",
    "Add",
    "Mul",
    "Pow",
    "Max",
    "Min",
    "Abs",
    "Mod",
    "Eq",
    "Ne",
    "Lt",
    "Le",
    "Gt",
    "Ge",
    "And",
    "Or",
    "Not",
    "floor",
    "ceiling",
    "sqrt",
    "Piecewise",
    "FloorDiv",
    "ModularIndexing",
    "Where",
    "PythonMod",
    "CleanDiv",
    "CeilToInt",
    "FloorToInt",
    "CeilDiv",
    "LShift",
    "RShift",
    "PowByNatural",
    "FloatPow",
    "FloatTrueDiv",
    "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat",
    "TruncToInt",
    "RoundToInt",
    "RoundDecimal",
    "ToFloat",
    "Identity",
    "OpaqueUnaryFn_sqrt",
    "BitwiseFn_bitwise_and",
    "BitwiseFn_bitwise_or",
}
_EXPRESSION_NODES = (
    ast.Expression,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.keyword,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)
# Python's operator module functions a graph may call on symbolic sizes (attrgetter, methodcaller and the
# like reach any attribute of any object, so they are not here).
_OPERATOR_TARGETS = {
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "neg",
    "pos",
    "abs",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and_",
    "or_",
    "xor",
    "not_",
    "invert",
    "lshift",
    "rshift",
    "getitem",
    "truth",
    "index",
}


class UnsafeModelFile(ValueError):
    """A model file whose loading or running could execute code it carries."""


def check_export_archive(path: Path, data: bytes) -> None:
    """Refuse (UnsafeModelFile naming `path` and the part) a torch.export archive whose loading could run code."""

    def refuse(reason: str) -> UnsafeModelFile:
        return UnsafeModelFile(f"{path}: refused: {reason}")

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        roots = {name.split("/", 1)[0] for name in names}
        if len(roots) != 1 or len(set(names)) != len(names):
            raise refuse(
                "its zip holds several top folders or a name twice, so torch could read other parts "
                "than the ones checked here"
            )
        parts = {name.split("/", 1)[-1]: name for name in names}
        pickled: set[str] = set()
        raw: set[str] = set()
        for part, name in parts.items():
            if part.startswith("data/aotinductor/"):
                raise refuse(f"it holds compiled AOTInductor code ({part}), which would run as it loads")
            if part.startswith(_PAYLOAD_CONFIGS) and part.endswith("_config.json"):
                folder = part[: part.index("/", len("data/")) + 1]
                for entry in _payload_entries(archive.read(name), part, refuse):
                    member = folder + entry["path_name"]
                    if not entry["path_name"].startswith("tensor_") and folder == "data/constants/":
                        raise refuse(f"its constant {entry['path_name']} is a pickled Python object")
                    (pickled if entry.get("use_pickle") else raw).add(member)
        for part, name in parts.items():
            if part in pickled or not (
                part in raw or part in _TEXT_PARTS or part.endswith(".json") or part.startswith("extra/")
            ):
                _check_weights_only(archive.read(name), part, refuse)
            elif part.startswith("models/") and part.endswith(".json"):
                _check_program(archive.read(name), part, refuse)


def _payload_entries(text: bytes, part: str, refuse) -> list[dict[str, Any]]:
    try:
        config = json.loads(text)["config"]
        entries = list(config.values())
        if not all(isinstance(e, dict) and isinstance(e.get("path_name"), str) for e in entries):
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise refuse(f"its {part} is not the payload table torch.export.save writes") from None
    return entries


def _check_weights_only(blob: bytes, part: str, refuse) -> None:
    """What torch would unpickle must load with the weights-only unpickler, so its full-unpickler fallback never
    runs."""
    try:
        torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's message opens with advice to load it anyway; the line that says what was refused is further on
        lines = [line.strip() for line in str(exc).splitlines() if "WeightsUnpickler error" in line]
        reason = lines[0].partition("WeightsUnpickler error:")[2].strip() if lines else first_line(exc)
        reason = reason.split(". ")[0][:160]
        raise refuse(f"its part {part} is not plain tensor data ({reason}), and unpickling it could run code") from None


def _check_program(blob: bytes, part: str, refuse) -> None:
    try:
        program = json.loads(blob)
    except (ValueError, RecursionError):
        raise refuse(f"its program {part} is not valid JSON") from None
    stack = [program]
    while stack:  # a loop, not recursion: the JSON may be nested deeply
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "expr_str" and isinstance(value, str) and not _is_plain_expression(value):
                    raise refuse(
                        f"its program {part} holds a shape expression that is not arithmetic "
                        f"({value[:80]!r}), which sympy would evaluate as Python"
                    )
                if key == "target" and isinstance(value, str) and not _is_operator_target(value):
                    raise refuse(f"its program {part} calls {value[:80]!r}, which is not an operator")
                stack.append(value)


def _is_plain_expression(text: str) -> bool:
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _EXPRESSION_NODES):
            return False
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _SYMPY_CALLS):
            return False
        if isinstance(node, ast.Name) and (node.id.startswith("_") or hasattr(builtins, node.id)):
            return False
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool)):
            return False
    return True


def _is_operator_target(target: str) -> bool:
    """torch.ops.<namespace>.<op>[.<overload>] (not torch.ops' own functions such as load_library),
    operator.<arithmetic> or math.<function>. Torch resolves a target that starts with "torch", "_operator" or
    "math" to an attribute of that module (whatever follows the first dot), one that starts with "#" through
    an extension; any other stays a string."""
    parts = target.split(".")
    if any(p.startswith("__") for p in parts):
        return False
    if target.startswith("torch"):
        return (
            parts[0] == "torch"
            and len(parts) in (4, 5)
            and parts[1] == "ops"
            and not hasattr(type(torch.ops), parts[2])
            and all(p.isidentifier() for p in parts)
        )
    if target.startswith("_operator"):
        return len(parts) == 2 and parts[1] in _OPERATOR_TARGETS
    if target.startswith("math"):
        return len(parts) == 2 and parts[1].isidentifier()
    return not target.startswith("#")
