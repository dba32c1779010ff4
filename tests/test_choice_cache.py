"""Fast inference on by default: the machine's choice is measured once per model and kept, so runs of one seed
score with the same engine and end in the same archive; a kept choice that is unreadable or leaves the
tolerance is measured again; analyses score with the engine their run recorded."""

from __future__ import annotations

import json

import pytest
import torch

from fooling_ext.analyses import load_run, run_classifier
from fooling_ext.classifiers import choice_cache, engines, load_classifier
from fooling_ext.classifiers.inference import InferenceSettings, choose_inference_settings
from fooling_ext.search import EvolveConfig, evolve

ONNX = InferenceSettings(engine="onnxruntime")


@pytest.fixture(autouse=True)
def fast_by_default(tmp_path, monkeypatch):
    """The default as a user has it (the suite turns fast inference off), with a cache folder of its own."""
    monkeypatch.delenv(choice_cache.FAST_INFERENCE_ENV, raising=False)
    monkeypatch.setenv(engines.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(engines, "_SESSIONS", {})


def kept_files(tmp_path):
    return sorted((tmp_path / "cache" / "inference").glob("*.json"))


def run(tmp_path, name, **options):
    config = EvolveConfig(generations=3, batch=16, backend="cpu", seed=5, **options)
    result = evolve(config, tmp_path / name, progress=False)
    return result, json.loads((tmp_path / name / "config.json").read_text())


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", True), ("1", True), ("on", True), ("TRUE", True), ("0", False), ("off", False), ("no", False)],
)
def test_the_default_is_on_unless_the_environment_says_0(monkeypatch, value, expected):
    monkeypatch.setenv(choice_cache.FAST_INFERENCE_ENV, value)
    assert choice_cache.default_fast_inference() is expected


def test_a_bad_environment_value_is_an_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv(choice_cache.FAST_INFERENCE_ENV, "fast")
    with pytest.raises(ValueError, match="FOOLING_FAST_INFERENCE must be 1 or 0 .* got 'fast'"):
        choice_cache.default_fast_inference()


def test_the_first_run_measures_and_keeps_the_choice_the_next_runs_use(tmp_path, monkeypatch):
    first, first_config = run(tmp_path, "first")
    assert first_config["run"]["fast_inference"] is True  # the value used is recorded, for --resume
    assert len(first_config["inference"]["trials"]) == 3 and "kept_from" not in first_config["inference"]
    [kept] = kept_files(tmp_path)
    assert json.loads(kept.read_text())["chosen"] == first_config["inference"]["chosen"]

    def never(*args, **kwargs):
        raise AssertionError("a kept choice is not measured again")

    monkeypatch.setattr(choice_cache, "choose_inference_settings", never)
    second, second_config = run(tmp_path, "second")
    assert second_config["inference"]["chosen"] == first_config["inference"]["chosen"]
    assert second_config["inference"]["kept_from"] == str(kept)
    [trial] = second_config["inference"]["trials"]
    assert trial["accepted"] and trial["seconds"] is None and trial["max_abs_error"] <= 1e-3
    # one seed, one engine: the same archive to the last bit
    assert torch.equal(first.archive.confidence, second.archive.confidence)
    assert first.archive.genomes.keys() == second.archive.genomes.keys()
    assert all(torch.equal(first.archive.genomes[name], second.archive.genomes[name]) for name in first.archive.genomes)


def test_the_choice_is_kept_per_probe_batch_and_thread_count(tmp_path):
    clf = load_classifier("mnist")
    keys = {
        choice_cache.choice_key(clf, 16, ("eager", "onnxruntime"), 1e-3),
        choice_cache.choice_key(clf, 32, ("eager", "onnxruntime"), 1e-3),
        choice_cache.choice_key(clf, 16, ("eager",), 1e-3),
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        keys.add(choice_cache.choice_key(clf, 16, ("eager", "onnxruntime"), 1e-3))
    finally:
        torch.set_num_threads(threads)
    assert len(keys) == 4


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"chosen": {"dtype": "float64", "channels_last": false, "tf32": false}}', '{"chosen": 3}', "[]"],
)
def test_an_unreadable_kept_choice_is_measured_again_and_replaced(tmp_path, content):
    _, first = run(tmp_path, "first")
    [kept] = kept_files(tmp_path)
    kept.write_text(content)
    _, second = run(tmp_path, "second")
    assert len(second["inference"]["trials"]) == 3 and "kept_from" not in second["inference"]
    assert json.loads(kept.read_text())["chosen"] == second["inference"]["chosen"]


def test_a_kept_choice_outside_the_tolerance_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setattr(
        choice_cache,
        "choose_inference_settings",
        lambda clf, probe, **kw: choose_inference_settings(clf, probe, candidates=[ONNX], repeats=1),
    )
    _, first = run(tmp_path, "first")
    assert first["inference"]["chosen"]["engine"] == "onnxruntime"
    real = engines.onnxruntime_runner

    def shifted(model, shape, device):  # now the engine is off by far more than the tolerance
        runner = real(model, shape, device)
        return engines.dataclasses.replace(runner, run=lambda x, run=runner.run: run(x) + 5 * torch.eye(10)[0])

    monkeypatch.setattr(
        "fooling_ext.classifiers.inference.engine_runner",
        lambda engine, model, shape, device: shifted(model, shape, device),
    )
    monkeypatch.setattr(choice_cache, "choose_inference_settings", choose_inference_settings)
    _, second = run(tmp_path, "second")
    assert "kept_from" not in second["inference"]
    assert second["inference"]["chosen"].get("engine", "eager") == "eager"
    onnx = [t for t in second["inference"]["trials"] if t.get("engine") == "onnxruntime"]
    assert len(onnx) == 1 and not onnx[0]["accepted"] and onnx[0]["max_abs_error"] > 0.1


def test_off_by_the_environment_or_the_run_scores_with_plain_pytorch(tmp_path, monkeypatch):
    plain = {"chosen": {"dtype": "float32", "channels_last": False, "tf32": False}}
    _, explicit = run(tmp_path, "explicit", fast_inference=False)
    monkeypatch.setenv(choice_cache.FAST_INFERENCE_ENV, "0")
    _, environment = run(tmp_path, "environment")
    assert explicit["inference"] == plain and environment["inference"] == plain
    assert environment["run"]["fast_inference"] is False
    assert kept_files(tmp_path) == []


def test_an_analysis_scores_with_the_engine_its_run_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(
        choice_cache,
        "choose_inference_settings",
        lambda clf, probe, **kw: choose_inference_settings(clf, probe, candidates=[ONNX], repeats=1),
    )
    result, config = run(tmp_path, "run")
    assert config["inference"]["chosen"]["engine"] == "onnxruntime"
    data = load_run(tmp_path / "run")
    fast = run_classifier(data)
    assert fast.engine is not None and fast.engine.engine == "onnxruntime"
    plain = run_classifier(data, fast_inference=False)
    assert plain.engine is None
    cells = torch.from_numpy(data.occupied.nonzero()[0])
    elites = torch.from_numpy(data.images[data.occupied]).float().div(255)
    recorded = result.archive.confidence[cells].double()
    scored = fast.probabilities(elites).gather(1, cells[:, None])[:, 0].double()
    # the run scored these very renders with ONNX Runtime; the analysis does again
    torch.testing.assert_close(scored, recorded, rtol=0, atol=1e-6)
