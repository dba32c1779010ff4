"""What defines the MNIST fooling-class experiment and what it measures: its configuration, the metrics of a
round, and the seed of every run and network, derived from the experiment seed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fooling_ext.classifiers.datasets.mnist import MNIST_NUM_CLASSES
from fooling_ext.classifiers.training import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_THREADS
from fooling_ext.core.backend import BACKENDS
from fooling_ext.core.checks import check_real, check_whole
from fooling_ext.core.seeds import derive_seed
from fooling_ext.search.encodings import ENCODINGS

FOOLING_LABEL = MNIST_NUM_CLASSES  # the 11th class, index 10
CLASS_NAMES = tuple(str(digit) for digit in range(MNIST_NUM_CLASSES)) + ("fooling",)
IMAGES_PER_RUN = MNIST_NUM_CLASSES  # a run's archive has one elite per digit

# Settings that may change on resume: more rounds extend the experiment; the backend changes where it runs.
RESUMABLE_CHANGES = ("experiment.rounds", "experiment.backend", "fooling_ext", "torch")

# Keep the seed streams of the different uses apart.
_HARVEST, _MEASURE, _TRAIN = 0, 1, 2


@dataclass
class RetrainConfig:
    """Everything that defines a fooling-class experiment; the defaults are ``fooling retrain``'s.

    ``rounds`` counts the retrained networks: the experiment evolves against rounds + 1 networks (round 0 is the
    shipped LeNet). ``images_per_round`` fooling images come from ``images_per_round / 20`` harvest runs per
    encoding of ``generations`` generations (10 digit elites per run, 2 encodings). ``measure_runs`` runs per
    encoding of ``measure_generations`` generations only measure. ``train_limit`` and ``test_limit`` keep the
    first N MNIST training and test digits, for quick trials.
    """

    rounds: int = 3
    seed: int = 0
    images_per_round: int = 6000
    generations: int = 10
    measure_runs: int = 5
    measure_generations: int = 200
    batch: int = 200
    epochs: int = DEFAULT_EPOCHS
    train_batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    threads: int = DEFAULT_THREADS
    train_limit: int | None = None
    test_limit: int | None = None
    backend: str = "auto"

    @property
    def runs_per_encoding(self) -> int:
        return self.images_per_round // (len(ENCODINGS) * IMAGES_PER_RUN)

    def check(self) -> None:
        for name in (
            "rounds",
            "images_per_round",
            "generations",
            "measure_generations",
            "batch",
            "epochs",
            "train_batch_size",
            "threads",
        ):
            check_whole(name, getattr(self, name), 1)
        for name in ("seed", "measure_runs"):
            check_whole(name, getattr(self, name), 0)
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) is not None:
                check_whole(name, getattr(self, name), 1)
        per_round = len(ENCODINGS) * IMAGES_PER_RUN
        if self.images_per_round % per_round:
            raise ValueError(
                f"images_per_round must be a multiple of {per_round} (each run gives {IMAGES_PER_RUN} digit elites, "
                f"for each of the {len(ENCODINGS)} encodings), got {self.images_per_round}"
            )
        check_real("lr", self.lr, 0.0, low_open=True)
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")


@dataclass
class EvolutionSummary:
    """What runs of one encoding reached against one network: medians over runs of per-run values."""

    runs: int
    generations: int
    median_confidence: float  # median over runs of the run's median confidence over the 10 digits
    classes_99: float  # median over runs of the digits with an elite >= 99%
    classes_9999: float  # the same for >= 99.99%

    @classmethod
    def of(cls, confidences: np.ndarray, generations: int) -> EvolutionSummary:
        """From the elites' confidences, [runs, 10]."""
        return cls(
            runs=len(confidences),
            generations=generations,
            median_confidence=float(np.median(np.median(confidences, axis=1))),
            classes_99=float(np.median((confidences >= 0.99).sum(axis=1))),
            classes_9999=float(np.median((confidences >= 0.9999).sum(axis=1))),
        )


@dataclass
class RoundMetrics:
    """One round: its network, and what evolution reached against it.

    ``previous_in_fooling_class`` is the share of round r - 1's fooling images this network classifies as fooling
    (None in round 0, whose network has no fooling class), also split by encoding. ``test_digits_as_fooling`` is
    the share of real test digits it calls fooling. ``seconds`` times the round's steps (not compared on resume).
    """

    round: int
    fooling_images_trained: int
    test_accuracy: float
    test_digits_as_fooling: float | None
    previous_in_fooling_class: float | None
    previous_in_fooling_class_by_encoding: dict[str, float] | None
    harvest: dict[str, EvolutionSummary]
    measure: dict[str, EvolutionSummary]
    seconds: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        def figures(summaries: dict[str, EvolutionSummary]) -> str:
            return ", ".join(f"{e} median {100 * s.median_confidence:.2f}%" for e, s in summaries.items())

        return (
            f"RoundMetrics(round {self.round}: test accuracy {100 * self.test_accuracy:.2f}%, "
            f"{self.fooling_images_trained} fooling images trained; measured: {figures(self.measure)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundMetrics:
        values = dict(data)
        for key in ("harvest", "measure"):
            values[key] = {encoding: EvolutionSummary(**summary) for encoding, summary in values[key].items()}
        return cls(**values)

    def row(self) -> dict[str, Any]:
        """The flat table row (no timings, so a resumed experiment's table equals an uninterrupted one's)."""
        row: dict[str, Any] = {
            "round": self.round,
            "fooling_images_trained": self.fooling_images_trained,
            "test_accuracy": self.test_accuracy,
            "test_digits_as_fooling": self.test_digits_as_fooling,
            "previous_in_fooling_class": self.previous_in_fooling_class,
        }
        for kind, summaries in (("harvest", self.harvest), ("measure", self.measure)):
            for encoding, summary in summaries.items():
                for key in ("median_confidence", "classes_99", "classes_9999"):
                    row[f"{kind}_{encoding}_{key}"] = getattr(summary, key)
        return row


def run_seed(seed: int, round_index: int, encoding: str, run: int, *, measure: bool = False) -> int:
    """The seed of one evolution run: distinct for every (experiment seed, round, encoding, kind, run)."""
    purpose = _MEASURE if measure else _HARVEST
    return derive_seed(seed, round_index, ENCODINGS.index(encoding), purpose, run)


def training_seed(seed: int, round_index: int) -> int:
    """The seed of round ``round_index``'s network (weights and shuffling)."""
    return derive_seed(seed, round_index, _TRAIN)
