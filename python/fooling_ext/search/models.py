"""The classifier a run scores with, one model or several combined (classifiers.combined): building it anew or
as a run recorded it, adapting it to the render size, its fast inference settings, the check of a moved model
on resume, and each model's confidence in the elites (what the report shows of a run against several)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch

from fooling_ext.classifiers.choice_cache import choose_once, default_fast_inference
from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.combined import CombinedClassifier, combined_classifier
from fooling_ext.classifiers.inference import apply_recorded, current_settings
from fooling_ext.classifiers.library import is_library_model
from fooling_ext.classifiers.loading import BUILTIN_MODELS, CUSTOM_MODEL, load_classifier, recorded_model
from fooling_ext.classifiers.protocol import ImageScorer
from fooling_ext.classifiers.spec import InputSpec
from fooling_ext.runs.folder import RunFolder, RunFolderError
from fooling_ext.search.archive import Archive
from fooling_ext.search.config import EvolveConfig, read_recorded_config
from fooling_ext.search.encodings import Encoding

# How far a moved model's probabilities for the run's elites may lie from the recorded ones: fast inference
# keeps each run within 1e-3 of float32, so two runs' settings within 2e-3 of each other.
MOVED_MODEL_TOLERANCE = 2e-3
# Fast inference's probe: at most this many renders, so that measuring every candidate costs seconds, not minutes
# (EfficientNet-Lite0 in eager PyTorch scores about 20 images/s on 2 cores, and each candidate runs twice or more).
PROBE_LIMIT = 64


def members_of(classifier: ImageScorer) -> list[ImageScorer]:
    """The models a scorer combines; the scorer itself when it is one model."""
    return list(classifier.members) if isinstance(classifier, CombinedClassifier) else [classifier]


def lead_model(classifier: ImageScorer) -> ImageScorer:
    """The model whose classes, channels and paper defaults (render size, children) a run takes: the first."""
    return members_of(classifier)[0]


def run_classifier(
    config: EvolveConfig,
    classifier: ImageScorer | Sequence[ImageScorer] | None,
    *,
    resume: bool,
    folder: RunFolder | None,
    device: torch.device,
) -> tuple[ImageScorer, EvolveConfig]:
    """The scorer a run uses, on `device`, and `config` naming the models really used: `classifier` (a list of
    them is combined by config.combine), else the model(s) `config` names, or on resume as recorded."""
    if isinstance(classifier, (list, tuple)):
        classifier = combined_classifier(classifier, config.combine)
    if classifier is None and resume and folder is not None and folder.resume_path.exists():
        model = config.models if config.models is not None else config.model
        classifier = recorded_classifier(read_recorded_config(folder.path), device, model=model)
    elif classifier is None:
        models = config.models or [config.model]
        classifier = combined_classifier([load_classifier(m, device=device) for m in models], config.combine)
    else:
        # A list or tuple was combined above: what is left is one scorer (evolve takes no other sequence).
        classifier = cast(ImageScorer, classifier).to(device)
        # Record the models really used, not config.model's default; on resume, where a model may have moved (and
        # is checked on the run's elites), only the list of several that `config` does not name.
        if not resume or (isinstance(classifier, CombinedClassifier) and config.models is None):
            config = _with_models(config, classifier)
    if isinstance(classifier, CombinedClassifier):
        if config.combine not in (None, classifier.combine):
            raise ValueError(f"combine={config.combine!r}, but the classifier given combines by {classifier.combine!r}")
        config = dataclasses.replace(config, combine=classifier.combine)
    return classifier, config


def _with_models(config: EvolveConfig, classifier: ImageScorer) -> EvolveConfig:
    members = members_of(classifier)
    named = config.models if config.models is not None else [config.model] * (len(members) == 1)
    if config.models is not None and len(config.models) != len(members):
        raise ValueError(f"models names {len(config.models)} models, but {len(members)} classifier(s) were given")
    models = [
        recorded_model(m, named[i] if named else str(getattr(m, "source", None) or CUSTOM_MODEL))
        for i, m in enumerate(members)
    ]
    if len(members) == 1:
        return dataclasses.replace(config, model=models[0])
    return dataclasses.replace(config, model=models[0], models=models)


def recorded_classifier(
    recorded: dict[str, Any],
    device: str | torch.device = "cpu",
    *,
    model: str | Sequence[str] | None = None,
    folder: str | Path | None = None,
) -> ImageScorer:
    """The classifier a run was made with, from its recorded configuration: the recorded model (or `model`,
    where the file is now) with the recorded input spec, class names and name, so that a model file described
    by flags when the run started needs no description again; for a run against several models, each of them
    so, combined by the recorded rule and class maps (`model`: every one of them, in the recorded order). The
    recorded model of the run `folder` is loaded only when it is built in or a file inside `folder` that runs
    no code (see load_classifier's confine_to): a run folder may come from elsewhere; `model` is the caller's
    choice."""
    run, described = recorded["run"], recorded["classifier"]
    confine = folder if model is None else None
    if run.get("models") is None:
        return _recorded_model(str(model if model is not None else run["model"]), described, device, confine)
    paths, records = run["models"], described.get("models")
    if not isinstance(records, list) or len(records) != len(paths):
        raise ValueError(
            f"the recorded configuration names {len(paths)} models but describes "
            f"{len(records) if isinstance(records, list) else 'none'} of them"
        )
    given = paths if model is None else [model] if isinstance(model, (str, Path)) else list(model)
    if len(given) != len(paths):
        raise ValueError(
            f"the run was made with {len(paths)} models ({', '.join(paths)}); a model that moved is "
            f"given with all of them again, in that order: got {len(given)}"
        )
    members = [_recorded_model(str(path), record, device, confine) for path, record in zip(given, records)]
    return CombinedClassifier(
        members,
        run.get("combine") or described.get("combine") or "min",
        [None, *(record.get("class_map") for record in records[1:])],
    )


def _recorded_model(
    path: str, described: dict[str, Any], device: str | torch.device, confine: str | Path | None
) -> Classifier:
    if path == CUSTOM_MODEL:
        raise ValueError(
            f"the run was made with a classifier given in memory ({described.get('description')}), "
            "which it cannot load again: pass classifier=... (Python), or model=PATH, a file of the "
            "same model"
        )
    if path not in BUILTIN_MODELS and not is_library_model(path) and not Path(path).exists():
        raise FileNotFoundError(
            f"the run's model file {path!r} is not there (moved?): pass model=PATH with the place it is now"
        )
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in described["spec"].items()}
    spec = InputSpec(**fields)
    return load_classifier(
        path, spec=spec, class_names=described["class_names"], name=described["name"], device=device, confine_to=confine
    )


def classifier_for_renders(clf: ImageScorer, height: int, width: int) -> ImageScorer:
    """The classifier a run scores its height x width renders with.

    A classifier that takes the render size, or that resizes its input itself, is used as it is. Otherwise
    the renders reach the model as the paper fed CaffeNet its 256 x 256 images: a classifier that scores
    crops gets the 10 crops cut from the render itself; one that does not gets the render resized to its
    input size (bilinear, antialiased). The adapted classifier shares the model; the given one is unchanged.
    Several models combined are adapted each on its own. Any other :class:`ImageScorer` is used as it is: it
    must take the render size itself.
    """
    if isinstance(clf, CombinedClassifier):
        return clf.with_members([classifier_for_renders(m, height, width) for m in clf.members])
    spec = clf.spec
    if (height, width) == (spec.height, spec.width) or spec.resize or not isinstance(clf, Classifier):
        return clf
    if spec.crops is not None and spec.crops <= min(height, width):
        spec = dataclasses.replace(spec, height=height, width=width)
    else:
        spec = dataclasses.replace(spec, resize=True)
    return clf.with_spec(spec)


def probe_images(encoding: Encoding[Any], config: EvolveConfig, device: torch.device) -> torch.Tensor:
    """A batch like the ones the run scores: the renders of a starting population of the run's batch size (at
    most PROBE_LIMIT)."""
    assert config.batch is not None, "evolve resolves the batch size (search.defaults.paper_batch) first"
    return encoding.render(encoding.initial(min(config.batch, PROBE_LIMIT), seed=config.seed, device=device))


def inference_record(
    classifier: ImageScorer,
    config: EvolveConfig,
    encoding: Encoding[Any],
    device: torch.device,
    *,
    folder: RunFolder | None,
    resume: bool,
    progress: bool,
) -> dict[str, Any]:
    """Apply fast inference to each model that is a Classifier (on unless the run or $FOOLING_FAST_INFERENCE
    says otherwise; each model's choice is measured once per machine and kept, classifiers.choice_cache, so
    runs of one seed score with the same engines), and return what the run records of it: one model's record,
    or {"models": [one per model]}. A resumed run keeps each model's recorded engine and settings."""
    fast = config.fast_inference if config.fast_inference is not None else default_fast_inference()
    members = members_of(classifier)
    recorded: dict[str, Any] = {}
    if fast and resume and folder is not None and folder.config_path.is_file():
        recorded = folder.read_config().get("inference") or {}
    records, probe = [], None
    for i, member in enumerate(members):
        if fast and isinstance(member, Classifier):
            probe = probe if probe is not None else probe_images(encoding, config, device)
            record = recorded if len(members) == 1 else _item(recorded.get("models"), i)
            chosen = record.get("chosen") if isinstance(record, dict) else None
            # a resumed run keeps its engine and settings (its scores' last bits depend on them)
            choice = apply_recorded(member, probe, chosen) if chosen else choose_once(member, probe)
            lines = [choice.summary()] if progress else choice.fallbacks()
            for line in lines:
                print(line if len(members) == 1 else f"{member.name}: {line}", file=sys.stderr)
            records.append(choice.to_dict())
        elif isinstance(member, Classifier):
            records.append({"chosen": current_settings(member).to_dict()})
        else:
            records.append({"chosen": None})  # not a Classifier: it runs as it is
    return records[0] if len(members) == 1 else {"models": records}


def _item(values: Any, i: int) -> Any:
    return values[i] if isinstance(values, list) and i < len(values) else None


def _elite_scores(
    score: Callable[[torch.Tensor], list[torch.Tensor]], encoding: Encoding[Any], archive: Archive, batch: int
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The occupied cells, and for each probability table `score` gives, each one's elite's probability for
    its class (float64, on the CPU), from the elites' genomes rendered anew."""
    cells = archive.occupied_cells()
    parts: list[list[torch.Tensor]] = []
    for start in range(0, cells.numel(), batch):
        ids = cells[start : start + batch]
        genomes = encoding.from_tensors({k: v[ids].contiguous() for k, v in archive.genomes.items()})
        tables = score(encoding.render(genomes))
        rows = torch.arange(ids.numel(), device=tables[0].device)
        parts.append([table[rows, ids.to(table.device)].double().cpu() for table in tables])
    columns = [torch.cat(column) if column else torch.zeros(0, dtype=torch.float64) for column in zip(*parts)]
    return cells.cpu(), columns


def check_moved_model(
    classifier: ImageScorer, encoding: Encoding[Any], archive: Archive, batch: int, where: str
) -> None:
    """Refuse a model that does not score the run's elites as recorded: the run continues only with the
    classifier it was made with (a model file may move, not change)."""
    cells, columns = _elite_scores(lambda images: [classifier.probabilities(images)], encoding, archive, batch)
    if not columns:  # no elite to score
        return
    worst = float((columns[0] - archive.confidence[cells].double().cpu()).abs().max())
    if worst > MOVED_MODEL_TOLERANCE:
        raise RunFolderError(
            f"{where}: the model {classifier.name!r} is not the one the run was made with: it scores "
            f"the run's elites up to {worst:.3g} away from the recorded confidences"
        )


def model_confidences(
    classifier: ImageScorer, encoding: Encoding[Any], archive: Archive, batch: int
) -> list[list[float | None]] | None:
    """For a run against several models: per model, each class's elite's probability for its class under that
    model (None for an empty cell); None for a run against one model."""
    if not isinstance(classifier, CombinedClassifier):
        return None
    cells, columns = _elite_scores(classifier.member_probabilities, encoding, archive, batch)
    table: list[list[float | None]] = [[None] * classifier.num_classes for _ in classifier.members]
    for m, column in enumerate(columns):
        for cell, value in zip(cells.tolist(), column.tolist()):
            table[m][cell] = value
    return table
