"""The fooling-class experiment on MNIST: retrain LeNet with an 11th class of fooling images, evolve again.

The paper asked whether a network can learn to reject fooling images: add the images evolved against it to its
training set as one more class ("fooling"), retrain, and evolve against the new network. On ImageNet that lowered
the confidence evolution reached; on MNIST it did not, over several rounds.

Round 0 evolves fooling images against the shipped LeNet. Round r >= 1 trains a new 11-output LeNet on MNIST plus
the fooling images of every earlier round (cumulative, label 10), measures it (digit test accuracy, and how many
of round r - 1's fooling images it now puts in the fooling class), then evolves against it. The fitness for digit d
is still p(d) of the 11-way softmax (:class:`WithoutFoolingClass`), so an image only scores by being called a digit
rather than a fooling image.

Each round evolves two kinds of runs per encoding (CPPN and direct):

* harvest runs: many short runs; the 10 digit elites of each become the round's fooling images (about 6,000 per
  round, as in the paper) and their confidences are the round's statistics at that short budget;
* measure runs: a few runs at the paper's MNIST budget (200 generations), which tell a network that is merely
  harder to fool (slower progress in the short runs) from one that cannot be fooled (low confidence even here).

Every run's seed comes from the experiment seed, the round, the encoding and the run index; training is seeded
from the experiment seed and the round. Experiment folder::

    config.json                  the configuration (resume checks it)
    round_<r>/model.pt           the round's network, a LeNet state_dict (load_classifier(path) reads it)
    round_<r>/training.json      train_lenet's metrics (rounds >= 1)
    round_<r>/fooling_images.npz the harvest: images, digit, confidence, encoding, run, seed
    round_<r>/measure_images.npz the same for the measure runs
    round_<r>/grid.png           the first harvest run of each encoding, labelled
    round_<r>/measure_grid.png   the first measure run of each encoding, labelled
    round_<r>/metrics.json       the round's metrics, written last: the round is complete when it exists
    table.md, table.csv          one row per round
    rounds.png                   the metrics over rounds

Every file is written atomically, so a stopped experiment resumes at the first round without ``metrics.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fooling_ext import __version__
from fooling_ext._backend import BACKENDS, backend_device, resolve_backend
from fooling_ext.classifier import MNIST_SPEC, Classifier, load_classifier
from fooling_ext.data import MNIST_NUM_CLASSES, MnistData, load_mnist
from fooling_ext.evolve import EvolveConfig, evolve
from fooling_ext.models import load_lenet
from fooling_ext.models.lenet import LeNet
from fooling_ext.report import format_confidence, labelled_grid
from fooling_ext.runs import RunFolderError, atomic_write_bytes, atomic_write_text, config_differences
from fooling_ext.train import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_THREADS, train_lenet

FOOLING_LABEL = MNIST_NUM_CLASSES  # the 11th class, index 10
CLASS_NAMES = tuple(str(digit) for digit in range(MNIST_NUM_CLASSES)) + ("fooling",)
ENCODINGS = ("cppn", "direct")
IMAGES_PER_RUN = MNIST_NUM_CLASSES  # a run's archive has one elite per digit

# Settings that may change on resume: more rounds extend the experiment; the backend changes where it runs.
RESUMABLE_CHANGES = ("experiment.rounds", "experiment.backend", "fooling_ext", "torch")

# Keep the seed streams of the different uses apart.
_HARVEST, _MEASURE, _TRAIN = 0, 1, 2

# Ends of the logit axis of the confidence plot.
_LOGIT_FLOOR, _LOGIT_CEILING = 1e-6, 1e-7

_ROUND_DIR = re.compile(r"round_(\d+)")
_EXPERIMENT_FILES = ("config.json", "table.md", "table.csv", "rounds.png")


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
        for name in ("rounds", "images_per_round", "generations", "measure_generations", "batch", "epochs",
                     "train_batch_size", "threads"):
            _require_int(name, getattr(self, name), minimum=1)
        for name in ("seed", "measure_runs"):
            _require_int(name, getattr(self, name), minimum=0)
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) is not None:
                _require_int(name, getattr(self, name), minimum=1)
        per_round = len(ENCODINGS) * IMAGES_PER_RUN
        if self.images_per_round % per_round:
            raise ValueError(
                f"images_per_round must be a multiple of {per_round} (each run gives {IMAGES_PER_RUN} digit elites, "
                f"for each of the {len(ENCODINGS)} encodings), got {self.images_per_round}"
            )
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")


def _require_int(name: str, value: Any, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


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


class WithoutFoolingClass:
    """A fooling-class classifier seen through its real classes only: the last column of its softmax dropped.

    Evolution against a retrained network scores an image for digit d by p(d) of the full 11-way softmax, so
    probability the network gives the fooling class is lost to every digit. Exposes what ``evolve`` and gradient
    ascent use of a :class:`~fooling_ext.classifier.Classifier`.
    """

    def __init__(self, classifier: Classifier) -> None:
        if classifier.num_classes < 2:
            raise ValueError(f"a fooling-class classifier needs at least 2 classes, got {classifier.num_classes}")
        self.classifier = classifier
        self.num_classes = classifier.num_classes - 1
        self.class_names = list(classifier.class_names[: self.num_classes])

    spec = property(lambda self: self.classifier.spec)
    name = property(lambda self: self.classifier.name)
    device = property(lambda self: self.classifier.device)
    description = property(lambda self: self.classifier.description)
    model = property(lambda self: self.classifier.model)
    max_batch = property(lambda self: self.classifier.max_batch)

    # Inference settings (evolve may choose faster ones) belong to the wrapped classifier, which runs the model.
    @property
    def dtype(self) -> torch.dtype:
        return self.classifier.dtype

    @dtype.setter
    def dtype(self, value: torch.dtype) -> None:
        self.classifier.dtype = value

    @property
    def channels_last(self) -> bool:
        return self.classifier.channels_last

    @channels_last.setter
    def channels_last(self, value: bool) -> None:
        self.classifier.channels_last = value

    def to(self, device: str | torch.device) -> WithoutFoolingClass:
        self.classifier.to(device)
        return self

    def probabilities(self, images) -> torch.Tensor:
        return self.classifier.probabilities(images)[:, : self.num_classes]

    def differentiable_probabilities(self, images) -> torch.Tensor:
        return self.classifier.differentiable_probabilities(images)[:, : self.num_classes]

    def log_probabilities(self, images) -> torch.Tensor:
        return self.classifier.log_probabilities(images)[:, : self.num_classes]

    def predict(self, images) -> tuple[torch.Tensor, torch.Tensor]:
        confidences, labels = self.probabilities(images).max(dim=1)
        return labels, confidences

    def __call__(self, images) -> torch.Tensor:
        return self.probabilities(images)

    def __repr__(self) -> str:
        return f"WithoutFoolingClass({self.classifier!r})"


def run_seed(seed: int, round_index: int, encoding: str, run: int, *, measure: bool = False) -> int:
    """The seed of one evolution run: distinct for every (experiment seed, round, encoding, kind, run)."""
    purpose = _MEASURE if measure else _HARVEST
    return _derive_seed(seed, round_index, ENCODINGS.index(encoding), purpose, run)


def training_seed(seed: int, round_index: int) -> int:
    """The seed of round ``round_index``'s network (weights and shuffling)."""
    return _derive_seed(seed, round_index, _TRAIN)


def _derive_seed(*words: int) -> int:
    return int(np.random.SeedSequence(list(words)).generate_state(1, dtype=np.uint64)[0] >> 1)


# ---------------------------------------------------------------------------------------------------------------
# The experiment


def run_retrain(
    config: RetrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    data: MnistData | None = None,
    on_round: Callable[[RoundMetrics], None] | None = None,
) -> list[RoundMetrics]:
    """Run (or resume) the experiment into folder ``out``; returns the metrics of rounds 0..config.rounds.

    ``data`` replaces the shipped MNIST. ``on_round`` is called with each round's metrics once the round's files
    are complete. Rounds already complete in ``out`` are read back, not recomputed.
    """
    config.check()
    folder = Path(out)
    _prepare_folder(folder, _full_config(config), resume=resume, overwrite=overwrite)
    data = _limited(data if data is not None else load_mnist(), config)
    device = backend_device(resolve_backend(config.backend))
    results: list[RoundMetrics] = []
    with _torch_threads(config.threads):
        for round_index in range(config.rounds + 1):
            done = _completed_round(folder, round_index)
            if done is None:
                _remove_rounds_after(folder, round_index)  # they were built on a round that is now being redone
                done = _run_round(round_index, config, data, folder, device, progress)
                if on_round is not None:
                    on_round(done)
            results.append(done)
    write_summary(folder, results, config)
    return results


def _full_config(config: RetrainConfig) -> dict[str, Any]:
    return {"fooling_ext": __version__, "torch": str(torch.__version__), "experiment": dataclasses.asdict(config)}


def _prepare_folder(folder: Path, cfg: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
    """Check the folder as ``fooling evolve`` does (resume, overwrite, refuse to mix), then write config.json."""
    config_path = folder / "config.json"
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite cannot be used together")
    if resume:
        if not config_path.is_file():
            raise RunFolderError(f"nothing to resume: {config_path} does not exist")
        try:
            previous = json.loads(config_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"cannot read {config_path}: {exc}") from exc
        differences = config_differences(previous, cfg, ignore=RESUMABLE_CHANGES)
        if differences:
            raise RunFolderError("cannot resume with a different configuration: " + "; ".join(differences))
    else:
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"{folder} exists and is not a folder")
        if config_path.exists():
            if not overwrite:
                raise RunFolderError(
                    f"{folder} holds another experiment; pass --resume to continue it or --overwrite to replace it"
                )
            _clear_experiment(folder)
        elif folder.exists() and any(folder.iterdir()) and not overwrite:
            raise RunFolderError(f"{folder} is not empty; choose an empty folder or pass --overwrite")
        folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def _clear_experiment(folder: Path) -> None:
    """Remove the files of a previous experiment (and nothing else)."""
    for name in _EXPERIMENT_FILES:
        (folder / name).unlink(missing_ok=True)
    for path in folder.iterdir():
        if path.is_dir() and _ROUND_DIR.fullmatch(path.name):
            shutil.rmtree(path)


def _remove_rounds_after(folder: Path, round_index: int) -> None:
    for path in folder.iterdir():
        match = _ROUND_DIR.fullmatch(path.name)
        if path.is_dir() and match and int(match.group(1)) > round_index:
            shutil.rmtree(path)


def _round_dir(folder: Path, round_index: int) -> Path:
    return folder / f"round_{round_index}"


def _completed_round(folder: Path, round_index: int) -> RoundMetrics | None:
    path = _round_dir(folder, round_index) / "metrics.json"
    if not path.is_file():
        return None
    try:
        return RoundMetrics.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, TypeError, KeyError) as exc:
        raise RunFolderError(f"{path} is not a round's metrics ({exc}); delete it to redo the round") from exc


def _limited(data: MnistData, config: RetrainConfig) -> MnistData:
    return dataclasses.replace(
        data,
        x_train=data.x_train[: config.train_limit], y_train=data.y_train[: config.train_limit],
        x_test=data.x_test[: config.test_limit], y_test=data.y_test[: config.test_limit],
    )


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run_round(round_index: int, config: RetrainConfig, data: MnistData, folder: Path, device: torch.device,
               progress: bool) -> RoundMetrics:
    start = time.perf_counter()
    round_dir = _round_dir(folder, round_index)
    round_dir.mkdir(exist_ok=True)
    earlier = [load_fooling_images(_round_dir(folder, r) / "fooling_images.npz") for r in range(round_index)]
    if round_index == 0:
        model = load_lenet()
        _save_state_dict(round_dir / "model.pt", model)
    else:
        model = _trained_network(round_index, config, data, earlier, round_dir, progress)
    train_seconds = time.perf_counter() - start

    classifier = load_classifier(model, spec=MNIST_SPEC, class_names=CLASS_NAMES[: model.num_classes],
                                 name=f"round {round_index} LeNet", device=device)
    predicted = _predict(classifier, data.x_test)
    test_accuracy = float((predicted == torch.as_tensor(data.y_test, device=predicted.device)).float().mean())
    test_as_fooling = previous = previous_by_encoding = None
    target: Classifier | WithoutFoolingClass = classifier
    if round_index > 0:
        target = WithoutFoolingClass(classifier)
        test_as_fooling = float((predicted == FOOLING_LABEL).float().mean())
        last = earlier[-1]
        in_fooling_class = (_predict(classifier, last["images"]) == FOOLING_LABEL).cpu().numpy()
        previous = float(in_fooling_class.mean())
        previous_by_encoding = {encoding: float(in_fooling_class[last["encoding"] == encoding].mean())
                                for encoding in ENCODINGS}

    bar = _progress_bar(round_index, config, progress)
    try:
        evolve_start = time.perf_counter()
        harvest = _evolve_runs(target, config, round_index, config.runs_per_encoding, config.generations,
                               measure=False, bar=bar)
        measure_start = time.perf_counter()
        measure = None
        if config.measure_runs:
            measure = _evolve_runs(target, config, round_index, config.measure_runs, config.measure_generations,
                                   measure=True, bar=bar)
        measure_end = time.perf_counter()
    finally:
        if bar is not None:
            bar.close()

    _save_images(round_dir / "fooling_images.npz", harvest)
    _save_grid(round_dir / "grid.png", harvest)
    if measure is not None:
        _save_images(round_dir / "measure_images.npz", measure)
        _save_grid(round_dir / "measure_grid.png", measure)
    metrics = RoundMetrics(
        round=round_index,
        fooling_images_trained=sum(len(images["digit"]) for images in earlier),
        test_accuracy=test_accuracy,
        test_digits_as_fooling=test_as_fooling,
        previous_in_fooling_class=previous,
        previous_in_fooling_class_by_encoding=previous_by_encoding,
        harvest=_summaries(harvest, config.generations),
        measure={} if measure is None else _summaries(measure, config.measure_generations),
        seconds={
            "train": round(train_seconds, 1),
            "evolve": round(measure_start - evolve_start, 1),
            "measure": round(measure_end - measure_start, 1),
            "total": round(time.perf_counter() - start, 1),
        },
    )
    atomic_write_text(round_dir / "metrics.json", json.dumps(metrics.to_dict(), indent=2) + "\n")
    if bar is not None:
        bar.write(_round_line(metrics), file=sys.stderr)
    return metrics


def _trained_network(round_index: int, config: RetrainConfig, data: MnistData, earlier: Sequence[dict],
                     round_dir: Path, progress: bool) -> LeNet:
    """Round r's 11-output LeNet: read back when a stopped run already trained it, else trained now."""
    model_path, training_path = round_dir / "model.pt", round_dir / "training.json"
    if model_path.is_file() and training_path.is_file():  # training.json is written after model.pt
        return load_lenet(model_path)
    images = np.concatenate([batch["images"] for batch in earlier])
    model, metrics = train_lenet(
        data,
        num_classes=len(CLASS_NAMES),
        epochs=config.epochs,
        batch_size=config.train_batch_size,
        lr=config.lr,
        seed=training_seed(config.seed, round_index),
        threads=config.threads,
        progress=progress,
        extra_train=(images, np.full(len(images), FOOLING_LABEL)),
    )
    _save_state_dict(model_path, model)
    atomic_write_text(training_path, json.dumps(metrics, indent=2) + "\n")
    return model


def _save_state_dict(path: Path, model: torch.nn.Module) -> None:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _predict(classifier: Classifier, images: np.ndarray) -> torch.Tensor:
    """Top class of uint8 images [N, 28, 28] or [N, 1, 28, 28]."""
    tensor = torch.from_numpy(np.asarray(images)).reshape(len(images), 1, 28, 28).float().div_(255.0)
    return classifier.probabilities(tensor).argmax(dim=1)


def _evolve_runs(target, config: RetrainConfig, round_index: int, runs: int, generations: int, *, measure: bool,
                 bar) -> dict[str, np.ndarray]:
    """Evolve ``runs`` runs per encoding; their elites, flattened run by run, digit by digit."""
    images, digits, confidences, encodings, run_ids, seeds = [], [], [], [], [], []
    for encoding in ENCODINGS:
        for run in range(runs):
            seed = run_seed(config.seed, round_index, encoding, run, measure=measure)
            result = evolve(
                EvolveConfig(encoding=encoding, generations=generations, batch=config.batch, seed=seed,
                             backend=config.backend),
                classifier=target, progress=False,
            )
            archive = result.archive
            confidence = archive.confidences()
            images.append(archive.images.cpu().numpy())
            confidences.append(confidence)
            digits.append(np.arange(archive.num_cells))
            encodings.append(np.full(archive.num_cells, encoding))
            run_ids.append(np.full(archive.num_cells, run))
            seeds.append(np.full(archive.num_cells, seed, dtype=np.uint64))
            if bar is not None:
                bar.update()
                bar.set_postfix_str(f"{'measure' if measure else 'harvest'} {encoding}: median "
                                    f"{format_confidence(float(np.median(confidence)))}", refresh=False)
    return {
        "images": np.concatenate(images),
        "digit": np.concatenate(digits).astype(np.int64),
        "confidence": np.concatenate(confidences).astype(np.float32),
        "encoding": np.concatenate(encodings).astype("<U6"),
        "run": np.concatenate(run_ids).astype(np.int64),
        "seed": np.concatenate(seeds),
    }


def _summaries(images: dict[str, np.ndarray], generations: int) -> dict[str, EvolutionSummary]:
    summaries = {}
    for encoding in ENCODINGS:
        confidence = images["confidence"][images["encoding"] == encoding].astype(np.float64)
        summaries[encoding] = EvolutionSummary.of(confidence.reshape(-1, IMAGES_PER_RUN), generations)
    return summaries


def _save_images(path: Path, images: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **images)
    atomic_write_bytes(path, buffer.getvalue())


def load_fooling_images(path: str | Path) -> dict[str, np.ndarray]:
    """A round's ``fooling_images.npz``: images uint8 [N, 1, 28, 28] and per image its digit, confidence,
    encoding, run and seed."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _save_grid(path: Path, images: dict[str, np.ndarray]) -> None:
    first_runs = np.flatnonzero(images["run"] == 0)
    labels = [f"{images['encoding'][i]}: {images['digit'][i]}" for i in first_runs]
    captions = [format_confidence(float(images["confidence"][i])) for i in first_runs]
    buffer = io.BytesIO()
    labelled_grid(images["images"][first_runs], labels, captions, columns=IMAGES_PER_RUN).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def _progress_bar(round_index: int, config: RetrainConfig, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    total = len(ENCODINGS) * (config.runs_per_encoding + config.measure_runs)
    return tqdm(total=total, desc=f"round {round_index}/{config.rounds} evolve", unit="run", dynamic_ncols=True,
                file=sys.stderr)


def _round_line(metrics: RoundMetrics) -> str:
    parts = [f"round {metrics.round}: digit test accuracy {100 * metrics.test_accuracy:.2f}%"]
    if metrics.previous_in_fooling_class is not None:
        parts.append(f"previous round's images in the fooling class {100 * metrics.previous_in_fooling_class:.2f}%")
    for encoding, summary in metrics.harvest.items():
        parts.append(f"{encoding} median {format_confidence(summary.median_confidence)}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# Table and plot


def format_table(rounds: Sequence[RoundMetrics], config: RetrainConfig) -> str:
    """The Markdown table of an experiment: one row per round (the network, then what evolution reached)."""
    header = ["round", "fooling images trained on", "digit test accuracy",
              "previous round's images in fooling class"]
    header += [f"{encoding} {config.generations} gen.: median, digits >= 99%" for encoding in ENCODINGS]
    if config.measure_runs:
        header += [f"{encoding} {config.measure_generations} gen.: median, digits >= 99.99%"
                   for encoding in ENCODINGS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metrics in rounds:
        previous = metrics.previous_in_fooling_class
        cells = [str(metrics.round), f"{metrics.fooling_images_trained:,}", f"{100 * metrics.test_accuracy:.2f}%",
                 "-" if previous is None else f"{100 * previous:.2f}%"]
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
        notes += (f"; measure runs ({config.measure_runs} per encoding, {config.measure_generations} generations) "
                  "only measure")
    notes += (". Each cell: the median over runs of the run's median confidence over the 10 digits, and the median "
              "over runs of its digits at or above the threshold.")
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
        confidence_ax.plot(x, [_clipped(m.harvest[encoding].median_confidence) for m in rounds], marker="o",
                           color=colors[encoding], label=f"{encoding}, {config.generations} gen.")
        classes_ax.plot(x, [m.harvest[encoding].classes_99 for m in rounds], marker="o", color=colors[encoding],
                        label=f"{encoding}, {config.generations} gen., >= 99%")
        if config.measure_runs:
            confidence_ax.plot(x, [_clipped(m.measure[encoding].median_confidence) for m in rounds], marker="s",
                               linestyle="--", color=colors[encoding],
                               label=f"{encoding}, {config.measure_generations} gen.")
            classes_ax.plot(x, [m.measure[encoding].classes_9999 for m in rounds], marker="s", linestyle="--",
                            color=colors[encoding], label=f"{encoding}, {config.measure_generations} gen., >= 99.99%")
    confidence_ax.set_yscale("logit")
    confidence_ax.set_ylim(_LOGIT_FLOOR / 2, 1 - _LOGIT_CEILING / 2)
    confidence_ax.set_ylabel(f"below {_LOGIT_FLOOR:g} drawn at {_LOGIT_FLOOR:g}", fontsize=8)
    confidence_ax.set_title("median confidence evolution reaches", fontsize=10)
    classes_ax.set_ylim(-0.3, MNIST_NUM_CLASSES + 0.3)
    classes_ax.set_title("digits reached (median over runs)", fontsize=10)

    retrained = [m for m in rounds if m.previous_in_fooling_class is not None]
    recall_ax.plot([m.round for m in retrained], [100 * m.previous_in_fooling_class for m in retrained], marker="o",
                   color="tab:green", label="previous round's fooling images")
    recall_ax.plot([m.round for m in retrained], [100 * m.test_digits_as_fooling for m in retrained], marker="o",
                   color="tab:red", label="real test digits")
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


# ---------------------------------------------------------------------------------------------------------------
# Command line


def register_cli(sub) -> None:
    defaults = RetrainConfig()
    p = sub.add_parser(
        "retrain", help="the MNIST fooling-class experiment: retrain with fooling images, evolve again",
        description=(
            "Evolve fooling images against LeNet, retrain it with them as an 11th class, evolve against the new "
            "network, and repeat; writes every round's network, images and metrics, a table and a plot."
        ),
    )
    p.add_argument("--rounds", type=int, default=defaults.rounds,
                   help=f"retrained networks, after round 0's shipped LeNet (default {defaults.rounds})")
    p.add_argument("--out", required=True, help="experiment folder to write")
    p.add_argument("--resume", action="store_true",
                   help="continue the experiment in --out at its first unfinished round")
    p.add_argument("--overwrite", action="store_true", help="replace an experiment already in --out")
    p.add_argument("--seed", type=int, default=defaults.seed, help=f"experiment seed (default {defaults.seed})")
    p.add_argument("--images-per-round", type=int, default=defaults.images_per_round,
                   help="fooling images evolved per round, a multiple of 20 (each run gives one image per digit, "
                        f"and both encodings run equally often; default {defaults.images_per_round})")
    p.add_argument("--generations", type=int, default=defaults.generations,
                   help=f"generations of each harvest run (default {defaults.generations})")
    p.add_argument("--measure-runs", type=int, default=defaults.measure_runs,
                   help=f"measure runs per encoding and round, 0 for none (default {defaults.measure_runs})")
    p.add_argument("--measure-generations", type=int, default=defaults.measure_generations,
                   help=f"generations of each measure run (default {defaults.measure_generations}, the paper's)")
    p.add_argument("--batch", type=int, default=defaults.batch,
                   help=f"children per generation (default {defaults.batch})")
    p.add_argument("--epochs", type=int, default=defaults.epochs,
                   help=f"training epochs per round (default {defaults.epochs})")
    p.add_argument("--threads", type=int, default=defaults.threads,
                   help=f"CPU threads for torch; training is reproducible for the same count "
                        f"(default {defaults.threads})")
    p.add_argument("--backend", choices=BACKENDS, default=defaults.backend,
                   help="where evolution runs (default auto: cuda when usable); training runs on the CPU")
    p.add_argument("--train-limit", type=int, default=None, metavar="N",
                   help="train on the first N MNIST training digits only (quick trials)")
    p.add_argument("--test-limit", type=int, default=None, metavar="N",
                   help="measure on the first N MNIST test digits only (quick trials)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_retrain)


def _cmd_retrain(args: argparse.Namespace) -> int:
    config = RetrainConfig(
        rounds=args.rounds, seed=args.seed, images_per_round=args.images_per_round, generations=args.generations,
        measure_runs=args.measure_runs, measure_generations=args.measure_generations, batch=args.batch,
        epochs=args.epochs, threads=args.threads, backend=args.backend, train_limit=args.train_limit,
        test_limit=args.test_limit,
    )
    start = time.perf_counter()
    rounds = run_retrain(config, args.out, resume=args.resume, overwrite=args.overwrite,
                         progress=not args.no_progress)
    print(format_table(rounds, config))
    folder = Path(args.out)
    print(f"experiment folder: {folder} (table.md, table.csv, rounds.png, round_0..round_{config.rounds})")
    print(f"wall time of this command: {(time.perf_counter() - start) / 60:.1f} min; "
          f"of all rounds: {sum(m.seconds.get('total', 0.0) for m in rounds) / 60:.1f} min")
    return 0
