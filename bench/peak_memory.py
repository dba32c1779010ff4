"""Peak memory of rendering the colour workload (400 CPPNs, 3 x 256 x 256), beyond the output images.

Run in a fresh process, so that nothing else this process did hides the render's own peak:

    PYTHONPATH=python python bench/peak_memory.py [--json]

CPU backend: the peak resident set (VmHWM, reset through /proc/self/clear_refs just before the call) minus
the resident set before the call minus the output tensor. CUDA backend (when usable): torch's peak
allocated device memory during the call minus what was allocated before minus the output. The target is an
overhead of at most 64 MB. Exits with status 1 when a backend exceeds it.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

import torch

import fooling_ext as fx
from fooling_ext.core.backend import cuda_available

sys.path.insert(0, str(Path(__file__).parent))
from populations import COLOUR_256

LIMIT_BYTES = 64 * 10**6
MB = 10**6


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def cpu_extra_bytes(pop, side: int) -> dict:
    fx.render(pop[:1], side)  # start the core's worker threads outside the measured call
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM to the current resident set
    before = _status_bytes("VmRSS")
    images = fx.render(pop, side)
    peak = _status_bytes("VmHWM")
    return {
        "backend": "cpu",
        "peak_bytes": peak - before,
        "output_bytes": images.nbytes,
        "extra_bytes": peak - before - images.nbytes,
    }


def cuda_extra_bytes(pop, side: int) -> dict:
    pop = pop.to("cuda")
    fx.render(pop[:1], side)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    images = fx.render(pop, side)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    return {
        "backend": "cuda",
        "peak_bytes": peak - before,
        "output_bytes": images.nbytes,
        "extra_bytes": peak - before - images.nbytes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    pop = COLOUR_256.population()
    backends = [cpu_extra_bytes(pop, COLOUR_256.side)]
    if cuda_available():
        backends.append(cuda_extra_bytes(pop, COLOUR_256.side))
    report = {"workload": COLOUR_256.name, "limit_bytes": LIMIT_BYTES, "backends": backends}
    if args.json:
        print(json.dumps(report))
    else:
        for b in backends:
            print(
                f"{b['backend']}: output {b['output_bytes'] / MB:.1f} MB, peak increase "
                f"{b['peak_bytes'] / MB:.1f} MB, beyond the output {b['extra_bytes'] / MB:.1f} MB "
                f"(limit {LIMIT_BYTES / MB:.0f} MB)"
            )
    return 0 if all(b["extra_bytes"] <= LIMIT_BYTES for b in backends) else 1


if __name__ == "__main__":
    sys.exit(main())
