"""Compare MNIST CPPN runs made with the two add-connection rules (fooling evolve --add-edge original|rejection):
per run, the first generation with all 10 classes at >= 99.99%, the median confidence at the end, and the
elites' edge and node counts (archive.npz).

    python scripts/add_edge_compare.py RUN [RUN ...]

Each RUN is an evolve run folder; runs are grouped by their recorded add-connection rule.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np


def summarise(run: Path) -> tuple[str, dict]:
    config = json.loads((run / "config.json").read_text())
    rule = config["encoding"]["mutation"].get("add_edge", "rejection")
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    classes = int(rows[-1]["classes"])
    first = next((int(r["generation"]) for r in rows if int(r["n9999"]) == classes), None)
    with np.load(run / "archive.npz", allow_pickle=False) as z:
        occ = z["occupied"].astype(bool)
        edges, nodes = z["genome_num_edges"][occ], z["genome_num_nodes"][occ]
    return rule, {
        "run": run.name,
        "all_9999": first,
        "median": float(rows[-1]["median"]),
        "generations": len(rows),
        "edges": float(np.median(edges)),
        "edges_max": int(edges.max()),
        "nodes": float(np.median(nodes)),
    }


def main() -> None:
    groups: dict[str, list[dict]] = {}
    for arg in sys.argv[1:]:
        rule, row = summarise(Path(arg))
        groups.setdefault(rule, []).append(row)
    for rule, rows in sorted(groups.items()):
        print(f"{rule}: {len(rows)} runs")
        for r in rows:
            print(
                f"  {r['run']}: all 10 >= 99.99% at generation {r['all_9999']}; median after {r['generations']} "
                f"generations {100 * r['median']:.5f}%; elites' edges median {r['edges']:.0f} (max "
                f"{r['edges_max']}), nodes median {r['nodes']:.0f}"
            )
        reached = [r["all_9999"] for r in rows if r["all_9999"] is not None]
        print(
            f"  over runs: generation reaching all 10 at 99.99%: median {np.median(reached) if reached else None} "
            f"({len(reached)} of {len(rows)} runs reached it); final median confidence: median "
            f"{100 * np.median([r['median'] for r in rows]):.5f}%; elites' edges: median of run medians "
            f"{np.median([r['edges'] for r in rows]):.1f}, nodes {np.median([r['nodes'] for r in rows]):.1f}"
        )


if __name__ == "__main__":
    main()
