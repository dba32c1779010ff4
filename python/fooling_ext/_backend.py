"""Which backends this build has and can use now, and the checks every call into the core goes through.

The compiled core (`fooling_ext._core`) takes raw pointers; everything that reaches it passes through
`check_tensor` first, so a wrong dtype, shape, layout or device is a ValueError here, never a crash there.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Sequence

import torch

from fooling_ext import _core

BACKENDS = ("cpu", "cuda", "auto")


@functools.lru_cache(maxsize=1)
def _cuda_status() -> tuple[bool, str]:
    """(usable, reason): the CUDA backend can be used when it is compiled in, torch sees a CUDA device
    and the core's own runtime sees one too. The reason says why not, and is cached."""
    info = _core.cuda_info()
    if not info["compiled"]:
        return False, info["error"]
    if not torch.cuda.is_available():
        return False, "torch reports no CUDA device (torch.cuda.is_available() is False)"
    if not info["devices"]:
        return False, f"the core's CUDA runtime sees no device: {info['error']}"
    return True, ""


def cuda_available() -> bool:
    """True when the CUDA backend can be used in this process."""
    return _cuda_status()[0]


def build_info() -> dict[str, Any]:
    """What fooling_ext was built with and what it can use now."""
    info = _core.cuda_info()
    usable, reason = _cuda_status()
    return {
        "version": _core.__version__,
        "cpu_threads": _core.num_threads(),
        "cuda_compiled": info["compiled"],
        "cuda_runtime_version": info["runtime_version"],
        "cuda_driver_version": info["driver_version"],
        "cuda_architectures": info["architectures"],
        "cuda_devices": info["devices"],
        "cuda_usable": usable,
        "cuda_unusable_reason": reason,
        "torch_version": torch.__version__,
        "torch_cuda": torch.version.cuda,
    }


def resolve_backend(backend: str = "auto") -> str:
    """Map "cpu" / "cuda" / "auto" to the backend to use; "cuda" when it cannot be used is an error that
    says why."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cpu":
        return "cpu"
    usable, reason = _cuda_status()
    if backend == "cuda" and not usable:
        raise ValueError(f"the CUDA backend was requested but cannot be used: {reason}")
    if backend == "auto" and os.environ.get("FOOLING_BACKEND") in ("cpu", "cuda"):
        return resolve_backend(os.environ["FOOLING_BACKEND"])
    return "cuda" if usable else "cpu"


def backend_device(backend: str) -> torch.device:
    """The torch device that holds a backend's data."""
    return torch.device("cuda", torch.cuda.current_device()) if backend == "cuda" else torch.device("cpu")


def check_tensor(
    t: Any,
    name: str,
    dtype: torch.dtype,
    shape: Sequence[int | None] | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Checks that t is a contiguous tensor of the given dtype, shape (None = any size on that axis) and
    device, and returns it. Raises ValueError naming the field and what was expected."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {t.dtype}")
    if shape is not None:
        if t.dim() != len(shape) or any(s is not None and s != n for s, n in zip(shape, t.shape)):
            want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            raise ValueError(f"{name} must have shape {want}, got {list(t.shape)}")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device}, expected {device}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous")
    return t


def device_of(backend_or_device: str | torch.device) -> torch.device:
    if isinstance(backend_or_device, torch.device):
        return backend_or_device
    if backend_or_device in BACKENDS:
        return backend_device(resolve_backend(backend_or_device))
    return torch.device(backend_or_device)


def cuda_stream_handle(device: torch.device) -> int:
    """Raw handle of the current torch CUDA stream on `device` (what the core launches on)."""
    return torch.cuda.current_stream(device).cuda_stream
