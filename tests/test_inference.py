"""Choosing inference settings: only candidates within the tolerance of float32 survive, the fastest of them is
applied, and evolution records what it chose. Timings are measured but never asserted on."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from fooling_ext.classifiers import InputSpec, load_classifier
from fooling_ext.classifiers.inference import (
    InferenceSettings,
    Trial,
    apply_settings,
    candidate_settings,
    choose_inference_settings,
    current_settings,
    pick_fastest,
    strict_float32,
)
from fooling_ext.search import EvolveConfig, evolve

FLOAT32 = InferenceSettings()
FLOAT32_CL = InferenceSettings(channels_last=True)
BF16 = InferenceSettings(torch.bfloat16)
BF16_CL = InferenceSettings(torch.bfloat16, channels_last=True)


class AutocastSensitive(nn.Module):
    """A linear classifier whose logits move by `shift` whenever CPU autocast is on: a stand-in for a model
    that reduced precision makes inexact (by a known amount) or that it leaves exact."""

    def __init__(self, shift: float):
        super().__init__()
        self.shift = shift
        self.linear = nn.Linear(3 * 8 * 8, 5)
        with torch.no_grad():
            self.linear.weight.copy_(torch.linspace(-0.02, 0.02, 5 * 192).view(5, 192))  # logits of order 1
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.linear(x.float().flatten(1))
        if torch.is_autocast_enabled("cpu"):
            logits = logits + self.shift * torch.arange(5, dtype=logits.dtype)
        return logits.float()


def classifier(shift: float):
    return load_classifier(AutocastSensitive(shift), spec=InputSpec(3, 8, 8))


def images(n: int = 6) -> torch.Tensor:
    return torch.rand((n, 3, 8, 8), generator=torch.Generator().manual_seed(1))


def test_a_candidate_that_moves_probabilities_by_more_than_the_tolerance_is_rejected():
    clf = classifier(shift=0.5)
    reference = clf.probabilities(images())
    choice = choose_inference_settings(clf, images(), candidates=[FLOAT32, BF16], repeats=1)
    trials = {trial.settings: trial for trial in choice.trials}
    assert trials[FLOAT32].max_abs_error == 0.0 and trials[FLOAT32].accepted
    assert trials[BF16].max_abs_error > 1e-2 and not trials[BF16].accepted
    assert choice.settings == FLOAT32 and current_settings(clf) == FLOAT32
    torch.testing.assert_close(clf.probabilities(images()), reference, rtol=0, atol=0)


def test_a_candidate_within_the_tolerance_is_kept():
    clf = classifier(shift=1e-5)
    choice = choose_inference_settings(clf, images(), candidates=[FLOAT32, BF16], repeats=1)
    bf16 = next(trial for trial in choice.trials if trial.settings == BF16)
    assert 0.0 < bf16.max_abs_error <= 1e-3 and bf16.accepted
    assert choice.settings in (FLOAT32, BF16) and current_settings(clf) == choice.settings


def test_the_tolerance_is_the_threshold():
    clf = classifier(shift=1e-5)
    choice = choose_inference_settings(clf, images(), candidates=[FLOAT32, BF16], tolerance=1e-9, repeats=1)
    assert [trial.accepted for trial in choice.trials] == [True, False]
    assert choice.settings == FLOAT32


def test_pick_fastest_takes_the_fastest_accepted_trial_and_falls_back_when_none_is():
    trials = [
        Trial(FLOAT32, 2.0, 0.0, True),
        Trial(BF16, 0.5, 0.01, False),
        Trial(FLOAT32_CL, 1.0, 1e-7, True),
        Trial(BF16_CL, 1.5, 1e-4, True),
    ]
    assert pick_fastest(trials, FLOAT32) == FLOAT32_CL
    assert pick_fastest([Trial(BF16, 0.5, 0.01, False)], FLOAT32_CL) == FLOAT32_CL


def test_when_nothing_passes_the_classifier_keeps_its_settings():
    clf = apply_settings(classifier(shift=0.5), FLOAT32_CL)
    choice = choose_inference_settings(clf, images(), candidates=[BF16, BF16_CL], repeats=1)
    assert not any(trial.accepted for trial in choice.trials)
    assert choice.settings == FLOAT32_CL and current_settings(clf) == FLOAT32_CL


def test_candidates_are_float32_on_the_cpu_and_add_reduced_precision_on_cuda():
    onnx = InferenceSettings(engine="onnxruntime")
    assert candidate_settings(torch.device("cpu")) == [FLOAT32, FLOAT32_CL, onnx]
    assert candidate_settings(torch.device("cpu"), engines=("eager",)) == [FLOAT32, FLOAT32_CL]
    assert candidate_settings(torch.device("cpu"), engines=("eager", "compile"))[-1].engine == "compile"
    cuda = candidate_settings(torch.device("cuda"), engines=("eager",))
    assert {s.dtype for s in cuda} == {torch.float32, torch.float16, torch.bfloat16} and len(cuda) == 8
    assert candidate_settings(torch.device("cuda")) == [*cuda, onnx]
    assert [(s.channels_last, s.tf32) for s in cuda if s.dtype == torch.float32] == [
        (False, False),
        (True, False),
        (False, True),
        (True, True),
    ]
    assert cuda[0] == FLOAT32  # strict float32, the reference, is measured first


def test_apply_settings_converts_the_weights_layout_both_ways():
    clf = load_classifier("mnist")
    apply_settings(clf, FLOAT32_CL)
    weight = clf.model.features[2].weight  # the second convolution: 20 input channels
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    apply_settings(clf, FLOAT32)
    assert clf.model.features[2].weight.is_contiguous()


def test_bad_arguments_are_value_errors():
    clf = classifier(shift=0.0)
    with pytest.raises(ValueError, match="tolerance must be in"):
        choose_inference_settings(clf, images(), tolerance=0.0)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        choose_inference_settings(clf, images(), repeats=0)
    with pytest.raises(ValueError, match="no candidate settings"):
        choose_inference_settings(clf, images(), candidates=[])
    with pytest.raises(ValueError, match="dtype must be one of"):
        InferenceSettings(torch.float64)
    with pytest.raises(ValueError, match="tf32 applies to float32 only"):
        InferenceSettings(torch.bfloat16, tf32=True)


def test_evolve_records_the_measured_choice_and_runs_with_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FOOLING_CACHE_DIR", str(tmp_path / "cache"))  # measured here, not kept from another test
    lenet = load_classifier("mnist")
    config = EvolveConfig(generations=2, batch=16, backend="cpu", fast_inference=True)
    evolve(config, tmp_path / "run", classifier=lenet, progress=False)
    inference = json.loads((tmp_path / "run" / "config.json").read_text())["inference"]
    assert inference["probe_batch"] == 16 and inference["tolerance"] == 1e-3
    assert [(t.get("engine", "eager"), t["dtype"], t["channels_last"]) for t in inference["trials"]] == [
        ("eager", "float32", False),
        ("eager", "float32", True),
        ("onnxruntime", "float32", False),
    ]
    assert all(t["accepted"] and t["max_abs_error"] <= 1e-3 for t in inference["trials"])
    assert inference["chosen"]["dtype"] == "float32"
    assert inference["engine"]["engine"] == inference["chosen"].get("engine", "eager")


@pytest.mark.skipif(
    not hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision"),
    reason="torch < 2.9 has only the allow_tf32 flags",
)
def test_the_float32_reference_turns_tf32_off_on_cuda_and_restores_the_settings():
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = (conv.fp32_precision, matmul.fp32_precision)
    with strict_float32(torch.device("cuda")):  # only flags change, so this runs without a GPU too
        assert (conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
    assert (conv.fp32_precision, matmul.fp32_precision) == before
    with strict_float32(torch.device("cpu")):
        assert (conv.fp32_precision, matmul.fp32_precision) == before


class PrecisionRecorder(nn.Module):
    """A classifier's model that records the cuDNN float32 precision in force while it runs."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []
        self.linear = nn.Linear(3 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(torch.backends.cudnn.conv.fp32_precision)
        return self.linear(x.flatten(1))


@pytest.mark.skipif(
    not hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision"),
    reason="torch < 2.9 has only the allow_tf32 flags",
)
@pytest.mark.filterwarnings("ignore:CUDA is not available:UserWarning")
def test_a_classifier_on_cuda_scores_in_strict_float32_unless_tf32_was_chosen():
    # Only the flags are read, so the model may stay on the CPU while the classifier says "cuda".
    model = PrecisionRecorder()
    clf = load_classifier(model, spec=InputSpec(3, 8, 8))
    clf.device = torch.device("cuda")
    before = torch.backends.cudnn.conv.fp32_precision
    batch = images(2)
    model.seen.clear()
    clf._run_model(batch)
    apply_settings(clf, InferenceSettings(tf32=True))
    clf._run_model(batch)
    apply_settings(clf, InferenceSettings(torch.bfloat16))
    clf._run_model(batch)  # autocast: the float32 flags are left as they are
    assert model.seen == ["ieee", "tf32", before]
    assert torch.backends.cudnn.conv.fp32_precision == before
    clf.device = torch.device("cpu")
    model.seen.clear()
    apply_settings(clf, InferenceSettings(tf32=True))
    clf._run_model(batch)  # on the CPU the flags are not touched
    assert model.seen == [before]
