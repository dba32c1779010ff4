"""What the search needs of a classifier, as a :class:`typing.Protocol`, and what a run records about one.

:func:`fooling_ext.search.evolve.evolve` scores images through any object with these members. A
:class:`~fooling_ext.classifiers.classifier.Classifier` has them all and more: evolve adapts a Classifier to
renders of another size (resized, or the paper's 10 crops cut from the render) and chooses its fastest
settings; any other object is used as it is, so it must take the render size itself. Gradient ascent also
differentiates: it needs :class:`DifferentiableScorer`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from fooling_ext.classifiers.spec import InputSpec


@runtime_checkable
class ImageScorer(Protocol):
    """Images [B, C, H, W] in [0, 1] -> class probabilities [B, num_classes], on `device`."""

    name: str
    description: str
    num_classes: int
    spec: InputSpec
    device: torch.device

    # Read-only, so that any sequence of names satisfies it (a Classifier's is a list).
    @property
    def class_names(self) -> Sequence[str]: ...

    def probabilities(self, images: torch.Tensor) -> torch.Tensor: ...

    def to(self, device: str | torch.device) -> ImageScorer: ...


@runtime_checkable
class DifferentiableScorer(ImageScorer, Protocol):
    """An :class:`ImageScorer` whose log-probabilities keep the autograd graph back to the images."""

    def log_probabilities(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class FeatureScorer(ImageScorer, Protocol):
    """Optional: an :class:`ImageScorer` that also gives each image's penultimate-layer activations [B, D] (what
    its last linear layer reads), as :meth:`Classifier.features` does. ``fooling analyze diversity`` compares
    elites in this feature space when the scorer has it, and in pixel space only when not."""

    def features(self, images: torch.Tensor) -> torch.Tensor: ...


def describe_classifier(classifier: ImageScorer) -> dict[str, Any]:
    """What a run's config.json records about its classifier: name, description, classes and input spec; for
    several models combined (a scorer with ``describe_members``, e.g. a CombinedClassifier), also the rule and
    each model's record."""
    spec = classifier.spec
    record = {
        "name": classifier.name,
        "description": getattr(classifier, "description", "") or in_memory_description(classifier),
        "num_classes": classifier.num_classes,
        "class_names": list(classifier.class_names),
        "spec": dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else dict(spec),
    }
    members = getattr(classifier, "describe_members", None)
    return {**record, **members()} if callable(members) else record


def in_memory_description(classifier: ImageScorer) -> str:
    """What a run records as the description of a classifier that has none: what kind of object it is."""
    model = getattr(classifier, "model", None)
    if model is not None:
        return f"a {type(model).__name__} given in memory, in a {type(classifier).__name__}"
    return f"a {type(classifier).__name__} given in memory"
