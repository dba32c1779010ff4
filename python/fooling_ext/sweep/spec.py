"""What a sweep runs: a grid of MAP-Elites runs (models x encodings x option values x seeds), read from flags or a
TOML / JSON file, checked before anything runs, and expanded into named runs.

A specification, as TOML (JSON takes the same keys)::

    models = ["mnist"]                 # built-in names or model files (.pt2, TorchScript, .json description)
    encodings = ["cppn", "direct"]
    seeds = [1, 2, 3]                  # or "1-3"

    [options]                          # EvolveConfig fields; a list is an axis of the grid, a value is fixed
    generations = 200
    batch = [100, 200]
    "direct_mutation.rate" = 0.05      # one field of the encoding's mutation settings

    [resources]                        # per run; may change when a sweep is resumed
    cpus = 1                           # CPU cores (also the run's torch and core threads)
    gpus = 0                           # a fraction of a GPU shares one GPU between runs
    max_retries = 3                    # times a run whose worker died is started again

Each run is named after its grid point, ``<model>-<encoding>-seed<seed>`` followed by ``-<key><value>`` for every
option with more than one value (``mnist-cppn-seed1-batch100``), and writes its run folder ``runs/<name>``. A
setting of one encoding (search.config.ENCODING_SETTINGS: coords, color, halve_every, direct_mutation.<field>...)
goes to that encoding's runs only.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fooling_ext.classifiers.loading import BUILTIN_MODELS
from fooling_ext.core.checks import check_real, check_whole
from fooling_ext.core.mutation import CPPNMutation, DirectMutation
from fooling_ext.core.render import COLORS, COORDS
from fooling_ext.search.config import ENCODING_SETTINGS, EvolveConfig
from fooling_ext.search.encodings import ENCODINGS, make_encoding

SPEC_KEYS = ("models", "encodings", "seeds", "options", "resources")
AXES = ("model", "encoding", "seed")  # EvolveConfig fields the grid's own axes set
OPTION_KEYS = tuple(f.name for f in dataclasses.fields(EvolveConfig) if f.name not in AXES)
MUTATION_FIELDS = {
    "cppn_mutation": tuple(f.name for f in dataclasses.fields(CPPNMutation)),
    "direct_mutation": tuple(f.name for f in dataclasses.fields(DirectMutation)),
}
RESOURCE_DEFAULTS = {"cpus": 1.0, "gpus": 0.0, "max_retries": 3}
_INT_OPTIONS = ("generations", "batch", "checkpoint_every", "max_nodes", "max_edges", "halve_every")
_SEQUENCE_OPTIONS = ("image_size", "cppn_mutation.activations")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._]+")


class SweepSpecError(ValueError):
    """A sweep specification that cannot be run; the message names the key and the value."""


@dataclass(frozen=True)
class RunPoint:
    """One run of the grid: its name, the folder it writes (relative to the sweep folder) and its configuration."""

    name: str
    model: str
    encoding: str
    seed: int
    options: dict[str, Any]  # the options of this point, fixed ones included, dotted keys as given
    group: str = ""  # the name without the seed: the runs that differ only in their seed share it

    @property
    def folder(self) -> str:
        return f"runs/{self.name}"

    def config(self) -> EvolveConfig:
        values: dict[str, Any] = {"model": self.model, "encoding": self.encoding, "seed": self.seed}
        for key, value in self.options.items():
            if ENCODING_SETTINGS.get(key.split(".", 1)[0], (self.encoding,))[0] != self.encoding:
                continue  # a setting of the other encoding (a grid over both encodings): not this run's
            if "." in key:
                group, name = key.split(".", 1)
                values.setdefault(group, {})[name] = value
            else:
                values[key] = tuple(value) if key == "image_size" and value is not None else value
        return EvolveConfig(**values)


@dataclass
class SweepSpec:
    """A grid of runs and the resources of each (see the module docstring)."""

    models: list[str] = field(default_factory=lambda: ["mnist"])
    encodings: list[str] = field(default_factory=lambda: ["cppn"])
    seeds: list[int] = field(default_factory=lambda: [0])
    options: dict[str, list[Any]] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=lambda: dict(RESOURCE_DEFAULTS))

    def __post_init__(self) -> None:  # scalars become one-value axes, as in a file
        self.models = _as_list("models", self.models)
        self.encodings = _as_list("encodings", self.encodings)
        self.seeds = parse_seeds(self.seeds)
        if not isinstance(self.options, Mapping):
            raise SweepSpecError(f"options must be a table of keys, got {self.options!r}")
        self.options = {str(key): _option_values(str(key), value) for key, value in self.options.items()}
        self.resources = {**RESOURCE_DEFAULTS, **self.resources}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the sweep specification") -> SweepSpec:
        """A specification from a mapping as TOML or JSON give it; scalars become one-value axes."""
        if not isinstance(data, Mapping):
            raise SweepSpecError(f"{source} must be a table of keys, got {type(data).__name__}")
        unknown = sorted(set(data) - set(SPEC_KEYS))
        if unknown:
            raise SweepSpecError(f"unknown key {unknown[0]!r} in {source}; expected {', '.join(SPEC_KEYS)}")
        options = data.get("options", {})
        resources = data.get("resources", {})
        for key, value in (("options", options), ("resources", resources)):
            if not isinstance(value, Mapping):
                raise SweepSpecError(f"{key} must be a table of keys, got {value!r}")
        spec = cls(
            models=data.get("models", ["mnist"]),
            encodings=data.get("encodings", ["cppn"]),
            seeds=data.get("seeds", [0]),
            options=dict(options),
            resources={**RESOURCE_DEFAULTS, **resources},
        )
        spec.check()
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "encodings": list(self.encodings),
            "seeds": list(self.seeds),
            "options": {key: list(values) for key, values in self.options.items()},
            "resources": dict(self.resources),
        }

    def grid(self) -> dict[str, Any]:
        """What decides the runs (everything but the resources): a resumed sweep must have the same."""
        return {key: value for key, value in self.to_dict().items() if key != "resources"}

    # ------------------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse, with a message naming the key and value, anything that would make a run fail to start."""
        for key in ("models", "encodings", "seeds"):
            values = getattr(self, key)
            if not values:
                raise SweepSpecError(f"{key} must name at least one value")
            duplicates = sorted(str(v) for v, count in collections.Counter(map(str, values)).items() if count > 1)
            if duplicates:
                raise SweepSpecError(f"{key} lists {duplicates[0]} twice")
        for model in self.models:
            check_model(model)
        for encoding in self.encodings:
            if encoding not in ENCODINGS:
                raise SweepSpecError(f"unknown encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
        for seed in self.seeds:
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise SweepSpecError(f"seeds must be integers >= 0, got {seed!r}")
        for key, values in self.options.items():
            check_option_key(key)
            if not values:
                raise SweepSpecError(f"options.{key} must name at least one value")
        self._check_resources()
        self._check_points()
        names = collections.Counter(point.name for point in self.points())
        clashes = sorted(name for name, count in names.items() if count > 1)
        if clashes:
            raise SweepSpecError(
                f"two runs of the grid would both be named {clashes[0]!r}: give the models or "
                "option values names that differ"
            )

    def _check_resources(self) -> None:
        unknown = sorted(set(self.resources) - set(RESOURCE_DEFAULTS))
        if unknown:
            raise SweepSpecError(f"unknown key {unknown[0]!r} in resources; expected {', '.join(RESOURCE_DEFAULTS)}")
        try:
            check_real("resources.cpus", self.resources["cpus"], 0.0, low_open=True)
            check_real("resources.gpus", self.resources["gpus"], 0.0)
            check_whole("resources.max_retries", self.resources["max_retries"], 0)
        except ValueError as exc:
            raise SweepSpecError(str(exc)) from None

    def _check_points(self) -> None:
        """Every distinct configuration (seeds and models aside) makes a valid EvolveConfig and encoding."""
        seen = set()
        for encoding, values in itertools.product(self.encodings, self._option_product()):
            point = RunPoint("check", self.models[0], encoding, self.seeds[0], dict(values))
            key = json.dumps([encoding, sorted(values.items())], default=str)
            if key in seen:
                continue
            seen.add(key)
            for name, value in values.items():
                _check_option_value(name, value)
            try:
                config = point.config()
                config.check()
                options = dict(
                    coords=config.coords,
                    color=config.color,
                    max_nodes=config.max_nodes,
                    max_edges=config.max_edges,
                    mutation=dict(config.cppn_mutation),
                )
                if encoding == "direct":
                    options = dict(mutation=dict(config.direct_mutation), halve_every=config.halve_every)
                make_encoding(encoding, 1, 4, 4, **options)
            except (TypeError, ValueError) as exc:
                shown = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "the default options"
                raise SweepSpecError(f"{encoding} runs with {shown}: {exc}") from exc

    # ------------------------------------------------------------------------------------------------------
    def _option_product(self) -> list[dict[str, Any]]:
        keys = list(self.options)
        return [dict(zip(keys, combination)) for combination in itertools.product(*(self.options[k] for k in keys))]

    def varying(self) -> list[str]:
        """The options with more than one value: they name the runs."""
        return [key for key, values in self.options.items() if len(values) > 1]

    def points(self) -> list[RunPoint]:
        """The runs, in a fixed order: model, encoding, option values, then seed."""
        varying = self.varying()
        points = []
        for model, encoding, values, seed in itertools.product(
            self.models, self.encodings, self._option_product(), self.seeds
        ):
            options = [f"{key}{_name_part(values[key])}" for key in varying]
            name = "-".join([model_label(model), encoding, f"seed{seed}", *options])
            group = "-".join([model_label(model), encoding, *options])
            points.append(RunPoint(name, model, encoding, seed, values, group))
        return points


# ---------------------------------------------------------------------------------------------------------------
def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The keys of a .toml or .json specification file, not yet checked."""
    path = Path(path)
    if not path.is_file():
        raise SweepSpecError(f"no sweep specification at {path}")
    kind = path.suffix.lower()
    if kind not in (".toml", ".json"):
        raise SweepSpecError(f"{path}: a sweep specification is a .toml or .json file")
    try:
        text = path.read_text()
        if kind == ".toml":
            import tomllib

            return tomllib.loads(text)
        data = json.loads(text)
    # TOMLDecodeError and JSONDecodeError are ValueErrors; RecursionError: nested too deeply
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SweepSpecError(f"{path} is not valid {kind[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise SweepSpecError(f"{path} must hold a JSON object of keys, got {type(data).__name__}")
    return data


def load_spec(path: str | Path) -> SweepSpec:
    """A specification from a .toml or .json file, checked."""
    return SweepSpec.from_dict(read_spec_file(path), source=str(path))


def parse_option_assignment(text: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` (a command-line option axis) as the key and its values: integers, numbers, true / false,
    none, or text."""
    key, equals, values = text.partition("=")
    key = key.strip()
    if not equals or not key or not values.strip():
        raise SweepSpecError(f"an option is given as KEY=VALUE[,VALUE...], got {text!r}")
    return key, [_parse_value(v.strip()) for v in values.split(",")]


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_seeds(value: Any) -> list[int]:
    """Seeds as a list of integers, an integer, or text like "1-4" or "1,2,7"."""
    if isinstance(value, str):
        seeds: list[int] = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            first, dash, last = part.partition("-")
            try:
                seeds += list(range(int(first), int(last) + 1)) if dash else [int(first)]
            except ValueError:
                raise SweepSpecError(f"seeds must look like 1-4 or 1,2,7, got {value!r}") from None
        if not seeds:
            raise SweepSpecError(f"seeds must look like 1-4 or 1,2,7, got {value!r}")
        return seeds
    return _as_list("seeds", value)


def check_model(model: Any) -> None:
    if not isinstance(model, str) or not model:
        raise SweepSpecError(f"models must be names or paths, got {model!r}")
    if model in BUILTIN_MODELS:
        return
    if not Path(model).is_file():
        raise SweepSpecError(
            f"unknown model {model!r}: expected one of {', '.join(BUILTIN_MODELS)}, or a model file "
            "(.pt2, TorchScript, .json description) that exists"
        )


def check_option_key(key: str) -> None:
    group, dot, name = key.partition(".")
    if dot and group in MUTATION_FIELDS:
        if name not in MUTATION_FIELDS[group]:
            raise SweepSpecError(f"unknown option {key!r}; {group} has {', '.join(MUTATION_FIELDS[group])}")
        return
    if key in AXES:
        raise SweepSpecError(f"{key!r} is an axis of the grid: give it as {key}s, not as an option")
    if dot or key not in OPTION_KEYS:
        raise SweepSpecError(
            f"unknown option {key!r}; expected one of {', '.join(OPTION_KEYS)}, or "
            "cppn_mutation.<field> / direct_mutation.<field>"
        )


def _check_option_value(key: str, value: Any) -> None:
    numbers = value if isinstance(value, (list, tuple)) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):  # NaN and inf, which JSON and TOML allow
        raise SweepSpecError(f"options.{key} must be finite, got {value!r}")
    if key in _INT_OPTIONS and value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise SweepSpecError(f"options.{key} must be an integer, got {value!r}")
    if key == "fast_inference" and value is not None and not isinstance(value, bool):
        raise SweepSpecError(f"options.fast_inference must be true or false, got {value!r}")
    choices = {"coords": tuple(COORDS), "color": tuple(COLORS)}.get(key)
    if choices is not None and value not in choices:
        raise SweepSpecError(f"options.{key} must be one of {', '.join(choices)}, got {value!r}")


def model_label(model: str) -> str:
    """The model's part of a run name: a built-in model's name, or the file's name without its suffix."""
    return model if model in BUILTIN_MODELS else _name_part(Path(model).stem)


def _name_part(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = "x".join(str(v) for v in value)
    return _NAME_UNSAFE.sub("_", str(value)).strip("_") or "_"


def _option_values(key: str, value: Any) -> list[Any]:
    """An option's values: a list is an axis, except for options whose one value is itself a list (image_size,
    activations), which take a list of lists for an axis; image sizes may be written "28x28"."""
    if (
        key in _SEQUENCE_OPTIONS
        and isinstance(value, (list, tuple))
        and not any(isinstance(v, (list, tuple)) for v in value)
    ):
        if not (key == "image_size" and any(isinstance(v, str) for v in value)):
            value = [value]  # one value that is a list: [28, 28], ["sine", "gaussian"]
    values = _as_list(f"options.{key}", value)
    if key == "image_size":
        values = [_parse_size(v) for v in values]
    return [list(v) if isinstance(v, tuple) else v for v in values]


def _parse_size(value: Any) -> Any:
    if isinstance(value, str):
        parts = value.lower().split("x")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            return [int(parts[0]), int(parts[1])]
        raise SweepSpecError(f"options.image_size must look like 28x28 or [28, 28], got {value!r}")
    return value


def _as_list(key: str, value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Mapping):
        raise SweepSpecError(f"{key} must be a value or a list of values, got a table")
    return [value]
