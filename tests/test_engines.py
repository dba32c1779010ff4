"""Inference engines: every kind of model gets ONNX Runtime with probabilities within the tolerance of strict
float32, or falls back to PyTorch with its reason; the exported file is cached and checked; a resumed run keeps
its engine; the session runs with the run's thread count. Timings are measured but never asserted on."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from torch import nn

from fooling_ext.classifiers import InputSpec, choice_cache, engines, load_classifier
from fooling_ext.classifiers.inference import (
    InferenceSettings,
    apply_settings,
    choose_inference_settings,
    current_settings,
    strict_float32,
)
from fooling_ext.search import EvolveConfig, evolve
from fooling_ext.search.evolve import resume

EAGER = InferenceSettings()
ONNX = InferenceSettings(engine="onnxruntime")
TOLERANCE = 1e-3


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """Each test exports into its own cache folder and starts with no session kept in this process."""
    monkeypatch.setenv(engines.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(engines, "_SESSIONS", {})


@pytest.fixture
def exports(monkeypatch):
    """Counts the calls of torch.onnx.export."""
    calls = []
    real = torch.onnx.export

    def counting(*args, **kwargs):
        calls.append(kwargs.get("dynamo"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counting)
    return calls


class SmallNet(nn.Module):
    def __init__(self, classes: int = 5):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def images(n: int = 6, channels: int = 3, size: int = 8) -> torch.Tensor:
    return torch.rand((n, channels, size, size), generator=torch.Generator().manual_seed(1))


def module_classifier(tmp_path):
    return load_classifier(SmallNet(), spec=InputSpec(3, 8, 8)), images()


def torchscript_classifier(tmp_path):
    path = tmp_path / "net.ts"
    torch.jit.save(torch.jit.script(SmallNet()), str(path))
    return load_classifier(path, spec=InputSpec(3, 8, 8)), images()


def exported_classifier(tmp_path):
    path = tmp_path / "net.pt2"
    program = torch.export.export(
        SmallNet().eval(), (torch.rand(2, 3, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, str(path))
    return load_classifier(path, spec=InputSpec(3, 8, 8)), images()


def mnist_classifier(tmp_path):
    return load_classifier("mnist"), images(channels=1, size=28)


def cropped_classifier(tmp_path):
    """Renders of 10 x 10 scored as the average over 10 crops of 8 x 8."""
    return load_classifier(SmallNet(), spec=InputSpec(3, 10, 10, crops=8)), images(size=10)


def fooling_class_classifier(tmp_path):
    """1001 classes, of which the first 1000 are scored, as the fooling-class experiment scores them."""
    return load_classifier(SmallNet(1001), spec=InputSpec(3, 8, 8)).leading_classes(1000), images()


KINDS = [
    module_classifier,
    torchscript_classifier,
    exported_classifier,
    mnist_classifier,
    cropped_classifier,
    fooling_class_classifier,
]


def strict_reference(clf, batch):
    apply_settings(clf, EAGER)
    with strict_float32(clf.device):
        return clf.probabilities(batch)


@pytest.mark.parametrize("make", KINDS, ids=lambda f: f.__name__)
def test_every_model_kind_runs_on_onnx_runtime_within_the_tolerance(tmp_path, make):
    clf, batch = make(tmp_path)
    reference = strict_reference(clf, batch)
    choice = choose_inference_settings(clf, batch, candidates=[EAGER, ONNX], repeats=1)
    onnx = choice.trials[1]
    assert onnx.reason == "" and onnx.accepted and onnx.max_abs_error <= TOLERANCE
    apply_settings(clf, ONNX)
    assert clf.engine is not None and current_settings(clf) == ONNX
    got = clf.probabilities(batch)
    assert got.shape == reference.shape
    assert float((got - reference).abs().max()) <= TOLERANCE
    onnx_file = clf.engine.info["onnx_file"]
    with open(onnx_file, "rb") as stream:
        assert clf.engine.info["onnx_sha256"] == hashlib.sha256(stream.read()).hexdigest()


@pytest.mark.parametrize("make", KINDS, ids=lambda f: f.__name__)
def test_every_model_kind_falls_back_to_pytorch_with_the_reason_when_export_fails(tmp_path, monkeypatch, make):
    clf, batch = make(tmp_path)

    def failing(*args, **kwargs):
        raise RuntimeError("the exporter broke")

    monkeypatch.setattr(torch.onnx, "export", failing)
    reference = strict_reference(clf, batch)
    choice = choose_inference_settings(clf, batch, candidates=[EAGER, ONNX], repeats=1)
    assert choice.settings == EAGER and clf.engine is None
    assert choice.trials[1].reason == "export to ONNX failed: RuntimeError: the exporter broke"
    assert not choice.trials[1].accepted
    assert choice.fallbacks() == [
        "ONNX Runtime not used, PyTorch kept: export to ONNX failed: RuntimeError: the exporter broke"
    ]
    torch.testing.assert_close(clf.probabilities(batch), reference, rtol=0, atol=0)


def test_an_engine_outside_the_tolerance_is_rejected_with_its_error(tmp_path, monkeypatch):
    clf, batch = module_classifier(tmp_path)
    real = engines.onnxruntime_runner

    def shifted(model, shape, device):  # an engine that is wrong by 0.3 in every logit of class 0
        runner = real(model, shape, device)
        run = runner.run
        return engines.dataclasses.replace(runner, run=lambda x: run(x) + torch.tensor([3.0, 0, 0, 0, 0]))

    monkeypatch.setattr(
        "fooling_ext.classifiers.inference.engine_runner",
        lambda engine, model, shape, device: shifted(model, shape, device),
    )
    choice = choose_inference_settings(clf, batch, candidates=[EAGER, ONNX], repeats=1)
    assert choice.settings == EAGER and choice.trials[1].max_abs_error > 0.1
    assert choice.fallbacks()[0].startswith("ONNX Runtime not used, PyTorch kept: result outside tolerance")


def test_the_export_is_cached_and_a_corrupt_cache_file_is_exported_again(tmp_path, exports):
    clf, batch = mnist_classifier(tmp_path)
    reference = strict_reference(clf, batch)
    apply_settings(clf, ONNX)
    assert exports == [True]  # the dynamo exporter
    first = dict(clf.engine.info)
    assert first["export_seconds"] > 0
    apply_settings(clf, ONNX)  # the same process: the session is kept
    assert len(exports) == 1
    engines._SESSIONS.clear()  # as in a new process: the file is read from the cache
    apply_settings(clf, ONNX)
    assert len(exports) == 1 and clf.engine.info["export_seconds"] == 0.0
    assert clf.engine.info["onnx_sha256"] == first["onnx_sha256"]
    with open(first["onnx_file"], "r+b") as stream:  # a flipped byte that the file's digest catches
        stream.seek(200)
        byte = stream.read(1)
        stream.seek(200)
        stream.write(bytes([byte[0] ^ 0xFF]))
    engines._SESSIONS.clear()
    apply_settings(clf, ONNX)
    assert len(exports) == 2 and clf.engine.info["onnx_sha256"] == first["onnx_sha256"]
    assert float((clf.probabilities(batch) - reference).abs().max()) <= TOLERANCE


def test_a_torchscript_module_is_exported_by_the_torchscript_exporter(tmp_path, exports):
    clf, _ = torchscript_classifier(tmp_path)
    apply_settings(clf, ONNX)
    assert exports == [False]


def test_the_session_uses_the_runs_thread_count_and_one_inter_op_thread(tmp_path):
    clf, batch = module_classifier(tmp_path)
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            apply_settings(clf, ONNX)
            options = clf.engine.session.get_session_options()
            assert (options.intra_op_num_threads, options.inter_op_num_threads) == (threads, 1)
            assert clf.engine.info["threads"] == threads
    finally:
        torch.set_num_threads(previous)


def test_gradients_and_a_weight_change_keep_pytorch(tmp_path):
    clf, batch = module_classifier(tmp_path)
    apply_settings(clf, ONNX)
    pixels = batch.clone().requires_grad_(True)
    assert clf.differentiable_probabilities(pixels).requires_grad  # gradient ascent: autograd, not the engine
    before = clf.probabilities(batch)
    with torch.no_grad():
        clf.model.fc.bias[0] += 2.0  # in place, as the fooling-class experiment fits its new row
        reference = clf.model(batch).softmax(dim=1)
    assert float((reference - before).abs().max()) > 0.1  # the engine's stale weights would be far off
    with pytest.warns(RuntimeWarning, match="weights changed"):
        got = clf.probabilities(batch)
    assert clf.engine is None
    torch.testing.assert_close(got, reference, rtol=0, atol=1e-6)


def test_a_resumed_run_keeps_its_engine_and_re_exports_it(tmp_path, monkeypatch, exports):
    # the first call picks ONNX Runtime whatever the timings say (both are within tolerance)
    monkeypatch.setattr(
        choice_cache,
        "choose_inference_settings",
        lambda clf, probe, **kw: choose_inference_settings(clf, probe, candidates=[ONNX], repeats=1),
    )
    config = EvolveConfig(generations=2, batch=16, backend="cpu", seed=3, checkpoint_every=1, fast_inference=True)
    evolve(config, tmp_path / "run", progress=False)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["inference"]
    assert recorded["chosen"]["engine"] == "onnxruntime" and recorded["engine"]["engine"] == "onnxruntime"
    assert len(exports) == 1

    def never(*args, **kwargs):
        raise AssertionError("a resumed run measures nothing: it uses the recorded choice")

    monkeypatch.setattr(choice_cache, "choose_inference_settings", never)
    monkeypatch.setattr(engines, "_SESSIONS", {})  # as in a new process
    monkeypatch.setenv(engines.CACHE_ENV, str(tmp_path / "other_cache"))  # and on a machine without the file
    resume(tmp_path / "run", generations=4, progress=False)
    resumed = json.loads((tmp_path / "run" / "config.json").read_text())["inference"]
    assert resumed["chosen"] == recorded["chosen"]
    assert resumed["engine"]["onnx_sha256"] == recorded["engine"]["onnx_sha256"]
    assert resumed["trials"][0]["accepted"] and resumed["trials"][0]["max_abs_error"] <= TOLERANCE
    assert len(exports) == 2


def test_a_resumed_run_whose_engine_cannot_be_built_falls_back_to_pytorch(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        choice_cache,
        "choose_inference_settings",
        lambda clf, probe, **kw: choose_inference_settings(clf, probe, candidates=[ONNX], repeats=1),
    )
    config = EvolveConfig(generations=1, batch=8, backend="cpu", seed=3, checkpoint_every=1, fast_inference=True)
    evolve(config, tmp_path / "run", progress=False)
    monkeypatch.setattr(engines, "_SESSIONS", {})
    monkeypatch.setenv(engines.CACHE_ENV, str(tmp_path / "other_cache"))

    def failing(*args, **kwargs):
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(torch.onnx, "export", failing)
    capsys.readouterr()
    resume(tmp_path / "run", generations=2, progress=False)
    resumed = json.loads((tmp_path / "run" / "config.json").read_text())["inference"]
    assert resumed["chosen"] == {"dtype": "float32", "channels_last": False, "tf32": False}
    assert resumed["trials"][0]["reason"] == "export to ONNX failed: RuntimeError: no exporter here"
    assert "ONNX Runtime not used, PyTorch kept: export to ONNX failed" in capsys.readouterr().err


def test_a_released_session_is_forgotten_and_built_again_from_the_export(tmp_path, exports):
    from fooling_ext.analyses.transfer import _release

    clf, batch = module_classifier(tmp_path)
    apply_settings(clf, ONNX)
    first = clf.engine
    assert first is not None and first.engine == "onnxruntime"
    assert [v.session for v in engines._SESSIONS.values()] == [first.session]
    expected = clf.probabilities(batch)
    _release(clf)  # what the transfer analysis does once a network's elites are scored
    assert clf.engine is None and engines._SESSIONS == {}
    apply_settings(clf, ONNX)
    assert clf.engine.session is not first.session and len(exports) == 1  # a new session, the same exported file
    assert torch.equal(clf.probabilities(batch), expected)


def test_the_session_cache_is_bounded_and_an_evicted_runner_still_scores(tmp_path):
    """The process keeps at most SESSION_CACHE_SIZE sessions, least recently used out first; a classifier whose
    session left the cache still scores with it, and a looked-up session becomes the most recent."""
    size = engines.SESSION_CACHE_SIZE
    classifiers = [load_classifier(SmallNet(classes), spec=InputSpec(3, 8, 8)) for classes in range(2, size + 3)]
    batch = images()
    expected = [clf.probabilities(batch) for clf in classifiers]  # eager PyTorch
    for clf in classifiers:
        apply_settings(clf, ONNX)
    assert [v.session for v in engines._SESSIONS.values()] == [clf.engine.session for clf in classifiers[1:]]
    for clf, probabilities in zip(classifiers, expected, strict=True):
        torch.testing.assert_close(clf.probabilities(batch), probabilities, atol=TOLERANCE, rtol=0)

    apply_settings(classifiers[1], ONNX)  # looked up again: now the most recent
    newest = load_classifier(SmallNet(size + 3), spec=InputSpec(3, 8, 8))
    apply_settings(newest, ONNX)
    kept = [v.session for v in engines._SESSIONS.values()]
    assert kept == [clf.engine.session for clf in [*classifiers[3:], classifiers[1], newest]]
    assert classifiers[2].engine.session not in kept  # the least recently used went
