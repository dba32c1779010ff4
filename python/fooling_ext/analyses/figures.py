"""The figures of the analyses, drawn by matplotlib without a display."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _nines(p) -> np.ndarray:
    """-log10(1 - p), capped at 7 (1 - p below 1e-7 is float32 rounding)."""
    return -np.log10(np.maximum(1.0 - np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0), 1e-7))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def before_after(
    path: Path,
    before: np.ndarray,
    series: Mapping[str, np.ndarray],
    title: str,
    *,
    axes: tuple[str, str] = ("confidence before", "confidence after"),
    diagonal: str = "no change",
) -> Path:
    """Confidence after a change against confidence before, one point per image and one colour per change
    (`axes`: the x and y labels)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=100)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--", label=diagonal)
    colours = plt.get_cmap("tab10").colors  # its first three: tab:blue, tab:orange, tab:green
    for i, (label, after) in enumerate(series.items()):
        ax.scatter(before, after, s=9, alpha=0.6, color=colours[i % len(colours)], label=label, edgecolors="none")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def histograms(path: Path, panels: Sequence[tuple[str, Mapping[str, np.ndarray]]], title: str) -> Path:
    """One panel per (axis label, {series label: values}); the series of a panel share its bins."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.8), dpi=100, squeeze=False)
    for ax, (label, series) in zip(axes[0], panels):
        values = [np.asarray(v, dtype=np.float64) for v in series.values() if len(v)]
        if values:
            joined = np.concatenate(values)
            bins = np.linspace(float(joined.min()), float(joined.max()) + 1e-9, 31)
            for (name, v), colour in zip(series.items(), ("tab:blue", "tab:orange", "tab:green")):
                if len(v):
                    ax.hist(v, bins=bins, alpha=0.55, color=colour, label=name, density=True)
        ax.set_xlabel(label)
        ax.set_ylabel("density")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def kept_by_grid(path: Path, grids: Sequence[int], series: Mapping[str, Sequence[np.ndarray]], title: str) -> Path:
    """Box plots of the confidence kept after shuffling k x k tiles, per k, one colour per image set."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    width = 0.8 / max(1, len(series))
    handles = []
    for s, ((name, per_grid), colour) in enumerate(zip(series.items(), ("tab:red", "tab:green", "tab:blue"))):
        positions = [g + (s - (len(series) - 1) / 2) * width for g in range(len(grids))]
        data = [np.asarray(v, dtype=np.float64) if len(v) else np.array([np.nan]) for v in per_grid]
        box = ax.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True, showfliers=False)
        for patch in box["boxes"]:
            patch.set_facecolor(colour)
            patch.set_alpha(0.5)
        handles.append((box["boxes"][0], name))
    ax.set_xticks(range(len(grids)), [f"{k} x {k}" for k in grids])
    ax.set_xlabel("tiles shuffled")
    ax.set_ylabel("confidence kept (after / before)")
    ax.set_ylim(-0.02, 1.3)
    ax.grid(alpha=0.3, axis="y")
    ax.legend([h for h, _ in handles], [n for _, n in handles], fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def occlusion_panels(
    path: Path, images: Sequence[np.ndarray], maps: Sequence[np.ndarray], titles: Sequence[str]
) -> Path:
    """Each image (uint8 [C, H, W]) over its occlusion map: the class confidence with the patch at each place, on
    a scale that shows the nines (-log10(1 - p): 90%, 99%, 99.9% evenly spaced), since fooling images sit near 1."""
    plt = _pyplot()
    top = max([4.0] + [float(_nines(m).max()) for m in maps])
    ticks = [0.0, float(_nines(0.5))] + list(range(1, int(np.ceil(top)) + 1))
    labels = ["0%", "50%"] + [
        f"{100 - 10 ** (2 - n):g}%" if n <= 2 else "99." + "9" * (n - 2) + "%" for n in range(1, int(np.ceil(top)) + 1)
    ]
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), dpi=100, squeeze=False)
    for i, (image, heat, title) in enumerate(zip(images, maps, titles)):
        shown = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        axes[0][i].imshow(shown, cmap="gray" if image.shape[0] == 1 else None, vmin=0, vmax=255)
        axes[0][i].set_title(title, fontsize=7)
        im = axes[1][i].imshow(_nines(heat), cmap="viridis", vmin=0.0, vmax=ticks[-1])
        for row in axes:
            row[i].set_xticks([])
            row[i].set_yticks([])
    axes[1][0].set_ylabel("confidence with the\ngrey patch there", fontsize=7)
    bar = fig.colorbar(im, ax=list(axes[1]), shrink=0.8)
    bar.set_ticks(ticks, labels=labels)
    bar.ax.tick_params(labelsize=7)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
