"""What a run folder records, checked before it is used: the folder errors, a JSON file that must hold an object,
a configuration's shape, a checkpoint's agreement with its metrics, and the differences between two
configurations."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CHECKPOINT_MAGIC = b"FOOLING_EXT CHECKPOINT\n"  # a checkpoint's first bytes (runs/folder.py writes it)


class RunFolderError(ValueError):
    """The output folder cannot be used as asked (it holds another run, nothing to resume, ...)."""


class RunFolderBusy(RunFolderError):
    """Another process holds the folder's lock."""


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}

# The sections of a recorded configuration (config.json): each, where present, is a JSON object.
CONFIG_SECTIONS = ("run", "classifier", "encoding", "gradient", "experiment", "inference")


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in `path`; an unreadable file, or one holding another kind of value (an array, a number),
    is a RunFolderError naming the file and `what` it should be."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # Recursion: nested too deeply
        raise RunFolderError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RunFolderError(
            f"{path} is not {what}: it holds a JSON {_JSON_KINDS.get(type(data), 'value')}, not an object"
        )
    return data


def check_config_shape(config: Mapping[str, Any], path: Path | str) -> None:
    """A RunFolderError naming `path` where a recorded configuration's sections or the fields readers rely on
    have the wrong JSON type (a section that is not an object, class names that are not a list of strings...)."""

    def wrong(field: str, expected: str, value: Any) -> RunFolderError:
        return RunFolderError(f"{path} is damaged: {field} must be {expected}, got {json.dumps(value)[:80]}")

    for section in CONFIG_SECTIONS:
        if section in config and not isinstance(config[section], dict):
            raise wrong(section, "an object", config[section])
    for section, field in (("run", "model"), ("run", "encoding"), ("classifier", "name")):
        value = config.get(section, {}).get(field)
        if value is not None and not isinstance(value, str):
            raise wrong(f"{section}.{field}", "a string", value)
    classifier = config.get("classifier", {})
    names = classifier.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise wrong("classifier.class_names", "a list of strings", names)
    if "spec" in classifier and not isinstance(classifier["spec"], dict):
        raise wrong("classifier.spec", "an object", classifier["spec"])
    models = config.get("run", {}).get("models")  # a run against several models
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise wrong("run.models", "a list of strings", models)
    members = classifier.get("models")
    if members is not None and (
        not isinstance(members, list)
        or not all(
            isinstance(m, dict) and isinstance(m.get("spec"), dict) and isinstance(m.get("class_names"), list)
            for m in members
        )
    ):
        raise wrong("classifier.models", "a list of model records (each with a spec and class_names)", members)


def check_checkpoint_agrees(state: dict[str, Any], batch: int, path: Path) -> None:
    """Refuse a checkpoint whose generation, metrics and evaluations disagree (one row per generation, numbered
    from 0, `batch` evaluations each): resuming it would skip generations or rewrite the outputs of a run that
    did not happen."""
    generation, rows, evaluations = state["generation"], state["metrics"], state.get("evaluations")
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise RunFolderError(f"checkpoint {path} says generation {generation!r}, not a whole number >= 0")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise RunFolderError(f"checkpoint {path}: its metrics are not a list of rows")
    if len(rows) != generation:
        raise RunFolderError(
            f"checkpoint {path} disagrees with its metrics: it says generation {generation} but "
            f"holds {len(rows)} metric rows"
        )
    for i, row in enumerate(rows):
        if row.get("generation") != i:
            raise RunFolderError(
                f"checkpoint {path}: metric row {i} is of generation {row.get('generation')!r}, "
                f"expected {i} (generations are consecutive from 0)"
            )
        if "evaluations" in row and row["evaluations"] != (i + 1) * batch:
            raise RunFolderError(
                f"checkpoint {path}: metric row {i} says {row['evaluations']!r} evaluations, "
                f"expected {(i + 1) * batch} ({i + 1} generations of {batch} children)"
            )
    if evaluations is not None and evaluations != generation * batch:
        raise RunFolderError(
            f"checkpoint {path} disagrees with itself: it says {evaluations!r} evaluations after "
            f"generation {generation}, expected {generation * batch} ({batch} per generation)"
        )


def config_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], ignore: Iterable[str] = (), prefix: str = ""
) -> list[str]:
    """Dotted keys whose values differ between two nested configurations."""
    ignore = set(ignore)
    diffs = []
    for key in sorted(set(old) | set(new)):
        dotted = f"{prefix}{key}"
        if dotted in ignore:
            continue
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs.extend(config_differences(a, b, ignore, prefix=f"{dotted}."))
        elif _as_json(a) != _as_json(b):  # a tuple in memory is the list config.json records
            diffs.append(f"{dotted}: {a!r} -> {b!r}")
    return diffs


def _as_json(value: Any) -> Any:
    """`value` with its tuples as lists, at any depth, as a JSON round trip gives it back."""
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _as_json(v) for k, v in value.items()}
    return value
