"""The configuration of a MAP-Elites run: everything that decides what the run computes."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from fooling_ext import _core
from fooling_ext.classifiers.combined import COMBINE_RULES
from fooling_ext.core.backend import BACKENDS
from fooling_ext.core.checks import check_memory, check_whole
from fooling_ext.core.cppn import DEFAULT_MAX_EDGES, DEFAULT_MAX_NODES, NUM_INPUTS
from fooling_ext.core.render import COLORS, COORDS
from fooling_ext.runs.folder import RunFolder, RunFolderError, check_config_shape
from fooling_ext.search.archive import INSERTION_MODES
from fooling_ext.search.encodings import ENCODINGS

# Settings that apply to one encoding only: name -> (encoding, the value that leaves it unset). A setting given
# for the other encoding would be silently ignored, so EvolveConfig.check refuses it.
ENCODING_SETTINGS = {
    "coords": ("cppn", "normalized"),
    "color": ("cppn", "hls8"),
    "max_nodes": ("cppn", DEFAULT_MAX_NODES),
    "max_edges": ("cppn", DEFAULT_MAX_EDGES),
    "cppn_mutation": ("cppn", {}),
    "direct_mutation": ("direct", {}),
    "halve_every": ("direct", None),
}


@dataclass
class EvolveConfig:
    """Everything that defines a MAP-Elites run (the paper's MNIST settings by default)."""

    model: str = "mnist"
    encoding: str = "cppn"
    generations: int = 200
    batch: int | None = None  # None: the paper's for the model and encoding (search.defaults.paper_batch)
    seed: int = 0
    backend: str = "auto"
    insertion: str = "all"
    image_size: tuple[int, int] | None = None  # None: the paper's render size (search.defaults.render_size)
    checkpoint_every: int = 50
    # CPPN encoding
    coords: str = "normalized"
    color: str = "hls8"  # the original code's 8-bit OpenCV HLS (colour classifiers; greyscale ones ignore it)
    max_nodes: int = DEFAULT_MAX_NODES  # genome capacity: nodes (inputs and outputs included) ...
    max_edges: int = DEFAULT_MAX_EDGES  # ... and edges; the archive holds cells x capacity
    cppn_mutation: dict[str, Any] = field(default_factory=dict)
    # Direct encoding
    direct_mutation: dict[str, Any] = field(default_factory=dict)
    halve_every: int | None = None
    # Both: 8-bit pixels, trunc(255 a) / 255, as the original's images (colour mode hls8 is 8-bit either way)
    quantize: bool = True
    # Fastest classifier engine and settings within 1e-3 of float32, measured at start (None: on)
    fast_inference: bool | None = None
    # Several models at once: all of them, `model` first (None: `model` alone), and how a class's probabilities
    # under them combine into its fitness (classifiers.combined; None: "min"). A run of one model records
    # neither (search.evolve.full_config), so its configuration is the one it always was.
    models: list[str] | None = None
    combine: str | None = None

    def check(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a whole number in [0, 2^63), got {self.seed!r}")
        check_whole("generations", self.generations, 1)
        if self.batch is not None:
            check_whole("batch", self.batch, 1)
        check_whole("checkpoint_every", self.checkpoint_every, 1)
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.insertion not in INSERTION_MODES:
            raise ValueError(f"insertion must be one of {INSERTION_MODES}, got {self.insertion!r}")
        if self.image_size is not None:
            if not isinstance(self.image_size, (tuple, list)) or len(self.image_size) != 2:
                raise ValueError(f"image_size must be (height, width), got {self.image_size!r}")
            for side in self.image_size:
                check_whole("image_size", side, 1, _core.MAX_IMAGE_SIDE)
        if self.coords not in COORDS:
            raise ValueError(f"coords must be one of {tuple(COORDS)}, got {self.coords!r}")
        if self.color not in COLORS:
            raise ValueError(f"color must be one of {tuple(COLORS)}, got {self.color!r}")
        if not isinstance(self.quantize, bool):
            raise ValueError(f"quantize must be True or False, got {self.quantize!r}")
        if self.halve_every is not None:
            check_whole("halve_every", self.halve_every, 1)
        if self.fast_inference is not None and not isinstance(self.fast_inference, bool):
            raise ValueError(f"fast_inference must be True, False or None, got {self.fast_inference!r}")
        for name in ("cppn_mutation", "direct_mutation"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a dict of mutation settings, got {getattr(self, name)!r}")
        for name, (encoding, unset) in ENCODING_SETTINGS.items():
            if self.encoding != encoding and getattr(self, name) != unset:
                raise ValueError(
                    f"{name} applies to the {encoding} encoding only, not to {self.encoding} "
                    f"(got {name}={getattr(self, name)!r})"
                )
        check_capacity(self.max_nodes, self.max_edges)
        self._check_models()

    def _check_models(self) -> None:
        if self.models is not None:
            if (
                not isinstance(self.models, (list, tuple))
                or len(self.models) < 2
                or not all(isinstance(m, str) and m for m in self.models)
            ):
                raise ValueError(f"models must be a list of 2 or more model names or files, got {self.models!r}")
            if self.model != self.models[0]:
                raise ValueError(f"model must be the first of models ({self.models[0]!r}), got {self.model!r}")
        if self.combine is not None:
            if self.models is None:
                raise ValueError(
                    f"combine applies to several models (models=[...]), got combine={self.combine!r} with one"
                )
            if self.combine not in COMBINE_RULES:
                raise ValueError(f"combine must be one of {COMBINE_RULES}, got {self.combine!r}")

    @classmethod
    def from_run(cls, folder: str | os.PathLike[str]) -> EvolveConfig:
        """The configuration a run folder records (its config.json, else its checkpoint's), with the key names
        of this version: ``evolve(EvolveConfig.from_run(out), out, resume=True)`` continues the run."""
        return cls.from_recorded(read_recorded_config(folder))

    @classmethod
    def from_recorded(cls, recorded: dict[str, Any]) -> EvolveConfig:
        """The EvolveConfig of a recorded configuration (config.json's content)."""
        run = upgrade_recorded_config(recorded).get("run")
        if not isinstance(run, dict):
            raise ValueError("the recorded configuration has no 'run' section")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(run) - known)
        if unknown:
            raise ValueError(
                f"the recorded configuration has settings this version does not know: {unknown} "
                f"(recorded by fooling_ext {recorded.get('fooling_ext', '?')})"
            )
        values = dict(run)
        if values.get("image_size") is not None:
            values["image_size"] = tuple(values["image_size"])
        if values.get("models") is not None:
            values["models"] = list(values["models"])
        return cls(**values)


def read_recorded_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A run folder's recorded configuration, upgraded (:func:`upgrade_recorded_config`): config.json, or the
    checkpoint's when config.json is missing or unreadable."""
    run = RunFolder(folder)
    if not run.path.is_dir():
        raise RunFolderError(f"no run folder at {run.path}")
    source = run.config_path
    if run.config_path.is_file():
        try:
            recorded = run.read_config()
        except RunFolderError:
            if not run.checkpoint_path.exists():
                raise
            recorded, source = run.load_checkpoint(required=("config",))["config"], run.checkpoint_path
    elif run.checkpoint_path.exists():
        recorded, source = run.load_checkpoint(required=("config",))["config"], run.checkpoint_path
    else:
        raise RunFolderError(f"{run.path} holds no run: neither config.json nor checkpoint.pt")
    check_recorded_run(recorded, source)
    return upgrade_recorded_config(recorded)


def check_recorded_run(recorded: Any, source: str | os.PathLike[str]) -> None:
    """A RunFolderError naming `source` unless `recorded` is an evolve run's configuration: an object with the
    sections readers rely on, of the right JSON types."""
    if not isinstance(recorded, dict):
        raise RunFolderError(f"{source} does not hold a run configuration")
    check_config_shape(recorded, os.fspath(source))
    missing = [key for key in ("run", "classifier") if key not in recorded]
    if missing or "spec" not in recorded["classifier"] or "class_names" not in recorded["classifier"]:
        raise RunFolderError(
            f"{source} does not hold an evolve run's configuration: it has no "
            f"{(missing + ['classifier.spec or class_names'])[0]}"
        )


def run_memory(config: EvolveConfig, encoding: Any, classes: int) -> int:
    """Bytes a run needs at least: per child its float32 image and its genome twice (parent copy and child), per
    class the archive's uint8 image and genome. A CPPN genome holds 4 bytes per node and 12 per edge of its
    capacity; a direct genome 4 bytes per pixel and channel."""
    assert config.batch is not None, "evolve resolves the batch size (search.defaults.paper_batch) first"
    pixels: int = encoding.channels * encoding.height * encoding.width
    genome = 8 + 4 * config.max_nodes + 12 * config.max_edges if config.encoding == "cppn" else 4 * pixels
    return config.batch * (4 * pixels + 2 * genome) + classes * (pixels + genome)


def check_run_memory(config: EvolveConfig, encoding: Any, classes: int, device: Any) -> None:
    """Refuse, before anything is allocated, a run whose population, images and archive cannot fit in the
    memory of its device."""
    check_memory(
        f"a run of {config.batch} children of {encoding.channels}x{encoding.height}x{encoding.width} "
        f"images against {classes} classes",
        run_memory(config, encoding, classes),
        device,
    )


def check_capacity(max_nodes: Any, max_edges: Any) -> None:
    """ValueError unless the CPPN genome capacity is within the core's limits (the CPPN's outputs, 1 or 3, are
    checked when the population is made)."""
    for name, value, low, high in (
        ("max_nodes", max_nodes, NUM_INPUTS + 1, _core.MAX_NODES_CAPACITY),
        ("max_edges", max_edges, NUM_INPUTS, _core.MAX_EDGES_CAPACITY),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")


# Keys of the recorded "run" configuration that later versions call otherwise: old name -> new name.
_RENAMED_RUN_KEYS = {"pixel_mutation": "direct_mutation"}  # before 0.2.0


# Keys later versions added, with the value that gives the behaviour of the runs recorded without them.
_ADDED_RUN_KEYS = {"color": "hsl", "quantize": False}  # 0.2.0 and before: float pixels
_ADDED_ENCODING_KEYS: dict[str, dict[str, Any]] = {
    "cppn": {"color": "hsl", "quantize": False},
    "direct": {"quantize": False},
}
# "Add connection" of runs recorded before the choice existed: pairs drawn and rejected (duplicates, cycles).
ADD_EDGE_BEFORE_CHOICE = "rejection"


def upgrade_recorded_config(recorded: dict[str, Any]) -> dict[str, Any]:
    """A run's recorded configuration (config.json, a checkpoint's) with the key names and keys of this version,
    so that runs made by earlier versions resume and serve as sources as they are: renamed keys take their new
    names; keys added since are filled with the value that reproduces what the run did (colour "hsl", no
    quantisation; for a CPPN run whose mutation settings have no "add_edge", the rejection rule it used, named in
    encoding.mutation and in run.cppn_mutation); settings of the other encoding, which earlier versions recorded
    and ignored, read as unset. A recorded value is never replaced otherwise."""
    upgraded = dict(recorded)
    run = recorded.get("run")
    if isinstance(run, dict):
        run = {_RENAMED_RUN_KEYS.get(key, key): value for key, value in run.items()}
        run = {**_ADDED_RUN_KEYS, **run}
        for name, (owner, unset) in ENCODING_SETTINGS.items():
            if name in run and run.get("encoding", owner) != owner:
                run[name] = unset
        upgraded["run"] = run
    encoding = recorded.get("encoding")
    if isinstance(encoding, dict) and encoding.get("encoding") in _ADDED_ENCODING_KEYS:
        encoding = {**_ADDED_ENCODING_KEYS[encoding["encoding"]], **encoding}
        upgraded["encoding"] = encoding
    if (
        isinstance(encoding, dict)
        and encoding.get("encoding") == "cppn"
        and isinstance(encoding.get("mutation"), dict)
        and "add_edge" not in encoding["mutation"]
    ):
        upgraded["encoding"] = {**encoding, "mutation": {**encoding["mutation"], "add_edge": ADD_EDGE_BEFORE_CHOICE}}
        run = upgraded.get("run")
        if isinstance(run, dict):
            cppn = run.get("cppn_mutation")
            if not isinstance(cppn, dict):
                cppn = {}
            upgraded["run"] = {**run, "cppn_mutation": {**cppn, "add_edge": ADD_EDGE_BEFORE_CHOICE}}
    return upgraded


def resume_settings(config: EvolveConfig, recorded: dict[str, Any]) -> EvolveConfig:
    """`config` for resuming the run recorded as `recorded`: a CPPN run's "add connection" rule, when `config`
    does not name one, is the one the run was made with (the rejection rule for runs recorded before the
    choice existed), so that a run resumes with the mutation it started with."""
    if config.encoding != "cppn" or "add_edge" in config.cppn_mutation:
        return config
    run = upgrade_recorded_config(recorded).get("run")
    cppn = run.get("cppn_mutation") if isinstance(run, dict) else None
    if not isinstance(cppn, dict) or "add_edge" not in cppn:
        return config
    return dataclasses.replace(config, cppn_mutation={**config.cppn_mutation, "add_edge": cppn["add_edge"]})
