"""Random valid CPPN genomes for tests: arbitrary DAGs, not only what mutation would grow."""

from __future__ import annotations

import numpy as np

from fooling_ext.core.cppn import ACTIVATIONS, NUM_INPUTS, CPPNPopulation


def random_genome(
    rng: np.random.Generator, num_outputs: int, hidden: int, edge_density: float = 0.35, weight_scale: float = 10.0
) -> dict:
    """A random feed-forward genome: nodes get a random rank (inputs first), edges go from lower to higher
    rank, stored in random order. Outputs may feed hidden nodes too (allowed by the layout)."""
    n = NUM_INPUTS + num_outputs + hidden
    rank = np.empty(n)
    rank[:NUM_INPUTS] = -1.0
    rank[NUM_INPUTS:] = rng.random(n - NUM_INPUTS)
    edges = []
    for s in range(n):
        for d in range(NUM_INPUTS, n):
            if rank[s] < rank[d] and rng.random() < edge_density:
                edges.append([s, d, float(rng.uniform(-weight_scale, weight_scale))])
    rng.shuffle(edges)
    acts = ["input"] * NUM_INPUTS + [ACTIVATIONS[i] for i in rng.integers(0, len(ACTIVATIONS), n - NUM_INPUTS)]
    return {"num_outputs": num_outputs, "activations": acts, "edges": edges}


def random_population(
    batch: int,
    num_outputs: int = 1,
    hidden: tuple[int, int] = (0, 12),
    seed: int = 0,
    max_nodes: int = 64,
    max_edges: int = 512,
    **kwargs,
) -> CPPNPopulation:
    rng = np.random.default_rng(seed)
    genomes = [
        random_genome(rng, num_outputs, int(rng.integers(hidden[0], hidden[1] + 1)), **kwargs) for _ in range(batch)
    ]
    return CPPNPopulation.from_genomes(genomes, max_nodes=max_nodes, max_edges=max_edges)
