"""Model files: which of the accepted formats a file is, and loading it as an ``nn.Module``.

Formats are told apart by the records inside their zip archive before any loader runs, so a file that is not
a model gets one clear error naming what is accepted, not a loader's traceback. A ``torch.save`` archive is
only read as a LeNet state_dict with ``weights_only=True``: unpickling arbitrary objects can run code. A
``torch.export`` archive is read into memory, checked part by part (:mod:`.export_check`) and loaded from those
bytes. A TorchScript module is code: it is loaded only where the caller allows code (``allow_code``), which
the command line does for the file a user names with ``--model`` and never for one a run folder records.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from fooling_ext._files import require_regular_file
from fooling_ext.classifiers.classifier import exported_input_shape, first_line, format_shape
from fooling_ext.classifiers.export_check import UnsafeModelFile, check_export_archive
from fooling_ext.classifiers.models import load_lenet

ACCEPTED_FORMATS = (
    "a torch.export program (torch.export.save, usually .pt2), a TorchScript module (torch.jit.save), "
    "a LeNet state_dict from `fooling train-mnist`, or a JSON model description (.json)"
)


def load_model_file(
    path: Path, device: torch.device, *, allow_code: bool = True, why_not: str = ""
) -> tuple[nn.Module, str, str]:
    """(module, a sentence saying what it is, its kind: "export", "torchscript" or "lenet") of a model file,
    on `device`, parameters frozen. Anything else is a ValueError naming the file and the accepted formats.
    `allow_code` False refuses a TorchScript module (UnsafeModelFile, ending with `why_not`)."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder; a model must be one file: {ACCEPTED_FORMATS}")
    require_regular_file(path, "model file")
    kind = archive_kind(path)
    if kind == "export":
        module, description = _load_exported(path, device), f"torch.export program {path.name}"
    elif kind == "torchscript" and not allow_code:
        raise UnsafeModelFile(f"{path} is a TorchScript module, which is code that runs as it loads; {why_not}")
    elif kind == "torchscript":
        module, description = _load_torchscript(path, device), f"TorchScript module {path.name}"
    elif kind == "pickle":
        module, description, kind = _load_lenet_state_dict(path), f"LeNet with weights {path.name}", "lenet"
    else:
        raise ValueError(f"{path} is not a model file; accepted: {ACCEPTED_FORMATS}")
    freeze_parameters(module)
    return module, description, kind


def freeze_parameters(module: nn.Module) -> None:
    """Gradient ascent optimises only the image; models we load need no parameter gradients."""
    for parameter in module.parameters():  # ScriptModules do not support requires_grad_()
        parameter.requires_grad_(False)


def archive_kind(path: Path) -> str | None:
    """Tell the formats apart by the records inside their zip archive, before any loader logs its own failure."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            records = {name.split("/", 1)[-1] for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError):
        return None
    if "archive_format" in records:
        return "export"
    if "constants.pkl" in records:
        return "torchscript"
    if "data.pkl" in records:
        return "pickle"
    return None


def _load_exported(path: Path, device: torch.device) -> nn.Module:
    data = path.read_bytes()
    try:
        check_export_archive(path, data)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: cannot load as a torch.export program: {first_line(exc)}") from exc
    try:
        program = torch.export.load(io.BytesIO(data))  # the bytes checked, not the file again
    except Exception as exc:
        raise ValueError(f"{path}: cannot load as a torch.export program: {first_line(exc)}") from exc
    if device.type != "cpu":
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
    module = program.module()
    shape = exported_input_shape(module)
    if shape is not None and shape[0] is not None:
        raise ValueError(
            f"{path}: the program was exported for a fixed batch of {shape[0]} (input shape {format_shape(shape)}); "
            "export it with "
            "a dynamic batch dimension, e.g. torch.export.export(model, (x,), "
            "dynamic_shapes=({0: torch.export.Dim('batch')},)) with an example batch x of at least 2 images"
        )
    return module


def _load_torchscript(path: Path, device: torch.device) -> nn.Module:
    try:
        with warnings.catch_warnings():  # torch.jit warns on every call; the user is told once below, in our words
            warnings.filterwarnings("ignore", message=r".*torch\.jit", category=DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:
        raise ValueError(f"{path}: cannot load as a TorchScript module: {first_line(exc)}") from exc
    warnings.warn(
        f"{path} is a TorchScript module; TorchScript is deprecated in PyTorch. It works here, but consider saving "
        "the model with torch.export.save (a .pt2 file) instead",
        FutureWarning,
        stacklevel=5,
    )
    return module


def _load_lenet_state_dict(path: Path) -> nn.Module:
    """A torch.save archive is only accepted as a LeNet state_dict, loaded without unpickling arbitrary objects."""
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{path} is a torch.save archive of a Python object (a whole pickled module?), which is not loaded "
            f"because unpickling can run arbitrary code; accepted: {ACCEPTED_FORMATS}"
        ) from exc
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{path} holds a {type(state_dict).__name__}, not a model; accepted: {ACCEPTED_FORMATS}")
    try:
        return load_lenet(path)
    except ValueError as exc:
        raise ValueError(
            f"{path} holds a state_dict (weights without the network) that does not fit LeNet; build your "
            "nn.Module, load the weights into it and pass the module, or save the model with torch.export.save. "
            f"Accepted: {ACCEPTED_FORMATS}"
        ) from exc
