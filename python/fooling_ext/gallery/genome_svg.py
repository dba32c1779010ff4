"""A CPPN genome drawn as an SVG graph: inputs on the left, outputs on the right, hidden nodes in columns by
their depth (the longest path from an input); each node labelled with its activation, each edge with its
weight (class "pos" or "neg": the gallery's stylesheet draws them blue and red, wider for larger magnitudes).
Every node carries a <title> (its tooltip) and every node and edge data-* attributes, so the drawing can be
read back and tested."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from fooling_ext.core.cppn_text import INPUT_NAMES, NUM_INPUTS

OUTPUT_NAMES = {"hsl": ("H", "L", "S"), "hsv": ("H", "S", "V"), "hls8": ("H", "L", "S")}
SHORT = {"sine": "sin", "sigmoid": "sig", "gaussian": "gau", "linear": "lin"}
COLUMN, ROW, RADIUS, MARGIN = 110, 50, 19, 34


def node_depths(num_nodes: int, num_outputs: int, edges: Sequence[Sequence[float]]) -> list[int]:
    """Column of each node: inputs 0, hidden nodes 1 + the longest path from an input, outputs one column right
    of every other node. A cycle (which a valid genome never has) stops the walk instead of looping."""
    depth = [0] * num_nodes
    is_output = [NUM_INPUTS <= i < NUM_INPUTS + num_outputs for i in range(num_nodes)]
    for i in range(NUM_INPUTS, num_nodes):
        depth[i] = 1
    for _ in range(num_nodes):  # relax: at most num_nodes rounds in a DAG
        changed = False
        for s, d, _w in edges:
            s, d = int(s), int(d)
            if 0 <= s < num_nodes and 0 <= d < num_nodes and not is_output[d] and depth[d] < depth[s] + 1:
                depth[d] = depth[s] + 1
                changed = True
        if not changed:
            break
    last = max([depth[i] for i in range(num_nodes) if not is_output[i]] + [0]) + 1
    return [last if is_output[i] else depth[i] for i in range(num_nodes)]


def node_label(index: int, activation: str, num_outputs: int, color: str | None) -> tuple[str, str]:
    """(the node's name, its activation's short form) as the drawing shows them."""
    if index < NUM_INPUTS:
        return INPUT_NAMES[index], "input"
    if index < NUM_INPUTS + num_outputs:
        names = OUTPUT_NAMES.get(color or "", ()) if num_outputs == 3 else ()
        k = index - NUM_INPUTS
        return (names[k] if names else ("out" if num_outputs == 1 else f"out{k}")), SHORT.get(activation, activation)
    return f"n{index}", SHORT.get(str(activation), str(activation))


def genome_svg(genome: Mapping[str, Any], *, color: str | None = "hsl") -> str:
    """The genome (a dict as ``CPPNPopulation.genome`` returns: num_outputs, activations, edges) as SVG markup."""
    acts = [str(a) for a in genome["activations"]]
    o = int(genome["num_outputs"])
    edges = [(int(s), int(d), float(w)) for s, d, w in genome["edges"]]
    n = len(acts)
    depth = node_depths(n, o, edges)
    columns: dict[int, list[int]] = {}
    for i in range(n):
        columns.setdefault(depth[i], []).append(i)
    sources: dict[int, list[int]] = {}
    for s, d, _w in edges:
        sources.setdefault(d, []).append(s)
    tallest = max(len(c) for c in columns.values())
    width = MARGIN * 2 + COLUMN * (max(columns) if columns else 0)
    height = MARGIN * 2 + ROW * max(tallest - 1, 0)
    pos: dict[int, tuple[float, float]] = {}
    for col in sorted(columns):
        nodes = columns[col]
        if col > 0:  # order a column by the mean height of its nodes' sources: fewer crossings

            def mean_y(i: int) -> float:
                ys = [pos[s][1] for s in sources.get(i, []) if s in pos]
                return sum(ys) / len(ys) if ys else float(i)

            if not all(NUM_INPUTS <= i < NUM_INPUTS + o for i in nodes):
                nodes = sorted(nodes, key=mean_y)
        offset = (tallest - len(nodes)) * ROW // 2
        for row, i in enumerate(nodes):
            pos[i] = (MARGIN + col * COLUMN, MARGIN + offset + row * ROW)
    heaviest = max([abs(w) for _s, _d, w in edges] + [1e-9])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="genome" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-label="CPPN genome: {n} nodes, {len(edges)} edges" data-nodes="{n}" data-edges="{len(edges)}">'
    ]
    half = int(COLUMN * 0.45)
    for k, (s, d, w) in enumerate(edges):
        if s not in pos or d not in pos:
            continue
        (x1, y1), (x2, y2) = pos[s], pos[d]
        sign = "pos" if w >= 0 else "neg"
        span = abs(depth[d] - depth[s])
        # A cubic curve leaving and entering horizontally; long edges and edges within a column bow up or down
        # so they do not run through the nodes between their ends.
        bow = 0 if span == 1 else min(12 * max(span - 1, 1), 30) * (1 if k % 2 else -1)
        dx = max(half, abs(x2 - x1) // 3)
        c1x, c1y, c2x, c2y = x1 + dx, y1 + bow, (x2 - dx if x2 > x1 else x2 + dx), y2 + bow
        mx = (x1 + 3 * c1x + 3 * c2x + x2) // 8  # the curve's midpoint
        my = (y1 + 3 * c1y + 3 * c2y + y2) // 8
        parts.append(
            f'<g class="edge {sign}" data-src="{s}" data-dst="{d}" data-weight="{w:.9g}">'
            f'<path d="M{x1},{y1} C{c1x},{c1y} {c2x},{c2y} {x2},{y2}" '
            f'stroke-width="{0.8 + 3.2 * abs(w) / heaviest:.1f}"/><text x="{mx}" y="{my - 3}">{w:.2f}</text></g>'
        )
    safe = {a: escape(a) for a in set(acts)}
    for i in range(n):
        x, y = pos[i]
        name, act = node_label(i, acts[i], o, color)
        kind = "input" if i < NUM_INPUTS else ("output" if i < NUM_INPUTS + o else "hidden")
        activation = safe[acts[i]]
        if kind == "input":
            parts.append(
                f'<g class="node input" data-node="{i}" data-activation="input"><title>node {i}: input '
                f'{name}</title><circle cx="{x}" cy="{y}" r="{RADIUS}"/>'
                f'<text x="{x}" y="{y + 4}" class="name">{name}</text></g>'
            )
        else:
            parts.append(
                f'<g class="node {kind}" data-node="{i}" data-activation="{activation}"><title>node {i}: '
                f'{kind} {name}, activation {activation}</title><circle cx="{x}" cy="{y}" r="{RADIUS}"/>'
                f'<text x="{x}" y="{y - 3}" class="name">{name}</text>'
                f'<text x="{x}" y="{y + 9}" class="act">{escape(act) if act != acts[i] else activation}'
                f"</text></g>"
            )
    parts.append("</svg>")
    return "".join(parts)
