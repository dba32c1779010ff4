"""The confidence plot of a run: best, median and mean confidence over classes and, below, the number of
classes at >= 99% and >= 99.99%, by generation (or by step, for gradient ascent). matplotlib draws it without a display.

Confidence is drawn on an axis that shows the nines: the height of p is -log10(1 - p), so 90%, 99%, 99.9% and
99.99% are evenly spaced and a run climbing from 99% to 99.99% is seen climbing. float32 probabilities round
to 1.0 above about 1 - 6e-8; such values are drawn at 1 - 1e-7 (the top of the axis, NINES_CAP nines).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn
    from matplotlib.figure import Figure

NINES_CAP = 7  # 1 - p is clipped at 10 ** -NINES_CAP


def nines(p: npt.ArrayLike) -> np.ndarray:
    """-log10(1 - p): 1 for 90%, 2 for 99%, 4 for 99.99%; p <= 0 gives 0, p near 1 at most NINES_CAP."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    out: np.ndarray = -np.log10(np.maximum(1.0 - p, 10.0**-NINES_CAP))
    return out


def nines_label(n: int) -> str:
    """The percentage at n nines: 0 -> "0%", 1 -> "90%", 2 -> "99%", 4 -> "99.99%"."""
    if n <= 0:
        return "0%"
    if n <= 2:
        return f"{100 - 10 ** (2 - n)}%"
    return "99." + "9" * (n - 2) + "%"


def nines_ticks(top: float) -> tuple[list[float], list[str]]:
    """Tick positions and labels up to `top` nines: 0%, 90%, 99%, 99.9%, 99.99% at least (and 50% while the
    axis is short enough to leave it room)."""
    last = int(min(NINES_CAP, max(4, np.ceil(top - 1e-9))))
    positions = [0.0] + ([float(nines(0.5))] if last <= 5 else []) + [float(n) for n in range(1, last + 1)]
    labels = ["0%"] + (["50%"] if last <= 5 else []) + [nines_label(n) for n in range(1, last + 1)]
    return positions, labels


def plot_metrics(
    path: Path, metrics: Sequence[dict[str, Any]], title: str = "", *, x_label: str = "generation"
) -> Path:
    """Confidence over generations (best, median, mean over classes, on the nines axis) and the number of
    classes at >= 99% and >= 99.99%, saved as an image. Rows hold "generation" (the step, for gradient
    ascent), "best", "median", "mean", "n99", optionally "n9999" and "classes". `x_label`: "step" for
    gradient ascent."""
    import matplotlib.pyplot as plt

    fig = metrics_figure(metrics, title, x_label=x_label)
    fig.savefig(path)
    plt.close(fig)
    return path


def metrics_figure(metrics: Sequence[dict[str, Any]], title: str = "", *, x_label: str = "generation") -> Figure:
    """The matplotlib figure plot_metrics saves: axes[0] confidence on the nines axis, axes[1] the number of
    classes at >= 99% and >= 99.99%, below it on the same x axis."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    gens = [m["generation"] for m in metrics]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7.5, 5.0), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    series = {key: nines([m[key] for m in metrics]) for key in ("best", "median", "mean")}
    # Drawn widest first, so where two lines meet both stay visible.
    ax.plot(gens, series["best"], label="best class", color="tab:green", linewidth=4.0, alpha=0.45)
    ax.plot(gens, series["median"], label="median over classes", color="tab:blue", linewidth=1.8)
    ax.plot(gens, series["mean"], label="mean over classes", color="tab:orange", linewidth=1.6, linestyle=(0, (2, 2)))
    ax.set_ylabel("confidence (axis shows the nines)")
    top = max([float(s.max()) for s in series.values() if s.size] + [4.0])
    ticks, labels = nines_ticks(top)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(0.0, ticks[-1] * 1.04)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    num_classes = metrics[-1].get("classes", 1) if metrics else 1
    ax2.plot(gens, [m["n99"] for m in metrics], label="classes >= 99%", color="tab:red", linewidth=1.4)
    if metrics and "n9999" in metrics[0]:
        ax2.plot(
            gens,
            [m["n9999"] for m in metrics],
            label="classes >= 99.99%",
            color="tab:purple",
            linewidth=1.4,
            linestyle=(0, (4, 2)),
        )
    ax2.set_ylabel("classes")
    ax2.set_ylim(0, max(1, num_classes) * 1.08)
    ax2.set_xlabel(x_label)
    ax2.grid(alpha=0.3)
    ax2.legend(loc="best", fontsize=8, framealpha=0.9)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
