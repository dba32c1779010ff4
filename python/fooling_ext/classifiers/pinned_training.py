"""LeNet training with PyTorch's CPU code paths pinned, so that the weights are the same bits on any x86-64 CPU.

PyTorch picks its CPU kernels by instruction set when it starts: ATen's vectorised kernels (AVX2 or AVX-512),
MKL's BLAS and oneDNN's convolutions each have one code path per instruction set, and the paths round floats
differently. The same seed therefore trains other weights on an AVX-512 CPU than on an AVX2 one. These choices
are read from the environment when torch is imported, so :func:`train_lenet_pinned` runs the training in a
fresh Python process whose environment pins every one of them to AVX2 (which every x86-64 CPU from 2013 on has),
with a fixed thread count and torch's deterministic algorithms. The process refuses to train when the CPU
cannot run the pinned paths.

The child process is started as ``python -c "...; run_child()" REQUEST.json`` and writes the weights and metrics
into the request's folder; the parent reads them back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PINNED_ISA = "AVX2"

# Environment variables that choose CPU code paths or thread counts; the pinned process sets each of them.
_CPU_PATH_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MKL_DYNAMIC",
    "OMP_DYNAMIC",
)


def pinned_environment(threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with every CPU code path pinned to AVX2 and `threads` threads.

    ATEN_CPU_CAPABILITY picks ATen's kernels, MKL_CBWR MKL's code path (its "conditional numerical
    reproducibility"), ONEDNN_MAX_CPU_ISA the widest oneDNN kernels; the thread counts are fixed and not
    adjusted at run time.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "ATEN_CPU_CAPABILITY": PINNED_ISA.lower(),
            "MKL_CBWR": PINNED_ISA,
            "MKL_ENABLE_INSTRUCTIONS": PINNED_ISA,
            "ONEDNN_MAX_CPU_ISA": PINNED_ISA,
            "DNNL_MAX_CPU_ISA": PINNED_ISA,
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "MKL_DYNAMIC": "FALSE",
            "OMP_DYNAMIC": "FALSE",
        }
    )
    return env


def train_lenet_pinned(
    data: str | Path | None = None,
    *,
    limit_train: int | None = None,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    threads: int,
    progress: bool = True,
    env: Mapping[str, str] | None = None,
):
    """Train as :func:`~fooling_ext.classifiers.training.train_lenet` does, in a process with pinned CPU paths.

    data: MNIST as :func:`~fooling_ext.classifiers.datasets.mnist.load_mnist` reads it (None: the copy in the
    package); limit_train keeps the first that many training digits. env: the environment the pinning starts
    from (default: this process's). Returns (LeNet in eval mode, metrics), the metrics naming the pinned paths.
    Raises RuntimeError with the child's message when the training process fails.
    """
    from fooling_ext.classifiers.models import load_lenet

    if limit_train is not None and limit_train < 1:
        raise ValueError(f"limit_train must be >= 1, got {limit_train}")
    child_env = pinned_environment(threads, env)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder that holds fooling_ext
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, child_env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="fooling-train-") as folder:
        request = {
            "data": None if data is None else str(data),
            "limit_train": limit_train,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "threads": threads,
            "progress": progress,
            "folder": folder,
        }
        request_path = Path(folder) / "request.json"
        request_path.write_text(json.dumps(request))
        command = [
            sys.executable,
            "-c",
            "from fooling_ext.classifiers.pinned_training import run_child; run_child()",
            str(request_path),
        ]
        done = subprocess.run(
            command, env=child_env, stdout=subprocess.PIPE, stderr=None if progress else subprocess.PIPE, text=True
        )
        if done.returncode != 0:
            detail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            raise RuntimeError(f"the training process failed: {detail[0]}")
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        model = load_lenet(Path(folder) / "weights.pt")
    return model, metrics


def run_child() -> None:
    """The pinned training process: checks that the CPU paths are the pinned ones, trains, writes the results."""
    request = json.loads(Path(sys.argv[1]).read_text())
    try:
        import dataclasses

        import torch

        capability = torch.backends.cpu.get_cpu_capability()
        if capability != PINNED_ISA:
            raise RuntimeError(
                f"this CPU runs PyTorch's {capability} kernels, not {PINNED_ISA}: the pinned training "
                f"needs an x86-64 CPU with {PINNED_ISA}; --cpu-paths native trains without pinning"
            )
        from fooling_ext.classifiers.datasets.mnist import load_mnist
        from fooling_ext.classifiers.training import train_lenet

        data = load_mnist(request["data"])
        if request["limit_train"] is not None:
            limit = request["limit_train"]
            data = dataclasses.replace(data, x_train=data.x_train[:limit], y_train=data.y_train[:limit])
        model, metrics = train_lenet(
            data,
            epochs=request["epochs"],
            batch_size=request["batch_size"],
            lr=request["lr"],
            seed=request["seed"],
            threads=request["threads"],
            progress=request["progress"],
        )
        metrics["cpu_paths"] = cpu_paths()
        folder = Path(request["folder"])
        torch.save(model.state_dict(), folder / "weights.pt")
        (folder / "metrics.json").write_text(json.dumps(metrics))
    except Exception as exc:  # one line for the parent to report
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


def cpu_paths() -> dict[str, Any]:
    """The code paths this process's torch runs: ATen's capability, oneDNN's use, and the pinning variables."""
    import torch

    return {
        "aten": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.enabled,
        **{name: os.environ[name] for name in _CPU_PATH_VARIABLES if name in os.environ},
    }
