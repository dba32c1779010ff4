"""The 1001-class experiment's configuration and its record: what fit.json holds, and the fitted row of
fooling_head.pt, each read back with a check that names the file at fault."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fooling_ext.classifiers.spec import InputSpec
from fooling_ext.core.checks import check_real, check_whole
from fooling_ext.experiments.imagenet_fooling_class.network import RowFit
from fooling_ext.runs.folder import RunFolderError

HEAD_FORMAT = "fooling_ext.fooling_head"
FIT_FORMAT = "fooling_ext.fooling_class_fit"
FIT_VERSION = 1
#: what a resumed experiment may change: the new run's length (more generations extend it) and where it computes
RESUMABLE = ("generations", "backend", "fast_inference")


# ---------------------------------------------------------------------------------------------------------------
# The experiment


@dataclass
class FoolingClassConfig:
    """The 1001-class experiment: source runs, natural images, the fit, and the evolution afterwards."""

    runs: Sequence[str | Path]
    natural: str | Path | None = None  # None: the foolbox sample photos
    views: int = 8  # views per natural photo (whole photo + random crops and mirrors)
    holdout: float = 0.2  # share of each run's elites kept out of the fit
    folds: int = 5  # cross-validation folds over the natural photos
    seed: int = 0
    fit: RowFit = dataclasses.field(default_factory=RowFit)
    evolve: bool = True
    generations: int | None = None  # None: as the first source run
    batch: int | None = None
    evolve_seed: int | None = None
    backend: str = "auto"
    fast_inference: bool | None = None

    def check(self) -> None:
        if not self.runs:
            raise ValueError("give at least one finished CPPN run against the imagenet model")
        check_whole("views", self.views, 1)
        check_real("holdout", self.holdout, 0.0, 1.0, high_open=True)
        check_whole("folds", self.folds, 2)
        check_whole("seed", self.seed, 0)
        for name in ("generations", "batch"):
            if getattr(self, name) is not None:
                check_whole(name, getattr(self, name), 1)
        if self.evolve_seed is not None:
            check_whole("evolve_seed", self.evolve_seed, 0)
        self.fit.check()


def config_record(config: FoolingClassConfig) -> dict[str, Any]:
    """The configuration as fit.json records it: plain JSON values, the source runs and the photo folder as
    absolute paths (a resumed experiment finds them from any working folder)."""
    record = dataclasses.asdict(config)
    record["runs"] = [os.path.abspath(path) for path in config.runs]
    record["natural"] = None if config.natural is None else os.path.abspath(config.natural)
    return record


def read_fit_record(path: str | Path) -> dict[str, Any]:
    """fit.json of an experiment folder (or the file itself), checked: {"config": the configuration as
    :func:`config_record` writes it, "result": the figures before the new run}. A damaged or foreign file is a
    :class:`RunFolderError` that names it."""
    path = Path(path)
    path = path / "fit.json" if path.is_dir() else path
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunFolderError(f"nothing to resume: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{path} is damaged: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != FIT_FORMAT:
        raise RunFolderError(f"{path} is not the fit record of a fooling-class experiment")
    if record.get("version") != FIT_VERSION:
        raise RunFolderError(f"{path} has version {record.get('version')!r}; this fooling_ext reads {FIT_VERSION}")
    config, result = record.get("config"), record.get("result")
    known = {field.name for field in dataclasses.fields(FoolingClassConfig)}
    if not isinstance(config, dict) or set(config) != known or not isinstance(result, dict) or "spec" not in result:
        raise RunFolderError(f"{path} is damaged: its configuration or figures are missing or incomplete")
    return record


def recorded_config(path: str | Path) -> FoolingClassConfig:
    """The configuration an experiment folder records (what :func:`run_experiment` resumes with)."""
    record = read_fit_record(path)
    config = dict(record["config"])
    try:
        config["fit"] = RowFit(**config["fit"])
        recorded = FoolingClassConfig(**config)
        recorded.check()
    except (TypeError, ValueError) as exc:
        raise RunFolderError(f"{Path(path)} records an invalid configuration: {exc}") from None
    return recorded


def _as_json(value: Any) -> Any:
    """`value` as JSON gives it back (tuples become lists), for comparing a torch-saved record with a JSON one."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return None


def read_head(path: Path, spec: InputSpec) -> dict[str, torch.Tensor]:
    """The fitted row of fooling_head.pt ({"weight": [1, F], "bias": [1]}), checked against the spec it was fitted
    with; anything else is a :class:`RunFolderError` that names the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing: the fitted row cannot be resumed without it") from None
    except Exception as exc:  # torch raises many kinds for a file that is not its own
        raise RunFolderError(f"{path} is damaged or not a fooling head: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != HEAD_FORMAT:
        raise RunFolderError(f"{path} is not a fooling head written by fooling imagenet-fooling-class")
    weight, bias = state.get("weight"), state.get("bias")
    if not (
        isinstance(weight, torch.Tensor)
        and isinstance(bias, torch.Tensor)
        and weight.dim() == 2
        and weight.shape[0] == 1
        and tuple(bias.shape) == (1,)
        and weight.is_floating_point()
        and bias.is_floating_point()
        and bool(torch.isfinite(weight).all())
        and bool(torch.isfinite(bias).all())
    ):
        raise RunFolderError(f"{path} is damaged: its row must be finite floats, weight [1, F] and bias [1]")
    if _as_json(state.get("spec")) != _as_json(dataclasses.asdict(spec)):
        raise RunFolderError(f"{path} was fitted with another input spec than fit.json records")
    return {"weight": weight, "bias": bias}
