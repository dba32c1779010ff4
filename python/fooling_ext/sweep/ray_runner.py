"""Ray, imported only when something runs on it: the check that it is installed, a session that joins a cluster or
starts a local one, and the runners that map a function over many calls as Ray tasks (one run of a sweep, or a
fooling-class experiment's evolution runs).

Every task caps its threads (torch's and the core's) to the CPUs it was given, so runs that share a machine do not
oversubscribe it. A task whose worker process dies (killed, out of memory, its node lost) is started again by Ray
up to ``max_retries`` times; a task that raises is not, since it would raise again.

No task is ever cancelled with ``ray.cancel``: in Ray 2.60 a cancel that crosses the reply of a task that is
finishing (or retried) fails a check in the driver's task manager ("Tried to complete task that was not pending",
ray-project/ray#54846), which aborts the whole process with a C++ stack trace. A runner that stops early leaves
the tasks it no longer wants to end on their own: a local Ray this module started is shut down with its workers,
and a sweep's runs stop cooperatively, at the end of their generation (sweep/run.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

INSTALL_HINT = 'pip install "fooling-ext[ray]"'
LOCAL_OBJECT_STORE_BYTES = 200 * 1024 * 1024  # a local Ray's object store: sweeps pass configurations, not images


class RayUnavailableError(ImportError):
    """Ray is not installed; the message says how to install it."""


class RayConnectionError(ConnectionError):
    """The Ray cluster at the given address cannot be joined."""


class RayWorkerLost(RuntimeError):
    """A task's worker died (killed, out of memory, its node lost) more often than its retries allow."""


WORKER_LOST_ERRORS = (
    "WorkerCrashedError",
    "NodeDiedError",
    "OutOfMemoryError",
    "ObjectLostError",
    "OwnerDiedError",
    "LocalRayletDiedError",
    "TaskUnschedulableError",
)


def task_result(ray, ref, max_retries: int) -> Any:
    """``ray.get(ref)``, with the task's own exception raised as it would be in this process (not Ray's wrapper
    and its remote traceback), and a worker lost too often as one :class:`RayWorkerLost` line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise
    except ray.exceptions.RayError as exc:
        name = type(exc).__name__
        if name in WORKER_LOST_ERRORS:
            raise RayWorkerLost(
                f"a Ray task's worker was lost ({name}) more often than max_retries={max_retries} allows"
            ) from None
        raise


class _TokenAuthNotice(logging.Filter):
    """Drops the warning Ray (2.60) logs on every start of a local Ray, that it turned on its default token
    authentication: runs keep that default, and the notice is not about them. Ray's other messages pass.
    (Setting RAY_AUTH_MODE=token would silence it too, but only where Ray is not imported yet.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


_TOKEN_AUTH_NOTICE = _TokenAuthNotice()
_RAY_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


def drop_token_auth_notice() -> None:
    """Filter Ray's token-authentication notice out of its log (a filter is added once, however often)."""
    logging.getLogger(_RAY_TOKEN_LOGGER).addFilter(_TOKEN_AUTH_NOTICE)


def ray_available() -> bool:
    """Whether Ray can be imported (the `ray` extra is installed)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def require_ray():
    """The ray module, or an error naming the extra that installs it."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(f"Ray is not installed; sweeps run on Ray: {INSTALL_HINT}") from exc
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray, connected: a Ray already initialised in this process is used as it is; otherwise this joins the
    cluster at ``address`` ("auto" finds a local one started by ``ray start``) or starts a local Ray with
    ``num_cpus`` CPUs (default: all), and disconnects at the end."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    drop_token_auth_notice()
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
    if address:
        options["address"] = address
    else:
        options.update(num_cpus=num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    try:
        ray.init(**options)
    except Exception as exc:
        if not address:
            raise
        raise RayConnectionError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def task_threads(cpus: float) -> int:
    """The threads a task given `cpus` CPUs runs with."""
    return max(1, math.floor(cpus))


def limit_threads(threads: int) -> None:
    """Cap torch's and the core's CPU threads in this process (a Ray worker runs one task at a time)."""
    import torch

    from fooling_ext import _core

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _core.set_num_threads(threads)


def _call_with_threads(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    limit_threads(threads)
    return fn(*args)


def task_options(cpus: float, gpus: float, max_retries: int, name: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "num_cpus": cpus,
        "num_gpus": gpus,
        "max_retries": max_retries,
        "retry_exceptions": False,
    }
    if name:
        options["name"] = name
    return options


class RayMap:
    """``runner(fn, calls, common=())`` -> the results of ``fn(*common, *call)`` for each call, in order, computed
    as Ray tasks of ``cpus`` CPUs and ``gpus`` GPUs each. ``common`` is sent to the object store once.

    The runner of :func:`fooling_ext.experiments.mnist_fooling_class.run_retrain`'s evolution runs (its
    ``map_runs``); ``fn`` must be importable by the workers (a module-level function of the package)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        cpus: float = 1.0,
        gpus: float = 0.0,
        max_retries: int = 3,
        num_cpus: int | None = None,
    ):
        require_ray()
        self.address, self.cpus, self.gpus, self.max_retries = address, cpus, gpus, max_retries
        self.num_cpus = num_cpus

    def __call__(self, fn: Callable[..., Any], calls: Sequence[tuple], common: tuple = ()) -> Iterator[Any]:
        with ray_session(self.address, num_cpus=self.num_cpus) as ray:
            remote = ray.remote(_call_with_threads).options(**task_options(self.cpus, self.gpus, self.max_retries))
            shared = [ray.put(value) for value in common]
            threads = task_threads(self.cpus)
            refs = [remote.remote(threads, fn, *shared, *call) for call in calls]
            # Stopped early (an error, Ctrl-C, a consumer that stops reading): the tasks not collected are left to
            # end on their own (never ray.cancel, module docstring); a local Ray started here ends with them.
            for ref in refs:
                yield task_result(ray, ref, self.max_retries)


def local_map(fn: Callable[..., Any], calls: Sequence[tuple], common: tuple = ()) -> Iterator[Any]:
    """The same interface in this process, one call after the other."""
    for call in calls:
        yield fn(*common, *call)
