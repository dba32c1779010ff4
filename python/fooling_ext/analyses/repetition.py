"""``fooling analyze repetition``: does an elite need its repeated motif, or is one copy enough?

The paper reports that removing the repeated copies of a motif in an evolved ImageNet image does not cause a
dramatic drop in confidence. Per elite, :func:`~fooling_ext.analyses.motifs.find_motif` looks for a repeated
motif; where one is found, one copy is kept and the rest painted with the background colour, and the image is
scored again. The control removes the same number of pixels at random places (square blocks of the motif's
period). The analysis reports the median drop in confidence and the share of classes still >= 90% and >= 99%.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import fooling_ext.analyses.figures as figures
from fooling_ext.analyses.folder import AnalysisFolder, markdown_table, percent, progress_bar
from fooling_ext.analyses.motifs import (
    MIN_PEAK,
    MIN_PERIOD,
    background_colour,
    find_motif,
    paint,
    random_blocks,
    remove_copies,
)
from fooling_ext.analyses.sources import SCORE_BATCH, class_confidence, load_run, run_classifier
from fooling_ext.classifiers.protocol import ImageScorer
from fooling_ext.core.checks import check_real, check_whole
from fooling_ext.runs.folder import check_out_path
from fooling_ext.runs.images import labelled_grid

THRESHOLDS = (0.9, 0.99)
# The verdict (conclusion()): the median confidence with one copy kept over the median before.
HOLDS, PARTLY = 0.9, 0.5


@dataclass
class RepetitionConfig:
    """The settings of :func:`repetition`: when an elite's repeated motif counts as one, and the examples and
    control drawn; :meth:`check` raises ValueError naming a bad one."""

    min_peak: float = MIN_PEAK  # autocorrelation at the period for a repeat to count
    min_period: float = MIN_PERIOD  # shortest period, in pixels
    examples: int = 12  # example triples (original, one copy, control)
    seed: int = 0  # places of the control's blocks
    batch: int = SCORE_BATCH
    top: int | None = None  # only the most confident elites (default: all)
    min_confidence: float | None = None  # only the elites whose recorded confidence is >= this (default: all)

    def check(self) -> None:
        check_real("min_peak", self.min_peak, 0.0, 1.0)
        check_real("min_period", self.min_period, 0.0, low_open=True)
        check_whole("examples", self.examples, 0)
        check_whole("seed", self.seed, 0)
        check_whole("batch", self.batch, 1)
        if self.top is not None:
            check_whole("top", self.top, 1)
        if self.min_confidence is not None:
            check_real("min_confidence", self.min_confidence, 0.0, 1.0)


def repetition(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    config: RepetitionConfig | None = None,
    classifier: ImageScorer | None = None,
    model: str | None = None,
    device: Any = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Analyse one finished run into the analysis folder `out`; returns the summary (analysis.json's), with its
    verdict on the paper's statement (:func:`conclusion`). `progress`: a progress bar on stderr."""
    config = config or RepetitionConfig()
    check_out_path(out, [run])
    config.check()
    data = load_run(run)
    cells, analysed = data.selection(config.top, config.min_confidence)
    clf = classifier if classifier is not None else run_classifier(data, model=model, device=device)
    with AnalysisFolder(out).writing(overwrite=overwrite) as folder, progress_bar(0, "repetition", progress) as bar:
        rng = np.random.default_rng(config.seed)

        bar.total = 2 * len(cells)  # motifs sought, then scored; the changed images are added once found
        found = []  # (cell, motif)
        for cell in cells:
            motif = find_motif(data.images[cell] / 255.0, min_peak=config.min_peak, min_period=config.min_period)
            if motif is not None:
                found.append((int(cell), motif))
            bar.update(1)
        bar.total += 2 * len(found)
        before_all = class_confidence(clf, data.float_images(cells), cells, config.batch)
        bar.update(len(cells))
        before_of = dict(zip(cells.tolist(), before_all.tolist()))
        by_confidence = sorted(found, key=lambda item: -before_of[item[0]])
        example_cells = {cell for cell, _ in by_confidence[: config.examples]}

        rows, examples = [], {}
        for start in range(0, len(found), config.batch):
            chunk = found[start : start + config.batch]
            after_images, control_images, removed_share = [], [], []
            for cell, motif in chunk:
                image = data.images[cell].astype(np.float32) / 255.0
                after, removed = remove_copies(image, motif)
                block = int(round(min(motif.periods)))
                control_mask = random_blocks(removed.shape, int(removed.sum()), block, rng)
                control = paint(image, control_mask, background_colour(image))
                after_images.append(after)
                control_images.append(control)
                removed_share.append((float(removed.mean()), float(control_mask.mean())))
                if cell in example_cells:
                    examples[cell] = (after, control)
            chunk_cells = np.array([cell for cell, _ in chunk])
            after_conf = class_confidence(clf, _tensor(after_images), chunk_cells, config.batch)
            control_conf = class_confidence(clf, _tensor(control_images), chunk_cells, config.batch)
            bar.update(2 * len(chunk))
            for (cell, motif), share, after_c, control_c in zip(chunk, removed_share, after_conf, control_conf):
                before = before_of[cell]
                rows.append(
                    {
                        "class": cell,
                        "name": data.class_names[cell],
                        "motif": motif.kind,
                        "periods": " ".join(f"{p:.1f}" for p in motif.periods),
                        "removed": share[0],
                        "control_removed": share[1],
                        "before": before,
                        "after": float(after_c),
                        "control": float(control_c),
                        "drop": before - float(after_c),
                        "control_drop": before - float(control_c),
                    }
                )
        summary = summarise(rows, len(cells), config)
        summary.update(model=data.model, encoding=data.encoding, classes_analysed=analysed)
        summary["verdict"], summary["conclusion"] = conclusion(summary)
        _write(folder, data, rows, summary, examples, before_of)
        folder.write_analysis("repetition", [str(run)], summary)
        return summary


def _tensor(images: Sequence[np.ndarray]):
    import torch

    return torch.from_numpy(np.stack(images)).clamp_(0.0, 1.0)


def summarise(rows: Sequence[dict[str, Any]], elites: int, config: RepetitionConfig) -> dict[str, Any]:
    """The figures over the elites with a motif: median drops, shares >= each threshold, and how many of those
    at >= a threshold before stay there."""
    summary: dict[str, Any] = {
        "elites": elites,
        "with_repetition": len(rows),
        "stripes": sum(r["motif"] == "stripes" for r in rows),
        "lattices": sum(r["motif"] == "lattice" for r in rows),
        "settings": asdict(config),
    }
    if not rows:
        return summary
    column = {
        key: np.array([r[key] for r in rows], dtype=np.float64)
        for key in ("before", "after", "control", "drop", "control_drop", "removed")
    }
    summary.update(
        median_removed=float(np.median(column["removed"])),
        median_before=float(np.median(column["before"])),
        median_after=float(np.median(column["after"])),
        median_control=float(np.median(column["control"])),
        median_drop=float(np.median(column["drop"])),
        median_control_drop=float(np.median(column["control_drop"])),
        removal_beats_control=float(np.mean(column["after"] > column["control"])),
    )
    for threshold in THRESHOLDS:
        key = f"{100 * threshold:g}"
        high = column["before"] >= threshold
        summary[f"share_before_ge{key}"] = float(high.mean())
        summary[f"share_after_ge{key}"] = float((column["after"] >= threshold).mean())
        summary[f"share_control_ge{key}"] = float((column["control"] >= threshold).mean())
        summary[f"still_ge{key}"] = float((column["after"][high] >= threshold).mean()) if high.any() else None
        summary[f"control_still_ge{key}"] = float((column["control"][high] >= threshold).mean()) if high.any() else None
        summary[f"count_before_ge{key}"] = int(high.sum())
    return summary


def _write(folder: AnalysisFolder, data, rows, summary, examples, before_of) -> None:
    folder.write_csv("per_class.csv", rows)
    if rows:
        figures.before_after(
            folder.path / "before_after.png",
            np.array([r["before"] for r in rows]),
            {
                "one copy kept": np.array([r["after"] for r in rows]),
                "control: same area at random places": np.array([r["control"] for r in rows]),
            },
            f"{data.model} / {data.encoding}: removing repeated copies ({len(rows)} elites)",
        )
    if examples:
        folder.examples_dir.mkdir(exist_ok=True)
        images, labels, captions = [], [], []
        by_class = {r["class"]: r for r in rows}
        for cell, (after, control) in sorted(examples.items(), key=lambda item: -before_of[item[0]]):
            row = by_class[cell]
            images += [data.images[cell], _uint8(after), _uint8(control)]
            labels += [f"{cell}: {row['name']}", "one copy kept", "control"]
            captions += [percent(row["before"]), percent(row["after"]), percent(row["control"])]
        labelled_grid(np.stack(images), labels, captions, columns=6).save(folder.examples_dir / "pairs.png")
    folder.write_report(report_text(data, rows, summary))


def _uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def conclusion(summary: dict[str, Any]) -> tuple[str, str]:
    """("holds" | "partly" | "does not hold" | "not measured", a sentence with the numbers) on the paper's
    statement that removing the repeated copies lowers the confidence only a little: holds when keeping one copy
    leaves at least HOLDS of the median confidence and, of the elites >= 99% before, at least half stay there;
    partly when it leaves at least PARTLY of it; not measured when no elite repeats a motif."""
    statement = (
        f"For {summary['model']}/{summary['encoding']}, 'removing the repeated copies lowers the "
        "confidence only a little'"
    )
    if not summary["with_repetition"]:
        return "not measured", (
            f"{statement} is not measured: none of the {summary['elites']} elites repeats a "
            "motif, so there is nothing to remove."
        )
    before, after = summary["median_before"], summary["median_after"]
    kept = after / before if before > 0 else 0.0
    still = summary["still_ge99"]
    if kept >= HOLDS and (still is None or still >= 0.5):
        verdict = "holds"
    else:
        verdict = "partly" if kept >= PARTLY else "does not hold"
    text = (
        f"{statement} {verdict}: keeping one copy of the motif of the {summary['with_repetition']} elites that "
        f"repeat one (a median {percent(summary['median_removed'], 1)} of the image removed) takes their median "
        f"confidence from {percent(before)} to {percent(after)}, where painting the same area at random places "
        f"gives {percent(summary['median_control'])}"
    )
    if still is None:
        return verdict, text + "; none was >= 99% before."
    return verdict, text + (
        f"; of the {summary['count_before_ge99']} >= 99% before, {percent(still, 1)} stay "
        f">= 99% ({percent(summary['control_still_ge99'], 1)} with the control)."
    )


def report_text(data, rows, summary) -> str:
    lines = [
        f"# Repetition: {data.path}",
        "",
        f"**{summary['conclusion']}**",
        "",
        f"Classes analysed: {summary['classes_analysed']}.",
        "",
        f"Model {data.model}, encoding {data.encoding}. {summary['with_repetition']} of {summary['elites']} "
        f"elites repeat a motif ({summary['stripes']} stripes, {summary['lattices']} lattices); only those are "
        "changed. One copy kept: the others painted with the background colour. Control: the same area "
        "painted at random places.",
        "",
    ]
    if not rows:
        lines.append("No elite repeats a motif: nothing to remove.")
        return "\n".join(lines)
    table = [
        {
            "": "median confidence",
            "before": percent(summary["median_before"]),
            "one copy kept": percent(summary["median_after"]),
            "control": percent(summary["median_control"]),
        },
        {
            "": "median drop",
            "before": "",
            "one copy kept": percent(summary["median_drop"]),
            "control": percent(summary["median_control_drop"]),
        },
    ]
    for threshold in THRESHOLDS:
        key = f"{100 * threshold:g}"
        table.append(
            {
                "": f"share >= {key}%",
                "before": percent(summary[f"share_before_ge{key}"], 1),
                "one copy kept": percent(summary[f"share_after_ge{key}"], 1),
                "control": percent(summary[f"share_control_ge{key}"], 1),
            }
        )
        table.append(
            {
                "": f"of the {summary[f'count_before_ge{key}']} >= {key}% before, still >= {key}%",
                "before": "",
                "one copy kept": percent(summary[f"still_ge{key}"], 1),
                "control": percent(summary[f"control_still_ge{key}"], 1),
            }
        )
    lines += [
        markdown_table(table),
        f"Median share of the image removed: {percent(summary['median_removed'], 1)}. "
        f"Keeping one copy scores higher than the control for {percent(summary['removal_beats_control'], 1)} "
        "of these elites.",
        "",
        "![before and after](before_after.png)",
        "",
        "Examples (original, one copy kept, control): examples/pairs.png",
        "",
        "## Per class",
        "",
    ]
    shown = sorted(rows, key=lambda r: -r["before"])[:50]
    lines.append(
        markdown_table(
            [
                {
                    k: (percent(v) if k in ("before", "after", "control", "removed") else v)
                    for k, v in r.items()
                    if k not in ("drop", "control_drop", "control_removed")
                }
                for r in shown
            ]
        )
    )
    if len(rows) > len(shown):
        lines.append(f"(the {len(shown)} most confident of {len(rows)}; all in per_class.csv)")
    return "\n".join(lines)
