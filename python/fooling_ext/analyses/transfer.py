"""``fooling analyze transfer``: do the images that fool one network fool others?

Each elite of a finished run (a sweep folder: each of its done runs) is scored again by the classifier the run
used (the source) and by each target model, with the input handling ``fooling evolve`` gives a model: renders of
another size reach it resized or as its 10 crops (:func:`~fooling_ext.search.evolve.classifier_for_renders`);
grey elites reach a colour model as three equal channels, colour elites a grey model as their luma (ITU-R 601).
Per target, over all elites and per class: the median confidence on the source and on the target, the share of
elites >= 50%, >= 90% and >= 99% on each (and, of those at a threshold on the source, how many stay), how often
the target's top class is the elite's class, and the median drop (source minus target).

A target must name the same classes in the same order as the run's classifier: the elite of class k is scored
as class k.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

import fooling_ext.analyses.figures as figures
from fooling_ext.analyses.folder import AnalysisFolder, markdown_table, percent, progress_bar
from fooling_ext.analyses.sources import SCORE_BATCH, RunData, expand_runs, run_classifier
from fooling_ext.classifiers.choice_cache import choose_once, default_fast_inference
from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.engines import release_engine
from fooling_ext.classifiers.loading import ModelSpec, load_classifier
from fooling_ext.classifiers.protocol import ImageScorer
from fooling_ext.core.backend import resolve_device
from fooling_ext.core.checks import check_real, check_whole
from fooling_ext.runs.folder import check_out_path
from fooling_ext.runs.images import labelled_grid
from fooling_ext.search.evolve import PROBE_LIMIT, classifier_for_renders

THRESHOLDS = (0.5, 0.9, 0.99)
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as OpenCV turns RGB into grey

Model = str | os.PathLike | ModelSpec | ImageScorer


@dataclass
class TransferConfig:
    """How a transfer analysis scores and shows the elites: the example images per target, the batch each
    model scores at a time, and (optionally) only each run's elites >= `min_confidence` (its recorded confidence),
    then only its `top` most confident of those."""

    examples: int = 8  # elites in each row of examples/transfer_best.png and transfer_worst.png
    batch: int = SCORE_BATCH
    top: int | None = None  # only each run's most confident elites (default: all)
    min_confidence: float | None = None  # only each run's elites whose recorded confidence is >= this

    def check(self) -> None:
        check_whole("examples", self.examples, 0)
        check_whole("batch", self.batch, 1)
        if self.top is not None:
            check_whole("top", self.top, 1)
        if self.min_confidence is not None:
            check_real("min_confidence", self.min_confidence, 0.0, 1.0)


def transfer(
    runs: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    models: Sequence[Model] | Mapping[str, Model],
    config: TransferConfig | None = None,
    classifier: ImageScorer | None = None,
    source_model: str | None = None,
    device: Any = None,
    fast_inference: bool | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Score the elites of `runs` (run folders; a sweep folder stands for its done runs) on each of `models`
    into the analysis folder `out`; returns the summary (analysis.json's).

    `models`: built-in names ("mnist", "imagenet", ...), model files or JSON descriptions, :class:`ModelSpec`
    objects or classifiers in memory; a mapping gives each its name in the outputs (default: the name or path as
    given, a classifier's own name). `classifier`: the source of every run, in place of the one each run
    records (rebuilt from its config.json); `source_model`: the run's model file where it moved. `device`: where the
    models score (default: the first run's backend). `fast_inference`: each classifier runs with the fastest
    settings within 1e-3 of float32, as ``fooling evolve`` chooses them (the source with the engine its run
    recorded, a target with the machine's kept choice, :mod:`~fooling_ext.classifiers.choice_cache`); default on
    unless ``$FOOLING_FAST_INFERENCE`` says 0. `progress`: a progress bar on stderr."""
    config = config or TransferConfig()
    given = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
    check_out_path(out, given)
    config.check()
    named = _named(models)
    loaded = expand_runs(given)
    selected = [run.selection(config.top, config.min_confidence) for run in loaded]
    device = resolve_device(device if device is not None else loaded[0].config.get("run", {}).get("backend", "auto"))
    fast = default_fast_inference() if fast_inference is None else fast_inference
    targets = {name: _load(model, device) for name, model in named.items()}
    with AnalysisFolder(out).writing(overwrite=overwrite) as folder, progress_bar(0, "transfer", progress) as bar:
        bar.total = sum(len(cells) for cells, _ in selected) * (1 + len(targets))
        scored = [
            _score_run(run, cells, targets, config, classifier, source_model, device, fast, bar)
            for run, (cells, _) in zip(loaded, selected)
        ]
        summary = summarise(scored, list(targets), config)
        summary.update(fast_inference=fast, classes_analysed=_analysed(loaded, [text for _, text in selected]))
        _write(folder, scored, list(targets), summary, config)
        folder.write_analysis("transfer", [str(path) for path in given], summary)
        return summary


def _analysed(runs: Sequence[RunData], texts: Sequence[str]) -> str:
    """Which classes of each run were scored, in words (each run named where there are several)."""
    return texts[0] if len(runs) == 1 else "; ".join(f"{run.path}: {text}" for run, text in zip(runs, texts))


def _named(models: Sequence[Model] | Mapping[str, Model]) -> dict[str, Model]:
    if isinstance(models, Mapping):
        items = [(str(name), model) for name, model in models.items()]
    elif isinstance(models, (str, os.PathLike)):
        raise TypeError("models must be a list of models (or a mapping of names to models), not one string")
    else:
        items = [(_model_name(model), model) for model in models]
    if not items:
        raise ValueError("transfer needs at least one target model")
    named: dict[str, Model] = {}
    for name, model in items:
        if name in named:
            raise ValueError(f"the target model {name} is given twice")
        named[name] = model
    return named


def _model_name(model: Model) -> str:
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    if isinstance(model, ModelSpec):
        return model.name or model.path
    if isinstance(model, Mapping):
        return str(model.get("name") or model.get("path"))
    return str(getattr(model, "name", type(model).__name__))


def _load(model: Model, device: torch.device) -> ImageScorer:
    if isinstance(model, (str, os.PathLike, ModelSpec, Mapping)):
        return load_classifier(model, device=device)
    return model


def check_classes(run: RunData, name: str, target: ImageScorer) -> None:
    """Refuse a target whose classes are not the run's, in the same order, naming the first difference."""
    mine, theirs = list(run.class_names), [str(n) for n in target.class_names]
    if mine == theirs:
        return
    first = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))

    def at(names):
        return repr(names[first]) if first < len(names) else "none"

    raise ValueError(
        f"the model {name} does not have the classes of {run.path}'s classifier in the same order "
        f"({len(theirs)} classes against {len(mine)}): the first difference is class {first}, "
        f"{at(theirs)} in {name} and {at(mine)} in the run"
    )


def as_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Images [N, C, H, W] with `channels` channels: grey repeated into colour, colour as its luma."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        return (images * torch.tensor(LUMA, dtype=images.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True).clamp_(0, 1)
    raise ValueError(f"images of {have} channels cannot be given to a model of {channels}")


def score(
    clf: ImageScorer, images: torch.Tensor, classes: np.ndarray, batch: int, name: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """(probability of each image's class, each image's top class); a model that fails is named."""
    conf, top = np.empty(len(images), dtype=np.float64), np.empty(len(images), dtype=np.int64)
    rows = torch.as_tensor(classes, dtype=torch.int64)
    try:
        for start in range(0, len(images), batch):
            probabilities = clf.probabilities(images[start : start + batch].to(clf.device))
            chunk = rows[start : start + batch].to(probabilities.device)
            conf[start : start + batch] = probabilities.gather(1, chunk[:, None])[:, 0].double().cpu().numpy()
            top[start : start + batch] = probabilities.argmax(dim=1).cpu().numpy()
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ValueError(
            f"the model {name} fails on the elites of {where} ({len(images)} images of "
            f"{'x'.join(str(n) for n in images.shape[1:])}): {reason}"
        ) from exc
    if not np.isfinite(conf).all():
        raise ValueError(f"the model {name} gives no finite probability for some elites of {where}")
    return conf, top


@dataclass
class Scored:
    """One run's elites scored on the source and on each target."""

    run: RunData
    cells: np.ndarray
    source: np.ndarray
    targets: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (confidence of the elite's class, top class)


def _score_run(
    run: RunData,
    cells: np.ndarray,
    targets: Mapping[str, ImageScorer],
    config: TransferConfig,
    classifier,
    source_model,
    device,
    fast: bool,
    bar,
) -> Scored:
    images = run.float_images(cells)
    for name, target in targets.items():
        check_classes(run, name, target)
    height, width = images.shape[-2:]
    if classifier is None:  # scored with the engine its run recorded, where fast
        source = run_classifier(run, model=source_model, device=device, fast_inference=fast)
    else:
        source = classifier
        if fast and isinstance(source, Classifier):
            choose_once(source, images[: min(config.batch, PROBE_LIMIT)].to(source.device))
    source_conf, _ = score(source, images, cells, config.batch, f"{run.model} (the run's)", str(run.path))
    if classifier is None:
        _release(source)
    bar.update(len(cells))
    scored = {}
    for name, target in targets.items():
        adapted = classifier_for_renders(target, height, width)
        inputs = as_channels(images, target.spec.channels)
        if fast and isinstance(adapted, Classifier):
            choose_once(adapted, inputs[: min(config.batch, PROBE_LIMIT)].to(adapted.device))
        scored[name] = score(adapted, inputs, cells, config.batch, name, str(run.path))
        _release(adapted)
        bar.update(len(cells))
    return Scored(run, cells, source_conf, scored)


def _release(clf: ImageScorer) -> None:
    """Drop a network's fast-inference session once its elites are scored, before the next network's is made:
    each ONNX Runtime session keeps memory sized by its largest batch, and three of them at once held 15.6 GB for
    1000 ImageNet elites. The next run rebuilds it from the exported file (a fraction of a second)."""
    if isinstance(clf, Classifier) and clf.engine is not None:
        release_engine(clf.engine)
        clf.engine = None


def figures_of(source: np.ndarray, target: np.ndarray, agree: np.ndarray) -> dict[str, Any]:
    """The transfer figures of elites scored `source` and `target`, `agree` where the target's top class is
    the elite's."""
    summary: dict[str, Any] = {
        "elites": len(source),
        "median_source": float(np.median(source)),
        "median_target": float(np.median(target)),
        "mean_source": float(np.mean(source)),
        "mean_target": float(np.mean(target)),
        "median_drop": float(np.median(source - target)),
        "top_class": float(np.mean(agree)),
    }
    for threshold in THRESHOLDS:
        key = f"{100 * threshold:g}"
        high = source >= threshold
        summary[f"share_source_ge{key}"] = float(high.mean())
        summary[f"share_target_ge{key}"] = float((target >= threshold).mean())
        summary[f"still_ge{key}"] = float((target[high] >= threshold).mean()) if high.any() else None
    return summary


def _pooled(scored: Sequence[Scored], name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(source, target, agree, class) of the elites of all `scored` runs on the target `name`."""
    source = np.concatenate([s.source for s in scored])
    target = np.concatenate([s.targets[name][0] for s in scored])
    agree = np.concatenate([s.targets[name][1] == s.cells for s in scored])
    return source, target, agree, np.concatenate([s.cells for s in scored])


def summarise(scored: Sequence[Scored], names: Sequence[str], config: TransferConfig) -> dict[str, Any]:
    """Per target over all elites (and per run, where there are several), with a sentence per target."""
    summary: dict[str, Any] = {
        "elites": int(sum(len(s.cells) for s in scored)),
        "sources": sorted({s.run.model for s in scored}),
        "encodings": sorted({s.run.encoding for s in scored}),
        "targets": {name: figures_of(*_pooled(scored, name)[:3]) for name in names},
    }
    if len(scored) > 1:
        summary["per_run"] = {
            str(s.run.path): {name: figures_of(*_pooled([s], name)[:3]) for name in names} for s in scored
        }
    summary["settings"] = asdict(config)
    summary["conclusion"] = " ".join(_sentence(summary, name) for name in names)
    return summary


def _sentence(summary: dict[str, Any], name: str) -> str:
    f = summary["targets"][name]
    still = (
        "none is >= 99% on the source"
        if f["still_ge99"] is None
        else f"{percent(f['still_ge99'], 1)} of those >= 99% on the source stay >= 99%"
    )
    return (
        f"On {name}, the {f['elites']} elites ({'/'.join(summary['sources'])}, median {percent(f['median_source'])}"
        f" on the source) score a median {percent(f['median_target'])}; {still}, and {percent(f['top_class'], 1)}"
        " are the target's top class."
    )


def per_class_rows(scored: Sequence[Scored], names: Sequence[str], class_names: Sequence[str]) -> list[dict]:
    rows = []
    for name in names:
        source, target, agree, cells = _pooled(scored, name)
        for cell in np.unique(cells):
            mask = cells == cell
            f = figures_of(source[mask], target[mask], agree[mask])
            rows.append(
                {
                    "target": name,
                    "class": int(cell),
                    "name": class_names[cell],
                    "elites": f["elites"],
                    "median_source": f["median_source"],
                    "median_target": f["median_target"],
                    "median_drop": f["median_drop"],
                    "top_class": f["top_class"],
                    **{f"share_target_ge{100 * t:g}": f[f"share_target_ge{100 * t:g}"] for t in THRESHOLDS},
                }
            )
    return rows


def elite_rows(scored: Sequence[Scored], names: Sequence[str]) -> list[dict]:
    rows = []
    for s in scored:
        for name in names:
            conf, top = s.targets[name]
            for i, cell in enumerate(s.cells):
                rows.append(
                    {
                        "run": str(s.run.path),
                        "class": int(cell),
                        "name": s.run.class_names[cell],
                        "target": name,
                        "source": float(s.source[i]),
                        "confidence": float(conf[i]),
                        "drop": float(s.source[i] - conf[i]),
                        "top_class": int(top[i]),
                        "top_name": s.run.class_names[top[i]],
                    }
                )
    return rows


def table_text(summary: dict[str, Any]) -> str:
    """The figures per target (and per run and target) as a plain-text table, for the terminal."""
    header = [
        "run",
        "target",
        "elites",
        "source",
        "target",
        "drop",
        *(f">={100 * t:g}%" for t in THRESHOLDS),
        "top class",
    ]
    rows = [_table_row("all", name, f) for name, f in summary["targets"].items()]
    for run, targets in summary.get("per_run", {}).items():
        rows += [_table_row(run, name, f) for name, f in targets.items()]
    if "per_run" not in summary:
        header, rows = header[1:], [row[1:] for row in rows]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    return (
        "median confidence on the source and on the target, median drop, share of elites at each threshold "
        "(source -> target), share whose top class on the target is theirs\n" + "\n".join(lines)
    )


def _table_row(run: str, name: str, f: dict[str, Any]) -> list[str]:
    shares = [
        f"{percent(f[f'share_source_ge{100 * t:g}'], 1)} -> {percent(f[f'share_target_ge{100 * t:g}'], 1)}"
        for t in THRESHOLDS
    ]
    return [
        run,
        name,
        str(f["elites"]),
        percent(f["median_source"]),
        percent(f["median_target"]),
        percent(f["median_drop"]),
        *shares,
        percent(f["top_class"], 1),
    ]


def _write(
    folder: AnalysisFolder,
    scored: Sequence[Scored],
    names: Sequence[str],
    summary: dict[str, Any],
    config: TransferConfig,
) -> None:
    class_names = scored[0].run.class_names
    folder.write_csv(
        "transfer.csv",
        [
            {"run": run, "target": name, **f}
            for run, targets in [("all", summary["targets"]), *summary.get("per_run", {}).items()]
            for name, f in targets.items()
        ],
    )
    folder.write_csv("per_class.csv", per_class_rows(scored, names, class_names))
    folder.write_csv("elites.csv", elite_rows(scored, names))
    source = np.concatenate([s.source for s in scored])
    figures.before_after(
        folder.path / "transfer.png",
        source,
        {name: _pooled(scored, name)[1] for name in names},
        f"{'/'.join(summary['sources'])} / {'/'.join(summary['encodings'])}: "
        f"{summary['elites']} elites on other models",
        axes=("confidence on the source", "confidence on the target"),
        diagonal="same on both",
    )
    if config.examples:
        folder.examples_dir.mkdir(exist_ok=True)
        for which in ("best", "worst"):
            _examples(scored, names, config.examples, which).save(folder.examples_dir / f"transfer_{which}.png")
    folder.write_report(report_text(scored, names, summary))


def _examples(scored: Sequence[Scored], names: Sequence[str], count: int, which: str):
    """One row per target: the elites it scores highest ("best"), or those that drop most ("worst")."""
    elites = [(s, i) for s in scored for i in range(len(s.cells))]
    images, labels, captions = [], [], []
    columns = min(count, len(elites))
    for name in names:
        source = np.array([s.source[i] for s, i in elites])
        target = np.array([s.targets[name][0][i] for s, i in elites])
        order = np.lexsort((-source, -target)) if which == "best" else np.lexsort((-source, target - source))
        for k in order[:columns]:
            s, i = elites[k]
            images.append(s.run.images[s.cells[i]])
            labels.append(s.run.class_names[s.cells[i]] + (f" ({s.run.label})" if len(scored) > 1 else ""))
            captions.append(f"{percent(source[k], 1)} -> {percent(target[k], 1)}")
    return labelled_grid(images, labels, captions, columns=columns)  # a list: runs may differ in size


def report_text(scored: Sequence[Scored], names: Sequence[str], summary: dict[str, Any]) -> str:
    runs = ", ".join(str(s.run.path) for s in scored)
    lines = [
        f"# Transfer: {runs}",
        "",
        f"**{summary['conclusion']}**",
        "",
        f"{summary['elites']} elites of {len(scored)} run(s) of {'/'.join(summary['sources'])}, scored by the "
        f"run's classifier (the source) and by {', '.join(names)}. Shares: of all elites, on the source -> "
        "on the target; still: of those at the threshold on the source, the share that stays there.",
        "",
        f"Classes analysed: {summary['classes_analysed']}.",
        "",
    ]
    table = []
    for run, targets in [("all", summary["targets"]), *summary.get("per_run", {}).items()]:
        for name, f in targets.items():
            row = {
                "run": run,
                "target": name,
                "elites": f["elites"],
                "source": percent(f["median_source"]),
                "target conf.": percent(f["median_target"]),
                "drop": percent(f["median_drop"]),
            }
            for t in THRESHOLDS:
                key = f"{100 * t:g}"
                row[f">= {key}%"] = (
                    f"{percent(f[f'share_source_ge{key}'], 1)} -> {percent(f[f'share_target_ge{key}'], 1)}"
                )
                row[f"still >= {key}%"] = percent(f[f"still_ge{key}"], 1)
            row["top class"] = percent(f["top_class"], 1)
            table.append(row)
    lines += [
        markdown_table(table),
        "![source against target](transfer.png)",
        "",
        "Examples, one row per target in the order above: examples/transfer_best.png (the elites each target "
        "scores highest) and examples/transfer_worst.png (those whose confidence drops most); under each, "
        "the confidence on the source -> on the target.",
        "",
        "## Per class",
        "",
    ]
    rows = per_class_rows(scored, names, scored[0].run.class_names)
    shown = sorted(rows, key=lambda r: -r["median_drop"])[:50]
    lines.append(
        markdown_table(
            [{k: (percent(v) if k.startswith(("median", "share", "top")) else v) for k, v in r.items()} for r in shown]
        )
    )
    if len(rows) > len(shown):
        lines.append(f"(the {len(shown)} largest drops of {len(rows)}; all in per_class.csv, each elite in elites.csv)")
    return "\n".join(lines)
