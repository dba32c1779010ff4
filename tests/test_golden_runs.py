"""Short MNIST runs whose archives were recorded once: any change of what a run computes shows up here.

The digests were taken from the archive.npz of each command below. An .npz file's own bytes carry zip
timestamps, so the digest covers what the file holds: every array's name, dtype, shape and bytes, and the
metadata JSON without the two version strings (fooling_ext and torch), which change between releases without
changing what a run computes.

LeNet's float32 outputs differ in their last bit between CPU instruction sets (PyTorch, oneDNN and MKL's sgemm
pick AVX2 or AVX-512 kernels at run time), and a direct-encoding run follows such a bit into another elite. So the
runs use the portable baseline kernels on every x86-64 machine: ATEN_CPU_CAPABILITY=default,
DNNL_MAX_CPU_ISA=SSE41 and MKL_CBWR=COMPATIBLE, set before torch is imported, in a process of its own, on one
thread (MKL's compatible path sums in another order on 2 threads). Without MKL_CBWR the direct run's arrays
were one digest on an AVX2 machine and another on an AVX-512 FP16 one (Sapphire Rapids).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

# encoding -> (digest of the arrays, digest of the metadata). The metadata digests changed with the recorded
# configuration (new settings such as the capacity and the add-connection rule, settings of the other encoding no longer
# recorded), the direct arrays not (but see below): when the configuration key run.pixel_mutation became
# run.direct_mutation (with that key renamed back, the metadata gives the first digests: c3030051... for cppn,
# 02fa428a... for direct), when the archive format went to version 2, which adds the arrays' checksum (with "version": 1
# and without the checksum, the metadata gives the second digests: 5797b884... for cppn, 21189e6c... for direct), when
# run.quantize and encoding.quantize were added (without them, the third: d7c2fcb1... for cppn, f5feebad... for direct),
# and when run.fast_inference began to record the value used, not None for "the default" (with None, the fourth:
# 17906a7d... for cppn, e9ab6fee... for direct). The direct arrays were 01526124... until MKL's kernels were pinned too
# (MKL_CBWR, one thread: the same code, its sgemm no longer chosen by the CPU). The commands pass the float pixels that
# were the default then (--no-quantize; --color hsl for CPPNs) and plain PyTorch (--no-fast-inference). The cppn arrays
# changed once, when add connection became the original code's rule by default: the same command with --add-edge
# rejection still gives the arrays recorded before (5405a993...; metadata 66c00ea1...).
RECORDED = {
    "cppn": (
        "1a10ac7e67488909111b12ecd1fc5a694204020547d224db64a26618670eba14",
        "2a7fe378d49359de4409f92ca3f4102f512866910912d28625fe5fcca4061aa8",
    ),
    "direct": (
        "7446704df38a9cc3212cec2b0dbd19aaad431bcdc165fed2de48c8941824f845",
        "0dc7cd724f9b2912a58cfab5569c48a04a9aa2ff598f00a978fddde0014526f5",
    ),
}
PORTABLE_KERNELS = {
    "ATEN_CPU_CAPABILITY": "default",
    "DNNL_MAX_CPU_ISA": "SSE41",
    "MKL_CBWR": "COMPATIBLE",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def archive_digests(path) -> tuple[str, str]:
    arrays = hashlib.sha256()
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(bytes(archive["meta"]).decode())
        for key in sorted(archive.files):
            if key == "meta":
                continue
            value = archive[key]
            arrays.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
            arrays.update(np.ascontiguousarray(value).tobytes())
    for key in ("fooling_ext", "torch"):
        meta["config"].pop(key)
    meta.pop("checksum", None)  # a digest of the arrays, which the first digest covers
    meta_digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
    return arrays.hexdigest(), meta_digest


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="digests recorded with x86-64 kernels")
@pytest.mark.parametrize("encoding", sorted(RECORDED))
def test_short_mnist_run_gives_the_recorded_archive(tmp_path, encoding):
    command = [
        sys.executable,
        "-m",
        "fooling_ext",
        "evolve",
        "--model",
        "mnist",
        "--encoding",
        encoding,
        "--generations",
        "20",
        "--batch",
        "100",
        "--seed",
        "7",
        "--backend",
        "cpu",
        "--no-progress",
        "--no-quantize",
        "--no-fast-inference",  # the defaults then
        *(["--color", "hsl"] if encoding == "cppn" else []),
        "--out",
        str(tmp_path / "run"),
    ]
    done = subprocess.run(command, env={**os.environ, **PORTABLE_KERNELS}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert archive_digests(tmp_path / "run" / "archive.npz") == RECORDED[encoding]
