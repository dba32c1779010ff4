"""The fooling-class experiment on MNIST: retrain LeNet with an 11th class of fooling images, evolve again.

The paper asked whether a network can learn to reject fooling images: add the images evolved against it to its
training set as one more class ("fooling"), retrain, and evolve against the new network. On ImageNet that lowered
the confidence evolution reached; on MNIST it did not, over several rounds.

Round 0 evolves fooling images against the shipped LeNet. Round r >= 1 trains a new 11-output LeNet on MNIST plus
the fooling images of every earlier round (cumulative, label 10), measures it (digit test accuracy, and how many
of round r - 1's fooling images it now puts in the fooling class), then evolves against it. The fitness for digit d
is still p(d) of the 11-way softmax (``Classifier.leading_classes``), so an image only scores by being called a digit
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

import copy
import dataclasses
import io
import json
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fooling_ext import _core
from fooling_ext._files import atomic_write_bytes, atomic_write_text
from fooling_ext._version import __version__
from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.datasets.mnist import MNIST_NUM_CLASSES, MnistData, load_mnist
from fooling_ext.classifiers.loading import load_classifier
from fooling_ext.classifiers.models import LeNet, load_lenet
from fooling_ext.classifiers.spec import MNIST_SPEC
from fooling_ext.classifiers.training import train_lenet
from fooling_ext.core.backend import resolve_device
from fooling_ext.experiments.mnist_fooling_class.config import (
    CLASS_NAMES,
    FOOLING_LABEL,
    IMAGES_PER_RUN,
    RESUMABLE_CHANGES,
    EvolutionSummary,
    RetrainConfig,
    RoundMetrics,
    run_seed,
    training_seed,
)
from fooling_ext.experiments.mnist_fooling_class.report import write_summary
from fooling_ext.runs.folder import RunFolder, RunFolderError, config_differences, folder_entries
from fooling_ext.runs.images import labelled_grid
from fooling_ext.runs.report import format_confidence
from fooling_ext.search.config import EvolveConfig
from fooling_ext.search.encodings import ENCODINGS
from fooling_ext.search.evolve import evolve

_ROUND_DIR = re.compile(r"round_(\d+)")


class ExperimentFolder(RunFolder):
    """An experiment folder: config.json, the summary files and one folder per round (the module docstring)."""

    KIND = "experiment"
    FILES = ("config.json", "table.md", "table.csv", "rounds.png")
    DIRS = ()
    PATTERNS = ()

    @property
    def resume_path(self) -> Path:
        return self.config_path

    #: what a round folder holds (the module docstring)
    ROUND_FILES = (
        "model.pt",
        "training.json",
        "fooling_images.npz",
        "measure_images.npz",
        "grid.png",
        "measure_grid.png",
        "metrics.json",
    )

    def owned_paths(self) -> list[Path]:
        return super().owned_paths() + self.round_dirs()

    def _foreign_in_dir(self, folder: Path) -> list[Path]:
        if not _ROUND_DIR.fullmatch(folder.name):
            return [folder]
        return [
            p for p in folder_entries(folder) if p.is_symlink() or not p.is_file() or p.name not in self.ROUND_FILES
        ]

    def round_dirs(self, after: int = -1) -> list[Path]:
        """The round folders present, of rounds after `after`."""
        if not self.path.is_dir():
            return []
        return sorted(
            p
            for p in self.path.iterdir()
            if p.is_dir() and (m := _ROUND_DIR.fullmatch(p.name)) and int(m.group(1)) > after
        )


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
    map_runs: MapRuns | None = None,
) -> list[RoundMetrics]:
    """Run (or resume) the experiment into folder ``out``; returns the metrics of rounds 0..config.rounds.

    ``data`` replaces the shipped MNIST. ``on_round`` is called with each round's metrics once the round's files
    are complete. Rounds already complete in ``out`` are read back, not recomputed. ``map_runs(fn, calls, common)``
    computes the evolution runs, ``fn(*common, *call)`` for each call, and yields the results in order; by default
    one after the other in this process (``fooling retrain`` passes a runner of Ray tasks when Ray is installed).
    The results are the same whichever computes them.
    """
    config.check()
    _core.num_threads()  # a bad FOOLING_NUM_THREADS is refused before the folder is made
    experiment = ExperimentFolder(out)
    held_before = experiment.holds_lock()
    try:
        return _run_rounds(
            config,
            experiment,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
            data=data,
            on_round=on_round,
            map_runs=map_runs,
        )
    except BaseException:
        if not held_before:  # an experiment that failed before its first round leaves nothing
            experiment.abandon()
        raise
    finally:
        if not held_before:  # the folder is this call's while it runs
            experiment.release()


def _run_rounds(
    config: RetrainConfig, experiment: ExperimentFolder, *, resume, overwrite, progress, data, on_round, map_runs
) -> list[RoundMetrics]:
    _prepare_folder(experiment, _full_config(config), resume=resume, overwrite=overwrite)
    folder = experiment.path
    data = _limited(data if data is not None else load_mnist(), config)
    device = resolve_device(config.backend)
    results: list[RoundMetrics] = []
    with _torch_threads(config.threads):
        for round_index in range(config.rounds + 1):
            done = _completed_round(folder, round_index)
            if done is None:
                for later in experiment.round_dirs(after=round_index):  # built on a round that is being redone
                    shutil.rmtree(later)
                done = _run_round(round_index, config, data, folder, device, progress, map_runs or _one_by_one)
                if on_round is not None:
                    on_round(done)
            results.append(done)
    write_summary(folder, results, config)
    return results


def _full_config(config: RetrainConfig) -> dict[str, Any]:
    return {"fooling_ext": __version__, "torch": str(torch.__version__), "experiment": dataclasses.asdict(config)}


def _prepare_folder(folder: ExperimentFolder, cfg: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
    """Check the folder as ``fooling evolve`` does (resume, overwrite, refuse to mix), then write config.json."""
    folder.prepare(resume=resume, overwrite=overwrite)
    if resume:
        differences = config_differences(folder.read_config(), cfg, ignore=RESUMABLE_CHANGES)
        if differences:
            raise RunFolderError("cannot resume with a different configuration: " + "; ".join(differences))
    folder.write_config(cfg)


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
        x_train=data.x_train[: config.train_limit],
        y_train=data.y_train[: config.train_limit],
        x_test=data.x_test[: config.test_limit],
        y_test=data.y_test[: config.test_limit],
    )


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run_round(
    round_index: int,
    config: RetrainConfig,
    data: MnistData,
    folder: Path,
    device: torch.device,
    progress: bool,
    map_runs: MapRuns,
) -> RoundMetrics:
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

    classifier = load_classifier(
        model,
        spec=MNIST_SPEC,
        class_names=CLASS_NAMES[: model.num_classes],
        name=f"round {round_index} LeNet",
        device=device,
    )
    predicted = _predict(classifier, data.x_test)
    test_accuracy = float((predicted == torch.as_tensor(data.y_test, device=predicted.device)).float().mean())
    test_as_fooling = previous = previous_by_encoding = None
    target = classifier
    if round_index > 0:
        target = classifier.leading_classes(MNIST_NUM_CLASSES)  # digit d scores p(d) of the 11-way softmax
        test_as_fooling = float((predicted == FOOLING_LABEL).float().mean())
        last = earlier[-1]
        in_fooling_class = (_predict(classifier, last["images"]) == FOOLING_LABEL).cpu().numpy()
        previous = float(in_fooling_class.mean())
        previous_by_encoding = {
            encoding: float(in_fooling_class[last["encoding"] == encoding].mean()) for encoding in ENCODINGS
        }

    bar = _progress_bar(round_index, config, progress)
    try:
        evolve_start = time.perf_counter()
        harvest = _evolve_runs(
            target,
            config,
            round_index,
            config.runs_per_encoding,
            config.generations,
            measure=False,
            bar=bar,
            map_runs=map_runs,
        )
        measure_start = time.perf_counter()
        measure = None
        if config.measure_runs:
            measure = _evolve_runs(
                target,
                config,
                round_index,
                config.measure_runs,
                config.measure_generations,
                measure=True,
                bar=bar,
                map_runs=map_runs,
            )
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


def _trained_network(
    round_index: int, config: RetrainConfig, data: MnistData, earlier: Sequence[dict], round_dir: Path, progress: bool
) -> LeNet:
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


def _one_by_one(fn: Callable[..., Any], calls: Sequence[tuple], common: tuple = ()) -> Iterator[Any]:
    for call in calls:
        yield fn(*common, *call)


MapRuns = Callable[[Callable[..., Any], Sequence[tuple], tuple], Iterable[Any]]


def evolve_elites(
    target, encoding: str, generations: int, batch: int, seed: int, backend: str
) -> tuple[np.ndarray, np.ndarray]:
    """One evolution run of the experiment: its elites' images (uint8) and confidences. Float pixels and, for
    CPPNs, the rejection rule of add connection, as the experiment has always evolved them (its recorded results
    in docs/fooling-class.md; RetrainConfig has no option for either)."""
    cppn: dict[str, Any] = {"color": "hsl", "cppn_mutation": {"add_edge": "rejection"}} if encoding == "cppn" else {}
    config = EvolveConfig(
        encoding=encoding, generations=generations, batch=batch, seed=seed, backend=backend, quantize=False, **cppn
    )
    result = evolve(config, classifier=target, progress=False)
    return result.archive.images.cpu().numpy(), result.archive.confidences()


def _evolve_runs(
    target,
    config: RetrainConfig,
    round_index: int,
    runs: int,
    generations: int,
    *,
    measure: bool,
    bar,
    map_runs: MapRuns,
) -> dict[str, np.ndarray]:
    """Evolve ``runs`` runs per encoding; their elites, flattened run by run, digit by digit."""
    images, digits, confidences, encodings, run_ids, seeds = [], [], [], [], [], []
    calls = [
        (
            encoding,
            generations,
            config.batch,
            run_seed(config.seed, round_index, encoding, run, measure=measure),
            config.backend,
        )
        for encoding in ENCODINGS
        for run in range(runs)
    ]
    if map_runs is not _one_by_one and target.device.type != "cpu":
        target = copy.deepcopy(target).to("cpu")  # sent to workers that may have no GPU; each run moves it back
    results = map_runs(evolve_elites, calls, (target,))
    for index, ((encoding, _, _, seed, _), (elite_images, confidence)) in enumerate(zip(calls, results)):
        cells = len(confidence)
        images.append(elite_images)
        confidences.append(confidence)
        digits.append(np.arange(cells))
        encodings.append(np.full(cells, encoding))
        run_ids.append(np.full(cells, index % runs))
        seeds.append(np.full(cells, seed, dtype=np.uint64))
        if bar is not None:
            bar.update()
            bar.set_postfix_str(
                f"{'measure' if measure else 'harvest'} {encoding}: median "
                f"{format_confidence(float(np.median(confidence)))}",
                refresh=False,
            )
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
    # numpy's stub also matches **kwds against allow_pickle: bool; every value here is an array.
    np.savez_compressed(buffer, **images)  # type: ignore[arg-type]
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
    return tqdm(
        total=total, desc=f"round {round_index}/{config.rounds} evolve", unit="run", dynamic_ncols=True, file=sys.stderr
    )


def _round_line(metrics: RoundMetrics) -> str:
    parts = [f"round {metrics.round}: digit test accuracy {100 * metrics.test_accuracy:.2f}%"]
    if metrics.previous_in_fooling_class is not None:
        parts.append(f"previous round's images in the fooling class {100 * metrics.previous_in_fooling_class:.2f}%")
    for encoding, summary in metrics.harvest.items():
        parts.append(f"{encoding} median {format_confidence(summary.median_confidence)}")
    return ", ".join(parts)
