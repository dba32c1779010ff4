"""Inference engines a Classifier's model can run on, besides PyTorch eager: ONNX Runtime and torch.compile.

On a CPU PyTorch's eager mode runs a convolutional network far below what the CPU can do; ONNX Runtime runs the
same network, exported to ONNX, several times faster (EfficientNet-Lite0: 7x on 2 cores). An engine only ever
computes the probabilities of the no-autograd scoring path (``Classifier.probabilities``); gradients and features
keep the PyTorch model. :func:`~fooling_ext.classifiers.inference.choose_inference_settings` keeps an engine only
when its probabilities on the run's probe batch stay within the tolerance of strict float32.

The ONNX file is exported once per model and input shape, by torch's dynamo-based exporter (TorchScript modules,
which it cannot trace, by the TorchScript-based one), into a cache folder: ``$FOOLING_CACHE_DIR``, else
``$XDG_CACHE_HOME/fooling_ext``, else ``~/.cache/fooling_ext``; its ``onnx/`` holds ``KEY.onnx`` and ``KEY.json``
(the file's SHA-256), KEY being a digest of the model (its code and weights), the input shape and the versions
of torch and the exporter. A file whose digest does not match is exported again. Sessions are kept per process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import io
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

ENGINES = ("eager", "compile", "onnxruntime")
CACHE_ENV = "FOOLING_CACHE_DIR"
_OPSET = 18


class EngineUnavailable(Exception):
    """An engine cannot run this model; the message is the one-line reason, for the fallback line."""


@dataclass
class EngineRunner:
    """A model on an engine: called with model inputs [N, *input_shape], returns the model's output [N, K]."""

    engine: str
    input_shape: tuple[int, ...]
    run: Callable[[torch.Tensor], torch.Tensor]
    info: dict[str, Any] = field(default_factory=dict)
    session: Any = None  # the ONNX Runtime session
    weights: tuple[int, ...] = ()  # the model's weights' versions when it was built

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.run(inputs)

    def current_for(self, model: Any) -> bool:
        """Whether the model's weights are still the ones the engine was built from (an in-place change, such
        as the fooling-class experiment fitting its new row, bumps their versions)."""
        return weights_version(model) == self.weights


# Below this many input elements a batch's own PyTorch work (checks, normalisation, softmax) is done on one thread
# around an ONNX Runtime CPU session: after a parallel region libgomp's workers spin for a while, and on a small
# batch they were still spinning when the session's threads started, taking their cores (LeNet, 64 images on 2
# cores: 8.0 ms a call, 2.7 ms with the PyTorch work on one thread; EfficientNet-Lite0, 64 images of 256 x 256,
# whose resize is worth its threads: 410 ms, 434-449 ms on one thread).
SMALL_BATCH_ELEMENTS = 1 << 21


@contextlib.contextmanager
def torch_threads_around(runner: EngineRunner | None, elements: int):
    """One PyTorch thread around a small batch scored by ONNX Runtime on the CPU; elsewhere, no change."""
    threads = torch.get_num_threads()
    if (
        runner is None
        or runner.engine != "onnxruntime"
        or runner.info.get("provider") != "CPUExecutionProvider"
        or elements >= SMALL_BATCH_ELEMENTS
        or threads == 1
    ):
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def weights_version(model: Any) -> tuple[int, ...]:
    if not isinstance(model, nn.Module):
        return ()
    return tuple(t._version for t in (*model.parameters(), *model.buffers()))


# This process's engine runners, by model export and device, least recently used first. A runner stays usable
# after it leaves the cache (its closure holds its session): the cache only saves building a session again for
# the same model, so it is bounded, and a process that scores many networks in turn (an analysis over several
# models, the fooling-class experiment) does not keep every network's session and its memory arena to the end.
_SESSIONS: dict[tuple[Any, ...], EngineRunner] = {}
SESSION_CACHE_SIZE = 4


def _cached(key: tuple[Any, ...]) -> EngineRunner | None:
    """The cached runner of `key`, now the most recently used, or None."""
    runner = _SESSIONS.pop(key, None)
    if runner is not None:
        _SESSIONS[key] = runner
    return runner


def _remember(key: tuple[Any, ...], runner: EngineRunner) -> None:
    """Cache `runner`, forgetting the least recently used beyond SESSION_CACHE_SIZE."""
    _SESSIONS.pop(key, None)
    _SESSIONS[key] = runner
    while len(_SESSIONS) > SESSION_CACHE_SIZE:
        del _SESSIONS[next(iter(_SESSIONS))]


def cache_dir() -> Path:
    """Where exported models are kept (see the module's docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fooling_ext"


def model_digest(model: Any) -> str:
    """SHA-256 of what a model computes: its code (TorchScript or FX code, else its modules' Python source)
    and every parameter and buffer, by name, dtype, shape and bytes."""
    digest = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    if isinstance(model, torch.jit.ScriptModule):
        digest.update(str(model.inlined_graph).encode())
    elif isinstance(model, torch.fx.GraphModule):
        digest.update(model.code.encode())
    if isinstance(model, nn.Module):
        digest.update(repr(model).encode())
        for cls in sorted({type(m) for m in model.modules()}, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
            with contextlib.suppress(OSError, TypeError):
                digest.update(inspect.getsource(cls).encode())
        for name, value in model.state_dict().items():
            value = value.detach().cpu().contiguous()
            digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
            digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    else:
        digest.update(repr(model).encode())
    return digest.hexdigest()


def onnxruntime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def onnxruntime_providers(device: torch.device) -> list[str | tuple[str, dict[str, Any]]]:
    """The ONNX Runtime providers for `device`: the CUDA provider on a GPU where the installed onnxruntime has
    it (else none: the engine is unavailable there), the CPU provider on a CPU."""
    import onnxruntime

    if device.type == "cuda":
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise EngineUnavailable("this onnxruntime has no CUDA provider (onnxruntime-gpu has)")
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def onnxruntime_runner(model: Any, input_shape: tuple[int, ...], device: torch.device) -> EngineRunner:
    """The model exported to ONNX (from the cache where it is there) in an ONNX Runtime session with the run's
    thread count (torch.get_num_threads()) and one inter-op thread. Raises EngineUnavailable with the reason."""
    if onnxruntime_version() is None:
        raise EngineUnavailable("onnxruntime is not installed")
    threads = torch.get_num_threads()
    key = _export_key(model, input_shape)
    session_key = (key, threads, str(device))
    cached = _cached(session_key)
    if cached is not None:
        return dataclasses.replace(cached, weights=weights_version(model))
    path, onnx_digest, export_seconds = _cached_export(model, input_shape, key)
    start = time.perf_counter()
    session = _session(path, device, threads)
    input_name = session.get_inputs()[0].name

    def run(inputs: torch.Tensor) -> torch.Tensor:
        array = inputs.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(session.run(None, {input_name: array})[0]).to(inputs.device)

    runner = EngineRunner(
        "onnxruntime",
        tuple(input_shape),
        run,
        {
            "engine": "onnxruntime",
            "version": onnxruntime_version(),
            "provider": session.get_providers()[0],
            "threads": threads,
            "onnx_sha256": onnx_digest,
            "onnx_file": str(path),
            "export_seconds": export_seconds,
            "session_seconds": time.perf_counter() - start,
        },
        session,
        weights_version(model),
    )
    _remember(session_key, runner)
    return runner


def release_engine(runner: EngineRunner) -> None:
    """Forget this process's cached session of `runner`, so that its memory (ONNX Runtime keeps an arena sized by
    the largest batch it ran) is freed with the last reference to it; a later call builds the session again from
    the exported file."""
    for key in [k for k, v in _SESSIONS.items() if v.run is runner.run]:
        del _SESSIONS[key]


def compile_runner(model: Any, input_shape: tuple[int, ...], device: torch.device) -> EngineRunner:
    """The model under torch.compile (inductor). Its first calls compile (minutes for EfficientNet-Lite0 on a
    CPU), so it is a candidate only when asked for."""
    if isinstance(model, torch.jit.ScriptModule):
        raise EngineUnavailable("torch.compile cannot compile a TorchScript module")
    # by id: the cached runner holds the model, so its id cannot be reused while the entry lives
    key = ("compile", id(model), tuple(input_shape), str(device))
    runner = _cached(key)
    if runner is None:
        start = time.perf_counter()
        try:
            compiled = torch.compile(model)
        except Exception as exc:  # any failure is a reason to keep eager, never a crash
            raise EngineUnavailable(f"torch.compile failed: {type(exc).__name__}: {_first_line(exc)}") from exc
        runner = EngineRunner(
            "compile",
            tuple(input_shape),
            compiled,
            {"engine": "compile", "version": str(torch.__version__), "export_seconds": time.perf_counter() - start},
        )
        _remember(key, runner)
    return dataclasses.replace(runner, weights=weights_version(model))


def engine_runner(engine: str, model: Any, input_shape: tuple[int, ...], device: torch.device) -> EngineRunner:
    if engine == "onnxruntime":
        return onnxruntime_runner(model, input_shape, device)
    if engine == "compile":
        return compile_runner(model, input_shape, device)
    raise ValueError(f"engine must be one of {ENGINES[1:]}, got {engine!r}")


def _export_key(model: Any, input_shape: tuple[int, ...]) -> str:
    import onnx

    parts = [
        model_digest(model),
        "x".join(map(str, input_shape)),
        torch.__version__,
        onnx.__version__,
        _exporter(model),
        str(_OPSET),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _exporter(model: Any) -> str:
    return "torchscript" if isinstance(model, torch.jit.ScriptModule) else "dynamo"


def _cached_export(model: Any, input_shape: tuple[int, ...], key: str) -> tuple[Path, str, float]:
    """(path, SHA-256, seconds spent exporting: 0 from the cache). A cached file whose digest does not match
    its record is exported again."""
    folder = cache_dir() / "onnx"
    path, record = folder / f"{key}.onnx", folder / f"{key}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        expected = json.loads(record.read_text())["sha256"]
        if _file_digest(path) == expected:
            return path, expected, 0.0
    start = time.perf_counter()
    data = _export(model, input_shape)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256(data).hexdigest()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, data)
        _write_atomically(
            record,
            json.dumps(
                {
                    "sha256": digest,
                    "input_shape": list(input_shape),
                    "exporter": _exporter(model),
                    "torch": torch.__version__,
                }
            ).encode(),
        )
    except OSError as exc:
        raise EngineUnavailable(f"cannot write the ONNX cache {folder}: {exc}") from exc
    return path, digest, seconds


def _export(model: Any, input_shape: tuple[int, ...]) -> bytes:
    """The model as ONNX bytes, with a free batch size."""
    example = torch.rand((2, *input_shape))
    model_device = next((p.device for p in model.parameters()), None) if isinstance(model, nn.Module) else None
    if model_device is not None:
        example = example.to(model_device)
    buffer = io.BytesIO()
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [logger.level for logger in loggers]
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")  # the exporters' deprecation notes are not the user's to act on
            for logger in loggers:
                logger.setLevel(logging.ERROR)
            if _exporter(model) == "torchscript":
                torch.onnx.export(
                    model,
                    (example,),
                    buffer,  # type: ignore[arg-type]  # torch's annotation omits the file objects it writes to
                    dynamo=False,
                    input_names=["images"],
                    output_names=["scores"],
                    dynamic_axes={"images": {0: "batch"}},
                    opset_version=_OPSET,
                )
            else:
                program = torch.onnx.export(
                    model,
                    (example,),
                    dynamo=True,
                    input_names=["images"],
                    output_names=["scores"],
                    opset_version=_OPSET,
                    dynamic_shapes=({0: torch.export.Dim("batch")},),
                )
                assert program is not None  # dynamo=True returns the program
                program.save(buffer)  # type: ignore[arg-type]  # torch's annotation omits the file objects it writes to
    except Exception as exc:  # any failure is a reason to keep eager, never a crash
        raise EngineUnavailable(f"export to ONNX failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    return buffer.getvalue()


def _session(path: Path, device: torch.device, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=onnxruntime_providers(device))
    except EngineUnavailable:
        raise
    except Exception as exc:
        raise EngineUnavailable(f"ONNX Runtime cannot load the exported model: {_first_line(exc)}") from exc


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else "(no message)"
