"""The networks the package ships or knows how to load: the paper's MNIST LeNet and the ImageNet stand-in."""

from __future__ import annotations

from pathlib import Path

import torch

from fooling_ext.classifiers.models.lenet import LeNet

# Weights made by `fooling train-mnist` with its default options (see docs/classifiers.md), a state_dict.
MNIST_LENET_WEIGHTS = Path(__file__).resolve().parent / "mnist_lenet.pt"


def load_lenet(path: str | Path = MNIST_LENET_WEIGHTS, *, num_classes: int | None = None) -> LeNet:
    """A LeNet in eval mode with weights from a state_dict file (default: the shipped MNIST weights).

    ``num_classes`` defaults to the size of the file's last layer, so 11-class fooling-class networks load too.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LeNet weights not found: {path}")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a LeNet state_dict saved with torch.save: {exc}") from exc
    if not isinstance(state_dict, dict) or "classifier.3.weight" not in state_dict:
        raise ValueError(f"{path}: not a LeNet state_dict (no 'classifier.3.weight' entry)")
    if num_classes is None:
        num_classes = state_dict["classifier.3.weight"].shape[0]
    model = LeNet(num_classes)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit LeNet(num_classes={num_classes}): {exc}") from exc
    return model.eval()


__all__ = ["LeNet", "MNIST_LENET_WEIGHTS", "load_lenet"]
