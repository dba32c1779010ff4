"""Rendering CPPNs with neat-python, the popular NEAT library, as its users do: one network activation per pixel.

Each genome becomes a `neat.nn.FeedForwardNetwork` built the way `FeedForwardNetwork.create` builds one
(node order from `neat.graphs.feed_forward_layers`, sum aggregation, no bias, response 1), with neat-python's
key conventions (inputs -1..-4, outputs 0..C-1) and activation callables implementing the paper's four
formulas. Colour outputs (H, L, S) go through `colorsys.hls_to_rgb`, the standard-library conversion.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from neat.aggregations import sum_aggregation
from neat.graphs import feed_forward_layers
from neat.nn import FeedForwardNetwork

from fooling_ext.core.cppn import NUM_INPUTS, CPPNPopulation


def _sine(p: float) -> float:
    return math.sin(p)


def _sigmoid(p: float) -> float:
    # math.exp overflows past 709; beyond |p| = 60 the result is +-1 to double precision anyway.
    return 2.0 * (1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, p)))) - 0.5)


def _gaussian(p: float) -> float:
    return math.exp(-p * p)


def _linear(p: float) -> float:
    return max(-3.0, min(3.0, p)) / 3.0


ACTIVATION_FUNCTIONS = {"sine": _sine, "sigmoid": _sigmoid, "gaussian": _gaussian, "linear": _linear}


def neat_network(genome: dict) -> FeedForwardNetwork:
    """A FeedForwardNetwork computing the same function as `genome` (a CPPNPopulation.genome dict)."""
    num_outputs = int(genome["num_outputs"])

    def key(node: int) -> int:
        if node < NUM_INPUTS:
            return -1 - node
        return node - NUM_INPUTS if node < NUM_INPUTS + num_outputs else node

    inputs = [key(i) for i in range(NUM_INPUTS)]
    outputs = list(range(num_outputs))
    edges = [(key(s), key(d), float(w)) for s, d, w in genome["edges"]]
    layers, _ = feed_forward_layers(inputs, outputs, [(s, d) for s, d, _ in edges])
    activation_of = {key(n): name for n, name in enumerate(genome["activations"]) if n >= NUM_INPUTS}
    node_evals = []
    for layer in layers:
        for node in sorted(layer):
            links = [(s, w) for s, d, w in edges if d == node]
            node_evals.append((node, ACTIVATION_FUNCTIONS[activation_of[node]], sum_aggregation, 0.0, 1.0, links))
    return FeedForwardNetwork(inputs, outputs, node_evals)


def render_neat(pop: CPPNPopulation, height: int, width: int | None = None) -> np.ndarray:
    """Render every genome pixel by pixel (normalised coordinates, HSL colour): float32 [B, C, H, W]."""
    width = height if width is None else width

    def axis(n: int) -> list[float]:
        return [(2 * i - (n - 1)) / (n - 1) if n > 1 else 0.0 for i in range(n)]

    xs, ys = axis(width), axis(height)
    host = pop.to("cpu")
    images = np.empty((host.batch, host.num_outputs, height, width), dtype=np.float32)
    for b in range(host.batch):
        net = neat_network(host.genome(b))
        for row, y in enumerate(ys):
            for col, x in enumerate(xs):
                values = [min(abs(v), 1.0) for v in net.activate([x, y, math.sqrt(x * x + y * y), 1.0])]
                if host.num_outputs == 3:
                    values = colorsys.hls_to_rgb(*values)
                images[b, :, row, col] = values
    return images
