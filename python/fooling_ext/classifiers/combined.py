"""Several classifiers scored as one: each class's probability is combined over the models by a rule.

A :class:`CombinedClassifier` is itself an :class:`~fooling_ext.classifiers.protocol.ImageScorer`, so the search
evolves against several models without knowing it: the fitness of a child for class k is the combined
probability. A wrapper that satisfies the protocol was chosen over teaching the search about lists of models
because the archive, MAP-Elites, the metrics, the moved-model check on resume and every caller of
``probabilities`` stay as they are; only the steps that treat a :class:`~fooling_ext.classifiers.classifier.Classifier`
specially (adapting it to the render size, fast inference, what a run records) look at its ``members``.

Rules (``combine``), for class k of image x and models m = 1..M:

- ``min``: min over m of p_m(k | x). High only when every model is confident: an image fools all of them.
- ``mean``: the arithmetic mean over m of p_m(k | x). High when the models are confident on average; one model
  may be fooled less than the others.

The classes are the first model's. The other models must have the same class names in the same order, or a
class map that says which of their classes stand for each of the first model's (:func:`resolve_class_map`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from fooling_ext._files import loads_json, require_regular_file
from fooling_ext.classifiers.messages import first_line
from fooling_ext.classifiers.protocol import ImageScorer, describe_classifier

COMBINE_RULES = ("min", "mean")
# A class map: "index" (the classes correspond by position), or {this model's class name: the first model's}.
ClassMap = str | Mapping[str, str]
BY_INDEX = "index"


class CombinedClassifier:
    """The models `members` scored as one classifier with the first model's classes (see the module's doc).

    ``class_maps[i]`` says how model i's classes correspond to the first model's: None (the same names in the
    same order), ``"index"`` (by position, the same number of classes), or a mapping {model i's class name: the
    first model's class name}. Several classes mapped onto one add their probabilities (the probability of any
    of them); classes the mapping leaves out count for no class. Every class of the first model needs at least
    one class of each model. ``class_maps[0]`` must be None.
    """

    def __init__(
        self, members: Sequence[ImageScorer], combine: str = "min", class_maps: Sequence[ClassMap | None] | None = None
    ) -> None:
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"a combined classifier needs 2 or more models, got {len(members)}")
        if combine not in COMBINE_RULES:
            raise ValueError(f"combine must be one of {COMBINE_RULES}, got {combine!r}")
        for i, member in enumerate(members):
            if not isinstance(member, ImageScorer):
                raise TypeError(f"model {i + 1} is a {type(member).__name__}, not a classifier (an ImageScorer)")
        class_maps = [None] * len(members) if class_maps is None else list(class_maps)
        if len(class_maps) != len(members):
            raise ValueError(f"{len(class_maps)} class maps were given for {len(members)} models")
        if class_maps[0] is not None:
            raise ValueError("the first model's classes are the run's: it takes no class map")
        first = members[0]
        for member in members[1:]:
            if member.spec.channels != first.spec.channels:
                raise ValueError(
                    f"the models take images of different channels: {first.name} takes "
                    f"{first.spec.channels}, {member.name} {member.spec.channels}"
                )
        self.members = members
        self.combine = combine
        self.class_maps = class_maps
        self._targets = [
            resolve_class_map(first, member, class_map, i + 1)
            for i, (member, class_map) in enumerate(zip(members, class_maps))
        ]
        self.class_names = list(first.class_names)
        self.num_classes = len(self.class_names)
        self.spec = first.spec
        self.device = first.device
        self.name = f"{combine}({', '.join(m.name for m in members)})"
        rule = "lowest" if combine == "min" else "mean"
        self.description = f"the {rule} of each class's probability over {len(members)} models: " + "; ".join(
            f"{m.name} ({getattr(m, 'description', '') or 'no description'})" for m in members
        )

    def with_members(self, members: Sequence[ImageScorer]) -> CombinedClassifier:
        """The same rule and class maps over other models (the same ones adapted, e.g. to a render size)."""
        return CombinedClassifier(members, self.combine, self.class_maps)

    def to(self, device: str | torch.device) -> CombinedClassifier:
        """Move every model to `device`; returns self."""
        self.members = [member.to(device) for member in self.members]
        self.device = self.members[0].device
        return self

    def member_probabilities(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Each model's probabilities [B, num_classes] for the first model's classes (after its class map), on
        ``device``. A model that fails on the images is a ValueError naming it."""
        result = []
        for i, (member, targets) in enumerate(zip(self.members, self._targets)):
            where = f"model {i + 1} of {len(self.members)} ({member.name})"
            try:
                probabilities = member.probabilities(images)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:
                raise ValueError(f"{where} failed on the images: {first_line(exc)}") from exc
            expected = (len(images), len(member.class_names))
            if not isinstance(probabilities, torch.Tensor) or tuple(probabilities.shape) != expected:
                got = list(probabilities.shape) if isinstance(probabilities, torch.Tensor) else type(probabilities)
                raise ValueError(f"{where} returned {got} for {len(images)} images, expected {list(expected)}")
            probabilities = probabilities.to(self.device, torch.float32)
            if targets is not None:
                kept = targets >= 0
                mapped = torch.zeros((len(images), self.num_classes), dtype=torch.float32, device=self.device)
                mapped.index_add_(1, targets[kept].to(self.device), probabilities[:, kept.to(self.device)])
                probabilities = mapped.clamp_(max=1.0)  # a sum of probabilities may round past 1
            result.append(probabilities)
        return result

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """The combined probabilities [B, num_classes] of images [B, C, H, W] in [0, 1] (float32, on ``device``)."""
        stacked = torch.stack(self.member_probabilities(images))
        return stacked.amin(dim=0) if self.combine == "min" else stacked.mean(dim=0)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.probabilities(images)

    def describe_members(self) -> dict[str, Any]:
        """What a run records beyond :func:`describe_classifier`'s fields: the rule, and each model's record
        with its class map."""
        models = []
        for member, class_map in zip(self.members, self.class_maps):
            record = describe_classifier(member)
            if class_map is not None:
                record["class_map"] = class_map if isinstance(class_map, str) else dict(class_map)
            models.append(record)
        return {"combine": self.combine, "models": models}

    def __repr__(self) -> str:
        return f"CombinedClassifier({self.name}, classes={self.num_classes}, device={str(self.device)!r})"


def combined_classifier(
    members: Sequence[ImageScorer], combine: str | None = None, class_maps: Sequence[ClassMap | None] | None = None
) -> ImageScorer:
    """`members` as one scorer: the only model itself when there is one (a single-model run is unchanged),
    else a :class:`CombinedClassifier` (`combine` None: ``"min"``)."""
    members = list(members)
    if len(members) == 1:
        if combine is not None:
            raise ValueError(f"combine={combine!r} applies to several models, and one was given")
        if class_maps is not None and any(m is not None for m in class_maps):
            raise ValueError("a class map applies to several models, and one was given")
        return members[0]
    return CombinedClassifier(members, combine or "min", class_maps)


def resolve_class_map(
    first: ImageScorer, member: ImageScorer, class_map: ClassMap | None, number: int
) -> torch.Tensor | None:
    """For each class of `member` (model `number`), the index of the first model's class it stands for (-1:
    none); None where the two have the same classes. Anything else than the same names in the same order or
    a class map that covers every class of the first model is a ValueError naming the first mismatch."""
    ours, theirs = list(first.class_names), list(member.class_names)
    where = f"model {number} ({member.name})"
    if class_map is None:
        if ours == theirs:
            return None
        i = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
        if i is None:
            mismatch = f"it has {len(theirs)} classes, model 1 ({first.name}) {len(ours)}"
        else:
            mismatch = f"its class {i} is {theirs[i]!r}, model 1's ({first.name}) is {ours[i]!r}"
        raise ValueError(
            f"{where} does not have model 1's class names in the same order: {mismatch}; give a "
            "class map (--class-map FILE, docs/classifiers.md) that maps its classes onto model 1's"
        )
    if class_map == BY_INDEX:
        if len(theirs) != len(ours):
            raise ValueError(
                f"{where}: its class map {BY_INDEX!r} needs as many classes as model 1 "
                f"({first.name}): it has {len(theirs)}, model 1 {len(ours)}"
            )
        return None if ours == theirs else torch.arange(len(theirs))
    if not isinstance(class_map, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in class_map.items()
    ):
        raise ValueError(
            f"{where}: a class map must be {BY_INDEX!r} or an object of class names "
            f"{{its class: model 1's class}}, got {json.dumps(class_map, default=str)[:80]}"
        )
    own_index = _index_of(theirs, where)
    first_index = _index_of(ours, f"model 1 ({first.name})")
    targets = torch.full((len(theirs),), -1, dtype=torch.int64)
    for name, target in class_map.items():
        if name not in own_index:
            raise ValueError(f"{where}: its class map names the class {name!r}, which it does not have")
        if target not in first_index:
            raise ValueError(
                f"{where}: its class map maps {name!r} onto {target!r}, which is not a class of model 1 ({first.name})"
            )
        targets[own_index[name]] = first_index[target]
    covered = set(targets.tolist())
    missing = next((k for k in range(len(ours)) if k not in covered), None)
    if missing is not None:
        raise ValueError(
            f"{where}: its class map gives none of its classes to model 1's class {ours[missing]!r}; "
            "every class of model 1 needs one"
        )
    return targets


def _index_of(names: Sequence[str], where: str) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in index:
            raise ValueError(
                f"{where} has the class name {name!r} twice (classes {index[name]} and {i}), so a class "
                "map cannot name it"
            )
        index[name] = i
    return index


def read_class_maps(path: str | os.PathLike, models: Sequence[str]) -> list[ClassMap | None]:
    """The class maps of a --class-map file, one per model of `models` (as given on the command line; None
    for the first and for those the file leaves out). The file is a JSON object: each key a model as given
    with --model (not the first), each value ``"index"`` or an object {that model's class name: the first
    model's class name}."""
    path = Path(path)
    require_regular_file(path, "class map file")
    try:
        data = loads_json(path.read_text(encoding="utf-8"), f"class map file {path}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"class map file {path} is not JSON text: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"class map file {path} must hold a JSON object {{model: class map}}, got {type(data).__name__}"
        )
    for key in data:
        if key not in models[1:]:
            why = "the first model takes no class map" if models and key == models[0] else "not a --model given"
            raise ValueError(
                f"class map file {path} names the model {key!r}: {why} (the other models are {', '.join(models[1:])})"
            )
    return [None, *(data.get(model) for model in models[1:])]
