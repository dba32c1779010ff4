"""The readable text form of a CPPN genome, written by ``CPPNPopulation.describe`` and read back by
:func:`parse_genome` (and ``CPPNPopulation.from_genomes``)::

    cppn outputs=1 nodes=6 edges=5
    node 0 input x
    ...
    node 4 output sine
    node 5 hidden gaussian
    edge 0 -> 5 weight 3.25
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from fooling_ext import _core

NUM_INPUTS = _core.NUM_INPUTS
"""The inputs of every CPPN: x, y, d (distance from the centre) and bias."""
INPUT_NAMES = ("x", "y", "d", "bias")
ACTIVATIONS: tuple[str, ...] = tuple(_core.ACTIVATION_NAMES)
"""The names of the activation functions, in the order of their ids in a genome."""
ACTIVATION_IDS = {name: i for i, name in enumerate(ACTIVATIONS)}


def format_genome(g: dict[str, Any]) -> str:
    """Readable text of a genome dict (see ``CPPNPopulation.genome``)."""
    o = int(g["num_outputs"])
    acts = g["activations"]
    lines = [f"cppn outputs={o} nodes={len(acts)} edges={len(g['edges'])}"]
    for i, a in enumerate(acts):
        if i < NUM_INPUTS:
            lines.append(f"node {i} input {INPUT_NAMES[i]}")
        else:
            kind = "output" if i < NUM_INPUTS + o else "hidden"
            lines.append(f"node {i} {kind} {a}")
    for s, d, w in g["edges"]:
        lines.append(f"edge {s} -> {d} weight {float(np.float32(w)):.9g}")
    return "\n".join(lines)


_HEADER = re.compile(r"^cppn\s+outputs=(\d+)\s+nodes=(\d+)\s+edges=(\d+)$")
_NODE = re.compile(r"^node\s+(\d+)\s+(input|output|hidden)\s+(\S+)$")
_EDGE = re.compile(r"^edge\s+(\d+)\s*->\s*(\d+)\s+weight\s+(\S+)$")


def parse_genome(text: str) -> dict[str, Any]:
    """Parse the text written by :func:`format_genome` back into a genome dict. Errors name the line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    header = _HEADER.match(lines[0]) if lines else None
    if header is None:
        raise ValueError("genome text must start with 'cppn outputs=O nodes=N edges=E'")
    o, n, m = (int(v) for v in header.groups())
    acts: list[str] = []
    edges: list[list[Any]] = []
    for lineno, ln in enumerate(lines[1:], start=2):
        if mt := _NODE.match(ln):
            idx, kind, name = int(mt.group(1)), mt.group(2), mt.group(3)
            if idx != len(acts):
                raise ValueError(f"line {lineno}: node {idx} out of order (expected node {len(acts)})")
            expected = "input" if idx < NUM_INPUTS else ("output" if idx < NUM_INPUTS + o else "hidden")
            if kind != expected:
                raise ValueError(f"line {lineno}: node {idx} must be {expected}, not {kind}")
            if kind == "input":
                if name != INPUT_NAMES[idx]:
                    raise ValueError(f"line {lineno}: input {idx} is {INPUT_NAMES[idx]!r}, not {name!r}")
                acts.append("input")
            else:
                if name not in ACTIVATION_IDS:
                    raise ValueError(f"line {lineno}: unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
                acts.append(name)
        elif mt := _EDGE.match(ln):
            w = float(mt.group(3))
            edges.append([int(mt.group(1)), int(mt.group(2)), w])
        else:
            raise ValueError(f"line {lineno}: cannot read {ln!r}")
    if len(acts) != n or len(edges) != m:
        raise ValueError(f"header says {n} nodes and {m} edges, text has {len(acts)} and {len(edges)}")
    return {"num_outputs": o, "activations": acts, "edges": edges}
