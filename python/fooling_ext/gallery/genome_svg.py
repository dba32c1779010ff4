"""A CPPN genome drawn as an SVG graph: inputs on the left, outputs on the right, hidden nodes in columns by
their depth (the longest path from an input); each node labelled with its activation, each edge with its
weight (blue positive, red negative, wider for larger magnitudes). Every node and edge carries a <title> (the
tooltip) and data-* attributes, so the drawing can be read back and tested."""

from __future__ import annotations

from html import escape
from typing import Any, Mapping, Sequence

from fooling_ext.core.cppn_text import INPUT_NAMES, NUM_INPUTS

OUTPUT_NAMES = {"hsl": ("H", "L", "S"), "hsv": ("H", "S", "V")}
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
        offset = (tallest - len(nodes)) * ROW / 2
        for row, i in enumerate(nodes):
            pos[i] = (MARGIN + col * COLUMN, MARGIN + offset + row * ROW)
    heaviest = max([abs(w) for _s, _d, w in edges] + [1e-9])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="genome" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'width="{width:.0f}" height="{height:.0f}" role="img" '
             f'aria-label="CPPN genome: {n} nodes, {len(edges)} edges" data-nodes="{n}" data-edges="{len(edges)}">']
    for k, (s, d, w) in enumerate(edges):
        if s not in pos or d not in pos:
            continue
        (x1, y1), (x2, y2) = pos[s], pos[d]
        stroke = "#2166ac" if w >= 0 else "#b2182b"
        thick = 0.8 + 3.2 * abs(w) / heaviest
        span = abs(depth[d] - depth[s])
        # A cubic curve leaving and entering horizontally; long edges and edges within a column bow upwards
        # so they do not run through the nodes between their ends.
        bow = 0.0 if span == 1 else min(12.0 * max(span - 1, 1), 30.0) * (1 if k % 2 else -1)
        dx = max(COLUMN * 0.45, abs(x2 - x1) / 3)
        c1 = (x1 + dx, y1 + bow)
        c2 = (x2 - dx if x2 > x1 else x2 + dx, y2 + bow)
        path = f"M{x1:.1f},{y1:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {x2:.1f},{y2:.1f}"
        mx = 0.125 * x1 + 0.375 * c1[0] + 0.375 * c2[0] + 0.125 * x2  # the curve's midpoint
        my = 0.125 * y1 + 0.375 * c1[1] + 0.375 * c2[1] + 0.125 * y2
        parts.append(
            f'<g class="edge" data-src="{s}" data-dst="{d}" data-weight="{w:.9g}"><title>edge {s} -> {d}, weight '
            f'{w:.6g}</title><path d="{path}" fill="none" stroke="{stroke}" stroke-width="{thick:.2f}" '
            f'stroke-opacity="0.75"/><text x="{mx:.1f}" y="{my - 3:.1f}" class="weight" fill="{stroke}">'
            f'{w:.2f}</text></g>'
        )
    for i in range(n):
        x, y = pos[i]
        name, act = node_label(i, acts[i], o, color)
        kind = "input" if i < NUM_INPUTS else ("output" if i < NUM_INPUTS + o else "hidden")
        title = f"node {i}: {kind} {name}" + ("" if kind == "input" else f", activation {acts[i]}")
        parts.append(
            f'<g class="node {kind}" data-node="{i}" data-activation="{escape(acts[i])}"><title>{escape(title)}</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS}"/>'
            f'<text x="{x:.1f}" y="{y - 3:.1f}" class="name">{escape(name)}</text>'
            + ("" if kind == "input" else f'<text x="{x:.1f}" y="{y + 9:.1f}" class="act">{escape(act)}</text>')
            + "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
