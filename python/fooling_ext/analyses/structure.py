"""``fooling analyze structure``: does the classifier need an elite's global structure?

The paper concludes that the network does not learn global structure: what makes an evolved image a class is
a set of local features. Shuffling an image's tiles on a k x k grid (k = 2, 4, 8; several random orders) keeps
the local features of each tile and destroys the arrangement. The confidence an elite keeps after shuffling
is set beside the confidence natural images of the same classes keep (the MNIST test set for the shipped
LeNet; the foolbox wheel's ImageNet sample photos for the ImageNet model), counting only natural images the
classifier labels correctly. Occlusion maps (a grey patch slid over the image) show where a few elites and
natural images hold what the classifier sees.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

import fooling_ext.analyses.figures as figures
from fooling_ext.analyses.folder import AnalysisFolder, markdown_table, percent, progress_bar
from fooling_ext.analyses.sources import SCORE_BATCH, RunData, class_confidence, load_run, run_classifier, top_class
from fooling_ext.analyses.tiles import occluded, shuffle_tiles, tile_permutations
from fooling_ext.classifiers.protocol import ImageScorer
from fooling_ext.core.checks import check_real, check_unique, check_whole
from fooling_ext.runs.folder import check_out_path
from fooling_ext.runs.images import labelled_grid


@dataclass
class StructureConfig:
    """The settings of :func:`structure`: the tile grids and permutations of the shuffles, the natural images
    compared with, and the occlusion maps; :meth:`check` raises ValueError naming a bad one."""

    grids: tuple[int, ...] = (2, 4, 8)  # k of the k x k tile grids
    permutations: int = 3  # random tile orders per grid
    natural_per_class: int = 20  # MNIST test images per digit
    occlusion: int = 4  # elites (and up to half as many natural images) with occlusion maps
    patch: int = 0  # occluding patch side in pixels (0: a sixth of the image side, at least 2)
    seed: int = 0
    batch: int = SCORE_BATCH
    natural: bool = field(default=True)  # compare with natural images where the project has them
    top: int | None = None  # only the most confident elites (default: all)
    min_confidence: float | None = None  # only the elites whose recorded confidence is >= this (default: all)

    def check(self) -> None:
        if not isinstance(self.grids, (tuple, list)) or not self.grids:
            raise ValueError(f"grids must be a list of whole numbers >= 1, got {self.grids!r}")
        for k in self.grids:
            check_whole("grids", k, 1)
        check_unique("grids", self.grids)
        for name, low in (
            ("permutations", 1),
            ("natural_per_class", 1),
            ("occlusion", 0),
            ("patch", 0),
            ("seed", 0),
            ("batch", 1),
        ):
            check_whole(name, getattr(self, name), low)
        if self.top is not None:
            check_whole("top", self.top, 1)
        if self.min_confidence is not None:
            check_real("min_confidence", self.min_confidence, 0.0, 1.0)


def structure(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    config: StructureConfig | None = None,
    classifier: ImageScorer | None = None,
    model: str | None = None,
    device: Any = None,
    overwrite: bool = False,
    natural: tuple[torch.Tensor, np.ndarray, str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Analyse one finished run into the analysis folder `out`; returns the summary (analysis.json's), with its
    verdict on the paper's statement (:func:`conclusion`). `natural`: (images float [N, C, H, W], labels [N],
    what they are) instead of the project's own set. `progress`: a progress bar on stderr."""
    config = config or StructureConfig()
    check_out_path(out, [run])
    config.check()
    data = load_run(run)
    cells, analysed = data.selection(config.top, config.min_confidence)
    clf = classifier if classifier is not None else run_classifier(data, model=model, device=device)
    with AnalysisFolder(out).writing(overwrite=overwrite) as folder, progress_bar(0, "structure", progress) as bar:
        rng = np.random.default_rng(config.seed)
        orders = {k: tile_permutations(k, config.permutations, rng) for k in config.grids}
        scorings = 1 + sum(len(perms) for perms in orders.values())  # each image before, then in each order

        bar.total = scorings * len(cells)
        fooling = _shuffled_confidence(clf, data.float_images(cells), cells, orders, config.batch, bar)
        if natural is None and config.natural:
            natural = natural_images(data, config.natural_per_class, rng)
        natural_note = "no natural images of these classes in the project" if natural is None else natural[2]
        natural_result, natural_count = None, 0
        if natural is not None:
            images, labels, _ = natural
            predicted, _ = top_class(clf, images, config.batch)
            right = predicted == labels
            natural_count = int(len(labels))
            if right.any():
                natural = (images[torch.from_numpy(right)], labels[right], natural[2])
                bar.total += scorings * int(right.sum())
                natural_result = _shuffled_confidence(clf, natural[0], natural[1], orders, config.batch, bar)

        rows = [
            {
                "class": int(cell),
                "name": data.class_names[cell],
                "before": float(fooling["before"][i]),
                **{f"after_{k}x{k}": float(fooling["after"][k][i]) for k in config.grids},
                **{f"kept_{k}x{k}": float(fooling["kept"][k][i]) for k in config.grids},
            }
            for i, cell in enumerate(cells)
        ]
        summary: dict[str, Any] = {
            "model": data.model,
            "encoding": data.encoding,
            "elites": int(len(cells)),
            "classes_analysed": analysed,
            "natural": natural_note,
            "natural_images": natural_count,
            "natural_correct": 0 if natural_result is None or natural is None else int(len(natural[1])),
            "settings": asdict(config),
            "grids": {},
        }
        for k in config.grids:
            entry = {
                "fooling_median_kept": float(np.median(fooling["kept"][k])),
                "fooling_median_after": float(np.median(fooling["after"][k])),
                "fooling_share_ge90_after": float(np.mean(fooling["after"][k] >= 0.9)),
            }
            if natural_result is not None:
                entry.update(
                    natural_median_kept=float(np.median(natural_result["kept"][k])),
                    natural_median_after=float(np.median(natural_result["after"][k])),
                    natural_share_ge90_after=float(np.mean(natural_result["after"][k] >= 0.9)),
                )
            summary["grids"][f"{k}x{k}"] = entry
        summary["fooling_median_before"] = float(np.median(fooling["before"]))
        if natural_result is not None:
            summary["natural_median_before"] = float(np.median(natural_result["before"]))
        summary["verdict"], summary["conclusion"] = conclusion(summary)
        folder.write_csv("per_class.csv", rows)
        if natural_result is not None and natural is not None:
            folder.write_csv(
                "natural.csv",
                [
                    {
                        "label": int(label),
                        "name": data.class_names[int(label)],
                        "before": float(natural_result["before"][i]),
                        **{f"kept_{k}x{k}": float(natural_result["kept"][k][i]) for k in config.grids},
                    }
                    for i, label in enumerate(natural[1])
                ],
            )
        series = {f"fooling ({len(cells)})": [fooling["kept"][k] for k in config.grids]}
        if natural_result is not None and natural is not None:
            series[f"natural ({len(natural[1])})"] = [natural_result["kept"][k] for k in config.grids]
        figures.kept_by_grid(
            folder.path / "kept.png",
            config.grids,
            series,
            f"{data.model} / {data.encoding}: confidence kept after shuffling tiles",
        )
        folder.examples_dir.mkdir(exist_ok=True)
        _shuffle_examples(folder, data, cells, fooling, orders, config)
        summary["occlusion"] = _occlusion(
            folder, data, clf, cells, fooling["before"], natural if natural_result else None, config
        )
        folder.write_report(report_text(data, summary, rows, config))
        folder.write_analysis("structure", [str(run)], summary)
        return summary


def _shuffled_confidence(clf, images: torch.Tensor, labels, orders, batch: int, bar) -> dict[str, Any]:
    """Confidence before, and per grid the mean over the orders of the confidence after and of after / before."""
    labels = np.asarray(labels)
    before = class_confidence(clf, images, labels, batch)
    bar.update(len(labels))
    after, kept = {}, {}

    def shuffled(k, order):
        values = class_confidence(clf, shuffle_tiles(images, k, order), labels, batch)
        bar.update(len(labels))
        return values

    for k, perms in orders.items():
        values = np.mean([shuffled(k, order) for order in perms], axis=0)
        after[k] = values
        kept[k] = values / np.maximum(before, 1e-12)
    return {"before": before, "after": after, "kept": kept}


def natural_images(data: RunData, per_class: int, rng: np.random.Generator):
    """(images, labels, description) of natural images of the run's classes the project has: the MNIST test set
    for the shipped LeNet, the foolbox wheel's ImageNet photos for the ImageNet model; None otherwise."""
    shape = data.images.shape[1:]
    if data.model == "mnist" and len(data.class_names) == 10 and shape == (1, 28, 28):
        from fooling_ext.classifiers.datasets.mnist import load_mnist

        mnist = load_mnist()
        chosen = np.concatenate(
            [
                rng.choice(np.flatnonzero(mnist.y_test == digit), per_class, replace=False)
                for digit in range(10)
                if data.occupied[digit]
            ]
        )
        images = torch.from_numpy(mnist.x_test[chosen][:, None].astype(np.float32) / 255.0)
        return images, mnist.y_test[chosen].astype(np.int64), f"MNIST test set, {per_class} per digit"
    if data.model == "imagenet" and len(data.class_names) == 1000 and shape[0] == 3:
        from fooling_ext.classifiers.datasets.photos import foolbox_photos, photo_views

        try:
            paths = foolbox_photos(("imagenet",))
        except FileNotFoundError:
            return None
        labelled = [(p, int(m.group(1))) for p in paths if (m := re.search(r"_(\d+)\.[a-z]+$", p.name))]
        labelled = [(p, label) for p, label in labelled if data.occupied[label]]
        if not labelled:
            return None
        views = np.stack([photo_views(p, 1, tuple(shape[1:]), rng)[0] for p, _ in labelled])
        images = torch.from_numpy(views.astype(np.float32) / 255.0)
        return images, np.array([label for _, label in labelled]), "the foolbox wheel's ImageNet sample photos"
    return None


def _shuffle_examples(folder, data, cells, fooling, orders, config) -> None:
    top = np.argsort(-fooling["before"], kind="stable")[: min(6, len(cells))]
    images, labels, captions = [], [], []
    for i in top:
        cell = int(cells[i])
        original = data.float_images([cell])
        images.append(data.images[cell])
        labels.append(f"{cell}: {data.class_names[cell]}")
        captions.append(percent(fooling["before"][i]))
        for k, perms in orders.items():
            shuffled = shuffle_tiles(original, k, perms[0])[0]
            images.append((shuffled * 255).round().to(torch.uint8).numpy())
            labels.append(f"{k} x {k} tiles")
            captions.append(f"mean over orders {percent(fooling['after'][k][i])}")
    grid = labelled_grid(np.stack(images), labels, captions, columns=1 + len(orders))
    grid.save(folder.examples_dir / "shuffled.png")


def _occlusion(folder, data, clf, cells, before, natural, config) -> list[dict[str, Any]]:
    """Occlusion maps of the most confident distinct elites (and a few natural images): examples/occlusion.png."""
    _, h, w = data.images.shape[1:]
    patch = config.patch or max(2, min(h, w) // 6)
    stride = max(1, patch // 2)
    chosen, seen = [], set()
    for i in np.argsort(-before, kind="stable"):
        key = data.images[cells[i]].tobytes()
        if key not in seen:
            seen.add(key)
            chosen.append(("elite", int(cells[i]), data.float_images([cells[i]])[0], data.images[cells[i]]))
        if len(chosen) == config.occlusion:
            break
    if natural is not None:
        firsts = [int(np.flatnonzero(natural[1] == label)[0]) for label in np.unique(natural[1])]
        for j in firsts[: max(1, config.occlusion // 2)]:
            image = natural[0][j]
            chosen.append(("natural", int(natural[1][j]), image, (image * 255).round().to(torch.uint8).numpy()))
    shown, maps, titles, result = [], [], [], []
    for kind, label, image, image_uint8 in chosen:
        copies, shape = occluded(image, patch, stride)
        heat = class_confidence(clf, copies, np.full(len(copies), label), config.batch).reshape(shape)
        base = float(class_confidence(clf, image[None], [label])[0])
        shown.append(image_uint8)
        maps.append(heat)
        titles.append(f"{kind} {label}: {data.class_names[label][:18]}\n{percent(base)}, min {percent(heat.min())}")
        result.append(
            {
                "kind": kind,
                "class": label,
                "confidence": base,
                "min": float(heat.min()),
                "median": float(np.median(heat)),
            }
        )
    if shown:
        figures.occlusion_panels(folder.examples_dir / "occlusion.png", shown, maps, titles)
    return result


def conclusion(summary: dict[str, Any]) -> tuple[str, str]:
    """("holds" | "partly" | "does not hold" | "not compared", a sentence with the numbers) on the paper's
    statement that the fooling images hold no global structure the network uses: per grid, whether the elites
    keep a larger median share of their confidence than natural images of the same classes when their tiles are
    shuffled. Holds on every grid: holds; on none: does not hold; else partly. Without natural images (none in
    the project for these classes, or none labelled correctly) there is nothing to compare with."""
    statement = (
        f"For {summary['model']}/{summary['encoding']}, 'the fooling images hold no global structure the network uses'"
    )
    grids = summary["grids"]
    fooling = ", ".join(f"{percent(e['fooling_median_kept'], 1)} ({g})" for g, e in grids.items())
    if summary["natural_correct"] == 0:
        return "not compared", (
            f"{statement} is not compared: no natural images of these classes were labelled "
            f"correctly; shuffled, the elites keep a median {fooling} of their confidence."
        )
    more = [g for g, e in grids.items() if e["fooling_median_kept"] > e["natural_median_kept"]]
    verdict = "holds" if len(more) == len(grids) else "does not hold" if not more else "partly"
    natural = ", ".join(f"{percent(e['natural_median_kept'], 1)} ({g})" for g, e in grids.items())
    text = (
        f"{statement} {verdict}: with their tiles shuffled the elites keep a median {fooling} of their "
        f"confidence, natural images {natural}"
    )
    if verdict == "partly":
        text += f"; the elites keep more on the {', '.join(more)} grid{'s' * (len(more) > 1)} only"
    return verdict, text + "."


def report_text(data: RunData, summary: dict[str, Any], rows, config: StructureConfig) -> str:
    natural = summary["natural_correct"] > 0
    lines = [
        f"# Structure: {data.path}",
        "",
        f"**{summary['conclusion']}**",
        "",
        f"Classes analysed: {summary['classes_analysed']}.",
        "",
        f"Model {data.model}, encoding {data.encoding}, {summary['elites']} elites. Tiles shuffled on k x k "
        f"grids, {config.permutations} random orders each; 'kept' is the confidence after over the confidence "
        "before, per image (mean over the orders).",
        f"Natural images: {summary['natural']}"
        + (
            f" ({summary['natural_correct']} of {summary['natural_images']} labelled correctly are used)."
            if natural
            else "."
        ),
        "",
    ]
    table = []
    for grid, entry in summary["grids"].items():
        row = {
            "grid": grid,
            "fooling: median kept": percent(entry["fooling_median_kept"], 1),
            "fooling: >= 90% after": percent(entry["fooling_share_ge90_after"], 1),
        }
        if natural:
            row.update(
                {
                    "natural: median kept": percent(entry["natural_median_kept"], 1),
                    "natural: >= 90% after": percent(entry["natural_share_ge90_after"], 1),
                }
            )
        table.append(row)
    lines += [
        f"Median confidence before: fooling {percent(summary['fooling_median_before'])}"
        + (f", natural {percent(summary['natural_median_before'])}" if natural else "")
        + ".",
        "",
        markdown_table(table),
        "![confidence kept](kept.png)",
        "",
        "Examples: examples/shuffled.png (each elite and one order per grid); occlusion maps: examples/occlusion.png",
        "",
        "## Occlusion",
        "",
        markdown_table(
            [
                {**o, "confidence": percent(o["confidence"]), "min": percent(o["min"]), "median": percent(o["median"])}
                for o in summary["occlusion"]
            ]
        ),
        "## Per class",
        "",
    ]
    shown = sorted(rows, key=lambda r: -r["before"])[:50]
    lines.append(
        markdown_table([{k: (v if k in ("class", "name") else percent(v, 1)) for k, v in r.items()} for r in shown])
    )
    if len(rows) > len(shown):
        lines.append(f"(the {len(shown)} most confident of {len(rows)}; all in per_class.csv)")
    return "\n".join(lines)
