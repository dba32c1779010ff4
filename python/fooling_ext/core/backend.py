"""Where work runs: the one place that resolves a device and routes a call into the CPU or the CUDA backend.

Devices: "cpu", "cuda", "cuda:N", "auto" or a torch.device. "auto" means the CUDA backend when it can be used
(compiled in, and both torch and the core's own runtime see a device), else the CPU; the environment variable
FOOLING_BACKEND=cpu|cuda overrides what "auto" picks. The same rule serves populations, classifiers and runs.

Every kernel of the compiled core exists twice, ``<op>_cpu`` and ``<op>_cuda``; :func:`launch` calls the one
that owns the data's device, adding what the CUDA entry point needs besides the shared arguments: a workspace
for the genomes of one launch, a device flag for selection's range check, and torch's current stream.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from fooling_ext import _core

BACKENDS = ("cpu", "cuda", "auto")
"""The backends a call can ask for (:func:`resolve_device`); "auto" is CUDA where it can be used, else the CPU."""

# Genomes handled per CUDA launch of the kernels that need a workspace: bounds device memory (about 30 KB a
# genome for rendering and 2 KB for mutation at the default capacities).
CUDA_CHUNK = 4096


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


def resolve_device(device: str | torch.device = "auto", *, core: bool = True) -> torch.device:
    """The torch device that `device` names, with an index for CUDA; "auto" as the module docstring says.

    A CUDA device that cannot be used is a ValueError that says why. With `core` (the default) that includes
    the core's CUDA backend; ``core=False`` asks only that torch can use the device (a classifier on its
    own runs on any device torch supports).
    """
    if isinstance(device, str) and device == "auto":
        override = os.environ.get("FOOLING_BACKEND")
        if override in ("cpu", "cuda"):
            return resolve_device(override, core=core)
        if override not in (None, ""):
            raise ValueError(f"FOOLING_BACKEND must be 'cpu' or 'cuda' (or unset), got {override!r}")
        return resolve_device("cuda" if cuda_available() else "cpu", core=core)
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'") from exc
    if resolved.type == "cpu":
        return torch.device("cpu")
    if resolved.type != "cuda":
        raise ValueError(f"no backend runs on device {resolved}; use 'cpu', 'cuda', 'cuda:N' or 'auto'")
    if core and not cuda_available():
        raise ValueError(f"the CUDA backend was requested but cannot be used: {_cuda_status()[1]}")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} requested but CUDA is not available (torch {torch.__version__} built "
            f"{'with' if torch.version.cuda else 'without'} CUDA; no usable GPU or driver); use 'cpu' or 'auto'"
        )
    index = torch.cuda.current_device() if resolved.index is None else resolved.index
    if index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return torch.device("cuda", index)


def resolve_backend(backend: str = "auto") -> str:
    """ "cpu" / "cuda" / "auto" -> the backend to use, "cpu" or "cuda" (see :func:`resolve_device`)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return resolve_device(backend).type


@dataclass(frozen=True)
class _Kernel:
    """What a CUDA entry point takes after the arguments it shares with its CPU twin."""

    workspace_ints: Callable[[int, int], int] | None = None  # int32 per genome, from (max_nodes, max_edges)
    range_flag: bool = False  # writes the first out-of-range index (or -1) to an int64 on the device


_KERNELS = {
    "render": _Kernel(workspace_ints=_core.program_workspace_ints),
    "mutate_cppn": _Kernel(workspace_ints=_core.mutation_workspace_ints),
    "select_cppn": _Kernel(range_flag=True),
    "init_pixels": _Kernel(),
    "mutate_pixels": _Kernel(),
    "select_rows": _Kernel(range_flag=True),
}


def launch(op: str, device: torch.device, *args: Any, genomes: Any = None, read_flag: bool = True) -> Any:
    """Run the core's kernel `op` on the backend that owns `device`; `args` are the arguments both backends
    share (views, pointers, counts, parameters).

    Returns what the CPU kernel returns (an invalid-genome count, the first out-of-range index, or None). On
    CUDA the work is queued on torch's current stream and None is returned, except for selection, which
    returns the first out-of-range index read back from the device (a wait), or -1 without `read_flag`.
    `genomes`: the CPPN population whose capacities size the CUDA workspace.
    """
    kernel = _KERNELS[op]
    if device.type == "cpu":
        return getattr(_core, f"{op}_cpu")(*args)
    if device.type != "cuda":
        raise ValueError(f"no backend runs {op} on device {device}")
    resolve_device(device)  # raises, saying why, when the CUDA backend cannot be used
    extra: list[int] = []
    if kernel.workspace_ints is not None:
        rows = min(max(genomes.batch, 1), CUDA_CHUNK)
        workspace = torch.empty(
            rows * kernel.workspace_ints(genomes.max_nodes, genomes.max_edges), dtype=torch.int32, device=device
        )
        extra += [workspace.data_ptr(), rows]
    if kernel.range_flag:
        flag = torch.empty(1, dtype=torch.int64, device=device)
        extra.append(flag.data_ptr())
    with torch.cuda.device(device):
        getattr(_core, f"{op}_cuda")(*args, *extra, torch.cuda.current_stream(device).cuda_stream)
    if kernel.range_flag:
        return int(flag.item()) if read_flag else -1
    return None
