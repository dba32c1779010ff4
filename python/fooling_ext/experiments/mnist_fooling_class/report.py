"""The MNIST fooling-class experiment's summary: the table of rounds (Markdown and CSV) and rounds.png."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from fooling_ext._files import atomic_write_bytes, atomic_write_text
from fooling_ext.classifiers.datasets.mnist import MNIST_NUM_CLASSES
from fooling_ext.experiments.mnist_fooling_class.config import RetrainConfig, RoundMetrics
from fooling_ext.runs.report import format_confidence
from fooling_ext.search.encodings import ENCODINGS

# Ends of the logit axis of the confidence plot.
_LOGIT_FLOOR, _LOGIT_CEILING = 1e-6, 1e-7


def format_table(rounds: Sequence[RoundMetrics], config: RetrainConfig) -> str:
    """The Markdown table of an experiment: one row per round (the network, then what evolution reached)."""
    header = ["round", "fooling images trained on", "digit test accuracy", "previous round's images in fooling class"]
    header += [f"{encoding} {config.generations} gen.: median, digits >= 99%" for encoding in ENCODINGS]
    if config.measure_runs:
        header += [f"{encoding} {config.measure_generations} gen.: median, digits >= 99.99%" for encoding in ENCODINGS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metrics in rounds:
        previous = metrics.previous_in_fooling_class
        cells = [
            str(metrics.round),
            f"{metrics.fooling_images_trained:,}",
            f"{100 * metrics.test_accuracy:.2f}%",
            "-" if previous is None else f"{100 * previous:.2f}%",
        ]
        cells += [f"{format_confidence(s.median_confidence)}, {s.classes_99:g}" for s in metrics.harvest.values()]
        cells += [f"{format_confidence(s.median_confidence)}, {s.classes_9999:g}" for s in metrics.measure.values()]
        lines.append("| " + " | ".join(cells) + " |")
    notes = (
        f"Round 0: the shipped 10-class LeNet; round r >= 1: an 11-class LeNet trained on MNIST and the fooling "
        f"images of rounds 0..r-1. Each round, {config.runs_per_encoding} harvest runs per encoding "
        f"({config.generations} generations of {config.batch} children) give the {config.images_per_round:,} "
        "fooling images"
    )
    if config.measure_runs:
        notes += (
            f"; measure runs ({config.measure_runs} per encoding, {config.measure_generations} generations) "
            "only measure"
        )
    notes += (
        ". Each cell: the median over runs of the run's median confidence over the 10 digits, and the median "
        "over runs of its digits at or above the threshold."
    )
    return "\n".join(lines) + "\n\n" + notes + "\n"


def _csv(rounds: Sequence[RoundMetrics]) -> str:
    rows = [metrics.row() for metrics in rounds]
    columns = list(rows[0])
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join("" if row[column] is None else repr(row[column]) for column in columns))
    return "\n".join(lines) + "\n"


def plot_rounds(path: Path, rounds: Sequence[RoundMetrics], config: RetrainConfig) -> Path:
    """rounds.png: confidence reached, digits at the threshold, fooling-class recall and test accuracy by round."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = [metrics.round for metrics in rounds]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=110, sharex=True)
    colors = {"cppn": "tab:blue", "direct": "tab:orange"}
    (confidence_ax, classes_ax), (recall_ax, accuracy_ax) = axes
    for encoding in ENCODINGS:
        confidence_ax.plot(
            x,
            [_clipped(m.harvest[encoding].median_confidence) for m in rounds],
            marker="o",
            color=colors[encoding],
            label=f"{encoding}, {config.generations} gen.",
        )
        classes_ax.plot(
            x,
            [m.harvest[encoding].classes_99 for m in rounds],
            marker="o",
            color=colors[encoding],
            label=f"{encoding}, {config.generations} gen., >= 99%",
        )
        if config.measure_runs:
            confidence_ax.plot(
                x,
                [_clipped(m.measure[encoding].median_confidence) for m in rounds],
                marker="s",
                linestyle="--",
                color=colors[encoding],
                label=f"{encoding}, {config.measure_generations} gen.",
            )
            classes_ax.plot(
                x,
                [m.measure[encoding].classes_9999 for m in rounds],
                marker="s",
                linestyle="--",
                color=colors[encoding],
                label=f"{encoding}, {config.measure_generations} gen., >= 99.99%",
            )
    confidence_ax.set_yscale("logit")
    confidence_ax.set_ylim(_LOGIT_FLOOR / 2, 1 - _LOGIT_CEILING / 2)
    confidence_ax.set_ylabel(f"below {_LOGIT_FLOOR:g} drawn at {_LOGIT_FLOOR:g}", fontsize=8)
    confidence_ax.set_title("median confidence evolution reaches", fontsize=10)
    classes_ax.set_ylim(-0.3, MNIST_NUM_CLASSES + 0.3)
    classes_ax.set_title("digits reached (median over runs)", fontsize=10)

    retrained = [m for m in rounds if m.previous_in_fooling_class is not None]
    recall_ax.plot(
        [m.round for m in retrained],
        [100 * p for m in retrained if (p := m.previous_in_fooling_class) is not None],
        marker="o",
        color="tab:green",
        label="previous round's fooling images",
    )
    recall_ax.plot(
        [m.round for m in retrained],
        [100 * t for m in retrained if (t := m.test_digits_as_fooling) is not None],
        marker="o",
        color="tab:red",
        label="real test digits",
    )
    recall_ax.set_ylim(-3, 103)
    recall_ax.set_title("classified as the fooling class (%)", fontsize=10)
    accuracy_ax.plot(x, [100 * m.test_accuracy for m in rounds], marker="o", color="black")
    accuracy_ax.set_title("digit test accuracy (%)", fontsize=10)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.set_xticks(x)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("round")
    fig.suptitle("MNIST fooling class: retrain, then evolve again", fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _clipped(confidence: float) -> float:
    """A confidence the logit axis can draw: exactly 1 (float32 rounding) and vanishing ones (a network that
    calls every evolved image fooling gives digits 1e-30) are drawn at the axis ends."""
    return min(max(confidence, _LOGIT_FLOOR), 1 - _LOGIT_CEILING)


def write_summary(folder: Path, rounds: Sequence[RoundMetrics], config: RetrainConfig) -> None:
    """table.md, table.csv and rounds.png of an experiment folder."""
    atomic_write_text(folder / "table.md", format_table(rounds, config))
    atomic_write_text(folder / "table.csv", _csv(rounds))
    plot_rounds(folder / "rounds.png", rounds, config)
