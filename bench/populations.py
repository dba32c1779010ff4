"""The CPPN populations the rendering benchmarks time, built deterministically from a seed.

The genomes look like evolved CPPNs rather than arbitrary DAGs: inputs feed hidden nodes, hidden nodes feed
later hidden nodes and the outputs, and outputs are sinks. Every non-input node has 1 to 4 incoming edges
(about 2.5 on average, plus the edges that keep every hidden node useful), and every hidden node reaches an
output, so every renderer does the same work and none can skip a node. Weights are uniform on [-10, 10] and
activations uniform over the four of the paper, as in the paper's initial population and mutations.

Used by bench/conftest.py (fixtures) and bench/peak_memory.py (a separate process).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fooling_ext.core.cppn import ACTIVATIONS, NUM_INPUTS, CPPNPopulation

WEIGHT_RANGE = 10.0
FAN_IN = (1, 4)


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: `batch` genomes with `hidden` (low, high) hidden nodes, rendered at `side`."""

    name: str
    batch: int
    num_outputs: int
    hidden: tuple[int, int]
    side: int
    seed: int

    def population(self) -> CPPNPopulation:
        return benchmark_population(self.batch, self.num_outputs, self.hidden, self.seed)


# The two workloads: MNIST-sized greyscale and ImageNet-sized colour, one generation each.
GREY_28 = Workload("grey-28x28", batch=200, num_outputs=1, hidden=(8, 12), side=28, seed=28)
COLOUR_256 = Workload("colour-256x256", batch=400, num_outputs=3, hidden=(26, 34), side=256, seed=256)
WORKLOADS = (GREY_28, COLOUR_256)


def benchmark_genome(rng: np.random.Generator, num_outputs: int, num_hidden: int) -> dict:
    """One genome dict (the form CPPNPopulation.from_genomes reads) with `num_hidden` hidden nodes.

    Hidden node ids are assigned in a random topological order, as mutation leaves them; edges are stored in
    random order, as deletions and additions leave them.
    """
    first_hidden = NUM_INPUTS + num_outputs
    hidden_ids = [int(v) for v in first_hidden + rng.permutation(num_hidden)]
    outputs = list(range(NUM_INPUTS, first_hidden))
    edges: dict[tuple[int, int], float] = {}

    def connect(src: int, dst: int) -> None:
        edges.setdefault((src, dst), float(rng.uniform(-WEIGHT_RANGE, WEIGHT_RANGE)))

    def connect_from(candidates: list[int], dst: int) -> None:
        fan_in = min(int(rng.integers(FAN_IN[0], FAN_IN[1] + 1)), len(candidates))
        for src in rng.choice(candidates, size=fan_in, replace=False):
            connect(int(src), dst)

    inputs = list(range(NUM_INPUTS))
    for k, node in enumerate(hidden_ids):
        connect_from(inputs + hidden_ids[:k], node)
    for node in outputs:
        connect_from(inputs + hidden_ids, node)
    # A hidden node that feeds nothing would be dropped by the core and by neat-python but not by a plain
    # renderer: give each one a consumer later in the order, so all renderers do the same work.
    for k, node in enumerate(hidden_ids):
        if not any(src == node for src, _ in edges):
            consumers = hidden_ids[k + 1 :] + outputs
            connect(node, consumers[int(rng.integers(len(consumers)))])

    edge_list = [[src, dst, w] for (src, dst), w in edges.items()]
    order = rng.permutation(len(edge_list))
    activations = ["input"] * NUM_INPUTS + [
        ACTIVATIONS[a] for a in rng.integers(0, len(ACTIVATIONS), num_outputs + num_hidden)
    ]
    return {"num_outputs": num_outputs, "activations": activations, "edges": [edge_list[i] for i in order]}


def benchmark_population(batch: int, num_outputs: int, hidden: tuple[int, int], seed: int) -> CPPNPopulation:
    """`batch` genomes whose hidden-node counts are uniform on [hidden[0], hidden[1]], reproducible from
    `seed`, at the core's default capacities."""
    rng = np.random.default_rng(seed)
    genomes = [benchmark_genome(rng, num_outputs, int(rng.integers(hidden[0], hidden[1] + 1))) for _ in range(batch)]
    return CPPNPopulation.from_genomes(genomes)
