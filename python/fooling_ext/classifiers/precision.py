"""Float32 precision on a GPU: strict IEEE float32, or TF32 in cuDNN convolutions and CUDA matrix products.

PyTorch lets cuDNN convolutions use TF32 by default on GPUs that have it (Ampere and later), which moves a
network's probabilities by about 1e-4 to 1e-3. A fooling image's fitness *is* its probability, so a classifier
scores in strict float32 unless TF32 was measured and chosen (see :mod:`fooling_ext.classifiers.inference`).
The flags are global in PyTorch; :func:`float32_precision` sets them for the duration of a call and restores
them, so code around the classifier keeps its own choice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def _precision_flags(tf32: bool) -> tuple[tuple[object, ...], str, object]:
    """(objects holding the flag, the flag's name, the value that means the precision asked for)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # torch >= 2.9; mixing in the old flags is an error
        return (conv, torch.backends.cuda.matmul), "fp32_precision", "tf32" if tf32 else "ieee"
    return (torch.backends.cudnn, torch.backends.cuda.matmul), "allow_tf32", bool(tf32)


@contextlib.contextmanager
def float32_precision(device: torch.device, *, tf32: bool = False) -> Iterator[None]:
    """Float32 work on `device` in IEEE float32 (tf32=False) or TF32 (tf32=True) for the duration; a no-op
    off CUDA. The global flags are restored afterwards, also when the body raises."""
    if torch.device(device).type != "cuda":
        yield
        return
    holders, name, value = _precision_flags(tf32)
    saved = [getattr(holder, name) for holder in holders]
    for holder in holders:
        setattr(holder, name, value)
    try:
        yield
    finally:
        for holder, old in zip(holders, saved):
            setattr(holder, name, old)


def strict_float32(device: torch.device):
    """IEEE float32 in cuDNN convolutions and CUDA matrix products (no TF32), for the duration (CUDA only)."""
    return float32_precision(device, tf32=False)
