"""Many MAP-Elites runs as Ray tasks: a grid of models x encodings x option values x seeds (:class:`SweepSpec`),
run locally or on a cluster by :func:`run_sweep` into one sweep folder, resumable, with a summary over runs.
Ray is imported only when something runs on it (``pip install "fooling-ext[ray]"``)."""

from fooling_ext.sweep.folder import SWEEP_FORMAT, SWEEP_VERSION, SweepFolder
from fooling_ext.sweep.ray_runner import (
    RayConnectionError,
    RayMap,
    RayUnavailableError,
    RayWorkerLost,
    local_map,
    ray_available,
    ray_session,
)
from fooling_ext.sweep.run import SweepProgress, SweepResult, run_point, run_sweep
from fooling_ext.sweep.spec import RunPoint, SweepSpec, SweepSpecError, load_spec, parse_seeds, read_spec_file
from fooling_ext.sweep.summary import format_summary

__all__ = [
    "SWEEP_FORMAT",
    "SWEEP_VERSION",
    "RayConnectionError",
    "RayMap",
    "RayUnavailableError",
    "RayWorkerLost",
    "RunPoint",
    "SweepFolder",
    "SweepProgress",
    "SweepResult",
    "SweepSpec",
    "SweepSpecError",
    "format_summary",
    "load_spec",
    "local_map",
    "parse_seeds",
    "ray_available",
    "ray_session",
    "read_spec_file",
    "run_point",
    "run_sweep",
]
