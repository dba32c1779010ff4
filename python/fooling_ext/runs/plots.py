"""The confidence plot of a run: best, median and mean confidence over classes, and classes >= 99%, by
generation. matplotlib draws it without a display."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def plot_metrics(path: Path, metrics: Sequence[dict], title: str = "") -> Path:
    """Confidence over generations (best, median, mean over classes) and classes >= 99%."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    gens = [m["generation"] for m in metrics]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(gens, [m["best"] for m in metrics], label="best class", color="tab:green")
    ax.plot(gens, [m["median"] for m in metrics], label="median over classes", color="tab:blue")
    ax.plot(gens, [m["mean"] for m in metrics], label="mean over classes", color="tab:orange", linestyle="--")
    ax.set_xlabel("generation")
    ax.set_ylabel("confidence")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    num_classes = metrics[-1]["classes"] if metrics else 1
    ax2.plot(gens, [m["n99"] for m in metrics], label="classes >= 99%", color="tab:red", alpha=0.6)
    ax2.set_ylabel("classes >= 99%")
    ax2.set_ylim(0, num_classes * 1.02)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    names = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, names, loc="lower right", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
