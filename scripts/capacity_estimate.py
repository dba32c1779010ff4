"""Estimate how large a MAP-Elites CPPN run's elites grow, from its per-generation insertion counts.

The model: every insertion into the archive (a new or an improved cell) is a child of a parent drawn uniformly
from the occupied cells, one mutation step deeper than it; the real mutation operator (fooling_ext's
mutate_cppn, either add-connection rule) is applied along these lineages, with a capacity far above what they
reach. Which cell an insertion lands in is drawn uniformly (new cells among the empty ones, improved cells
among the occupied ones). Selection by fitness is left out: compare with a real run's measured sizes
(--compare) to see what that costs.

    python scripts/capacity_estimate.py METRICS.csv[.gz] --cells 1000 --batch 400 --outputs 3 --sims 5
    python scripts/capacity_estimate.py RUN/metrics.csv --cells 10 --batch 200 --outputs 1 --compare RUN

Prints, per simulation, the largest elite (nodes, edges) over all generations and the final elites' median,
99th percentile and maximum; with --compare, the same figures measured in the run (metrics.csv's max_nodes /
max_edges columns and archive.npz).
"""

from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

import numpy as np
import torch

from fooling_ext.core.cppn import CPPNPopulation
from fooling_ext.core.mutation import CPPNMutation, mutate_cppn

FIELDS = ("num_nodes", "num_edges", "node_activation", "edge_src", "edge_dst", "edge_weight")


def read_rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


def simulate(
    new_cells: list[int],
    improved: list[int],
    *,
    cells: int,
    batch: int,
    outputs: int,
    add_edge: str,
    seed: int,
    max_nodes: int = 512,
    max_edges: int = 4096,
) -> dict[str, object]:
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    params = CPPNMutation(add_edge=add_edge)
    start = CPPNPopulation.initial(batch, outputs, seed=seed, max_nodes=max_nodes, max_edges=max_edges)
    archive = CPPNPopulation.empty(cells, outputs, max_nodes=max_nodes, max_edges=max_edges)
    occupied = np.zeros(cells, dtype=bool)
    largest = [0, 0]
    per_generation = []
    for g, (k_new, k_imp) in enumerate(zip(new_cells, improved)):
        if g == 0 or not occupied.any():
            targets = rng.choice(cells, k_new, replace=False)
            kids = start.select(torch.from_numpy(rng.integers(0, batch, k_new)))
        else:
            k_new = min(k_new, int((~occupied).sum()))
            k_imp = min(k_imp, int(occupied.sum()))
            if k_new + k_imp == 0:
                per_generation.append(tuple(largest))
                continue
            live = np.flatnonzero(occupied)
            parents = torch.from_numpy(rng.choice(live, k_new + k_imp))
            kids = archive.select(parents)
            blocked = mutate_cppn(kids, seed=seed, generation=g, params=params)
            if bool((blocked != 0).any()):
                raise RuntimeError(f"capacity {max_nodes} / {max_edges} reached: raise it")
            targets = np.concatenate(
                [rng.choice(np.flatnonzero(~occupied), k_new, replace=False), rng.choice(live, k_imp, replace=False)]
            )
        index = torch.from_numpy(targets)
        for name in FIELDS:
            getattr(archive, name)[index] = getattr(kids, name)
        occupied[targets] = True
        mask = torch.from_numpy(occupied)
        largest = [
            max(largest[0], int(archive.num_nodes[mask].max())),
            max(largest[1], int(archive.num_edges[mask].max())),
        ]
        per_generation.append(tuple(largest))
    mask = torch.from_numpy(occupied)
    return {
        "largest": tuple(largest),
        "final_nodes": archive.num_nodes[mask].numpy(),
        "final_edges": archive.num_edges[mask].numpy(),
        "per_generation": per_generation,
    }


def describe(nodes: np.ndarray, edges: np.ndarray) -> str:
    return (
        f"nodes median {np.median(nodes):.0f} p99 {np.percentile(nodes, 99):.0f} max {nodes.max()}; "
        f"edges median {np.median(edges):.0f} p99 {np.percentile(edges, 99):.0f} max {edges.max()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("metrics", type=Path, help="metrics.csv (or .csv.gz) with new_cells and improved_cells")
    ap.add_argument("--cells", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--outputs", type=int, choices=(1, 3), required=True)
    ap.add_argument("--add-edge", choices=("original", "rejection"), default="original")
    ap.add_argument("--sims", type=int, default=5)
    ap.add_argument("--generations", type=int, default=None, help="only the first N generations of the metrics")
    ap.add_argument(
        "--compare", type=Path, default=None, help="a run folder to compare with (metrics.csv, archive.npz)"
    )
    args = ap.parse_args()
    rows = read_rows(args.metrics)[: args.generations]
    new_cells = [int(float(r["new_cells"])) for r in rows]
    improved = [int(float(r["improved_cells"])) for r in rows]
    print(
        f"{len(rows)} generations, {sum(new_cells)} new cells, {sum(improved)} improvements; "
        f"{args.cells} cells, add connection: {args.add_edge}"
    )
    maxima = []
    for s in range(args.sims):
        sim = simulate(
            new_cells,
            improved,
            cells=args.cells,
            batch=args.batch,
            outputs=args.outputs,
            add_edge=args.add_edge,
            seed=1000 + s,
        )
        maxima.append(sim["largest"])
        print(
            f"  simulation {s}: largest elite ever {sim['largest'][0]} nodes, {sim['largest'][1]} edges; final "
            f"{describe(sim['final_nodes'], sim['final_edges'])}"
        )
    print(f"  over the simulations: largest {max(m[0] for m in maxima)} nodes, {max(m[1] for m in maxima)} edges")
    if args.compare is not None:
        measured = read_rows(args.compare / "metrics.csv")[: args.generations]
        if "max_nodes" in measured[0]:
            print(
                f"  measured: largest elite ever {max(int(float(r['max_nodes'])) for r in measured)} nodes, "
                f"{max(int(float(r['max_edges'])) for r in measured)} edges"
            )
        archive = args.compare / "archive.npz"
        if archive.is_file():
            with np.load(archive, allow_pickle=False) as z:
                occ = z["occupied"].astype(bool)
                nodes, edges = z["genome_num_nodes"][occ], z["genome_num_edges"][occ]
            print(f"  measured final: {describe(nodes, edges)}")


if __name__ == "__main__":
    main()
