"""Classifier: loading every model format, preprocessing, 10 crops, chunking, gradients, and bad input."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from fooling_ext.classifiers import MNIST_SPEC, Classifier, InputSpec, ModelSpec, load_classifier
from fooling_ext.classifiers.datasets.mnist import load_mnist
from fooling_ext.classifiers.models import LeNet
from fooling_ext.cli.options import add_model_arguments, classifier_from_args, parse_size
from fooling_ext.core.backend import cuda_available, resolve_device

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


@pytest.fixture(scope="module")
def lenet() -> LeNet:
    torch.manual_seed(0)
    return LeNet().eval()


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.rand((7, 1, 28, 28), generator=generator)


def direct_probabilities(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model(images), dim=1)


class Recorder(nn.Module):
    """Remembers its last input and returns fixed logits, to check what a classifier feeds the model."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.seen: torch.Tensor | None = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.seen = inputs.detach().clone()
        return inputs.new_zeros((len(inputs), self.num_classes))


class Flat(nn.Module):
    """A linear model on flattened pixels: sensitive to where each pixel sits, so crops and mirrors differ."""

    def __init__(self, channels: int, size: int, num_classes: int, softmax: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(channels * size * size, num_classes)
        self.softmax = softmax

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        scores = self.linear(inputs.flatten(1))
        return torch.softmax(scores, dim=1) if self.softmax else scores


class NaNRows(nn.Module):
    """Logits with NaN or Inf in the rows of images whose first pixel is above 0.5."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        scores = inputs.flatten(1)[:, :4] * 3
        bad = inputs[:, 0, 0, 0] > 0.5
        scores = torch.where(bad[:, None], torch.full_like(scores, float("nan")), scores)
        return torch.where((inputs[:, 0, 0, 0] > 0.9)[:, None], torch.full_like(scores, float("inf")), scores)


# ---------------------------------------------------------------------------------------------------------------
# The shipped model


def test_shipped_lenet_reaches_99_percent_on_the_mnist_test_set():
    data = load_mnist()
    classifier = load_classifier("mnist")
    images = torch.from_numpy(data.x_test).float().div(255).unsqueeze(1)
    labels, confidences = classifier.predict(images)
    accuracy = float((labels.numpy() == data.y_test).mean())
    assert accuracy >= 0.99
    assert classifier.class_names == [str(digit) for digit in range(10)]
    assert classifier.spec == MNIST_SPEC and classifier.name == "mnist" and "LeNet" in classifier.description
    assert confidences.min() > 0.1 and confidences.max() <= 1.0


def test_shipped_weights_load_without_warnings():
    from fooling_ext.classifiers.models import MNIST_LENET_WEIGHTS

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state_dict = torch.load(MNIST_LENET_WEIGHTS, map_location="cpu", weights_only=True)
    assert sum(tensor.numel() for tensor in state_dict.values()) == 431080
    assert MNIST_LENET_WEIGHTS.stat().st_size < 3_000_000


# ---------------------------------------------------------------------------------------------------------------
# Model formats give the same probabilities as calling the model


def test_nn_module_matches_direct_softmax(lenet, digits):
    classifier = load_classifier(lenet, spec=MNIST_SPEC)
    torch.testing.assert_close(classifier.probabilities(digits), direct_probabilities(lenet, digits), rtol=0, atol=1e-6)
    assert classifier.num_classes == 10 and classifier.name == "LeNet"


def test_torch_export_file_matches_direct_softmax(lenet, digits, tmp_path):
    program = torch.export.export(lenet, (digits,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "lenet.pt2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classifier = load_classifier(tmp_path / "lenet.pt2", spec=MNIST_SPEC)
        probabilities = classifier.probabilities(digits)
    torch.testing.assert_close(probabilities, direct_probabilities(lenet, digits), rtol=0, atol=1e-6)
    assert classifier.name == "lenet" and classifier.description == "torch.export program lenet.pt2"
    torch.testing.assert_close(classifier.probabilities(digits[:1]), probabilities[:1], rtol=0, atol=1e-6)


def test_torchscript_file_matches_direct_softmax_and_warns_once_in_our_words(lenet, digits, tmp_path):
    torch.jit.save(torch.jit.script(lenet), str(tmp_path / "lenet.ts"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classifier = load_classifier(tmp_path / "lenet.ts", spec=MNIST_SPEC)
        probabilities = classifier.probabilities(digits)
    assert [type(warning.message) for warning in caught] == [FutureWarning]
    assert "TorchScript is deprecated" in str(caught[0].message) and "torch.export" in str(caught[0].message)
    torch.testing.assert_close(probabilities, direct_probabilities(lenet, digits), rtol=0, atol=1e-6)


def test_a_lenet_state_dict_from_train_mnist_loads_with_the_mnist_spec(lenet, digits, tmp_path):
    torch.save(lenet.state_dict(), tmp_path / "mine.pt")
    classifier = load_classifier(tmp_path / "mine.pt")
    assert classifier.spec == MNIST_SPEC
    torch.testing.assert_close(classifier.probabilities(digits), direct_probabilities(lenet, digits), rtol=0, atol=1e-6)


def test_an_eleven_class_lenet_state_dict_loads_with_its_class_count(tmp_path):
    torch.save(LeNet(num_classes=11).state_dict(), tmp_path / "fooling_class.pt")
    classifier = load_classifier(tmp_path / "fooling_class.pt", class_names=[*map(str, range(10)), "fooling"])
    assert classifier.num_classes == 11 and classifier.class_names[-1] == "fooling"


def test_a_model_returning_probabilities_is_not_softmaxed_twice(digits):
    torch.manual_seed(2)
    model = Flat(1, 28, 5, softmax=True)
    spec = InputSpec(1, 28, 28, output="probabilities")
    classifier = load_classifier(model, spec=spec)
    with torch.no_grad():
        expected = model(digits)
    torch.testing.assert_close(classifier.probabilities(digits), expected, rtol=0, atol=1e-7)


def test_model_is_put_in_eval_mode(digits):
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(784, 4)).train()
    classifier = load_classifier(model, spec=MNIST_SPEC)
    first, second = classifier.probabilities(digits), classifier.probabilities(digits)
    assert not model.training
    torch.testing.assert_close(first, second, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing, resizing, 10 crops, chunks


def test_model_receives_scaled_and_normalised_input():
    recorder = Recorder()
    spec = InputSpec(3, 4, 5, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0), scale=255.0)
    classifier = Classifier(recorder, spec)
    images = torch.rand((2, 3, 4, 5), generator=torch.Generator().manual_seed(3))
    classifier.probabilities(images)
    mean = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)
    std = torch.tensor([2.0, 4.0, 5.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(recorder.seen, (images * 255 - mean) / std)
    assert spec.mean == (10.0, 20.0, 30.0)
    assert InputSpec(3, 4, 5, mean=0.5).mean == (0.5, 0.5, 0.5)


def test_resize_scales_to_the_model_size_with_antialiasing():
    recorder = Recorder()
    classifier = Classifier(recorder, InputSpec(1, 28, 28, resize=True))
    constant = torch.full((2, 1, 64, 48), 0.25)
    classifier.probabilities(constant)
    assert recorder.seen.shape == (2, 1, 28, 28)
    torch.testing.assert_close(recorder.seen, torch.full((2, 1, 28, 28), 0.25))

    # Antialiased bilinear resizing agrees with PIL's (which always antialiases) to within a grey level.
    pixels = np.random.default_rng(4).integers(0, 256, size=(64, 48), dtype=np.uint8)
    classifier.probabilities(torch.from_numpy(pixels).float().div(255)[None, None])
    reference = np.asarray(Image.fromarray(pixels).resize((28, 28), Image.BILINEAR), dtype=np.float32) / 255
    assert np.abs(recorder.seen[0, 0].numpy() - reference).max() < 2.5 / 255


def test_with_spec_scores_as_the_new_spec_says_and_leaves_the_original_alone(lenet, digits):
    classifier = load_classifier(lenet, spec=MNIST_SPEC)
    large = F.interpolate(digits, size=(56, 56), mode="nearest")
    resized = classifier.with_spec(dataclasses.replace(MNIST_SPEC, resize=True))
    expected = direct_probabilities(
        lenet, F.interpolate(large, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
    )
    torch.testing.assert_close(resized.probabilities(large), expected)
    assert resized.model is lenet and resized.class_names == classifier.class_names
    assert not classifier.spec.resize
    with pytest.raises(ValueError, match="expects images of shape"):
        classifier.probabilities(large)
    with pytest.raises(ValueError, match="takes 1 channel"):
        classifier.with_spec(InputSpec(3, 28, 28))


def test_with_spec_checks_a_new_model_input_on_a_blank_image(lenet):
    with pytest.raises(ValueError, match=r"rejected input of shape \[1, 1, 20, 20\]"):
        load_classifier(lenet, spec=MNIST_SPEC).with_spec(InputSpec(1, 20, 20))


def test_leading_classes_keep_their_columns_of_the_full_softmax(lenet, digits):
    classifier = load_classifier(lenet, spec=MNIST_SPEC)
    first = classifier.leading_classes(4)
    assert (first.num_classes, first.class_names) == (4, ["0", "1", "2", "3"])
    torch.testing.assert_close(first.probabilities(digits), direct_probabilities(lenet, digits)[:, :4])
    labels, _ = first.predict(digits)
    assert torch.equal(labels, first.probabilities(digits).argmax(1)) and labels.max() < 4
    assert first.leading_classes(2).class_names == ["0", "1"]
    with pytest.raises(ValueError, match=r"count must be an int in \[1, 4\]"):
        first.leading_classes(5)
    for bad in (0, 11, 2.0, True):
        with pytest.raises(ValueError, match=r"count must be an int in \[1, 10\]"):
            classifier.leading_classes(bad)


def test_ten_crop_average_equals_the_mean_over_crops_computed_by_hand():
    torch.manual_seed(5)
    model = Flat(2, 6, 4)
    classifier = Classifier(model, InputSpec(2, 9, 12, crops=6))
    images = torch.rand((3, 2, 9, 12), generator=torch.Generator().manual_seed(6))
    corners_and_centre = [
        images[:, :, 0:6, 0:6],
        images[:, :, 0:6, 6:12],
        images[:, :, 3:9, 0:6],
        images[:, :, 3:9, 6:12],
        images[:, :, 1:7, 3:9],  # centre: offsets (9 - 6) // 2 = 1 and (12 - 6) // 2 = 3
    ]
    crops = corners_and_centre + [torch.flip(crop, dims=[3]) for crop in corners_and_centre]
    expected = torch.stack([direct_probabilities(model, crop) for crop in crops]).mean(dim=0)
    torch.testing.assert_close(classifier.probabilities(images), expected, rtol=0, atol=1e-6)
    single_crop = direct_probabilities(model, corners_and_centre[4])
    assert (classifier.probabilities(images) - single_crop).abs().max() > 1e-3


def test_ten_crops_of_resized_images(lenet):
    spec = InputSpec(1, 32, 32, resize=True, crops=28)
    classifier = load_classifier(lenet, spec=spec)
    images = torch.rand((2, 1, 64, 64), generator=torch.Generator().manual_seed(7))
    resized = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    expected = torch.stack(
        [
            direct_probabilities(lenet, crop)
            for y, x in [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
            for crop in (resized[:, :, y : y + 28, x : x + 28], resized[:, :, y : y + 28, x : x + 28].flip(3))
        ]
    ).mean(dim=0)
    torch.testing.assert_close(classifier.probabilities(images), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("crops", [None, 24])
def test_chunked_evaluation_equals_one_batch(lenet, crops):
    images = torch.rand((23, 1, 28, 28), generator=torch.Generator().manual_seed(8))
    spec = InputSpec(1, 28, 28, resize=crops is not None, crops=crops)
    if crops is not None:
        spec = InputSpec(1, 32, 32, resize=True, crops=28)
    whole = load_classifier(lenet, spec=spec, max_batch=10_000).probabilities(images)
    chunked = load_classifier(lenet, spec=spec, max_batch=7).probabilities(images)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)


def test_numpy_images_are_accepted_and_predict_returns_the_argmax(lenet, digits):
    classifier = load_classifier(lenet, spec=MNIST_SPEC)
    probabilities = classifier.probabilities(digits.numpy().astype(np.float64))
    labels, confidences = classifier.predict(digits)
    torch.testing.assert_close(probabilities, direct_probabilities(lenet, digits), rtol=0, atol=1e-6)
    assert labels.tolist() == probabilities.argmax(dim=1).tolist()
    torch.testing.assert_close(confidences, probabilities.max(dim=1).values)


def test_channels_last_and_bfloat16_autocast_agree_with_float32(lenet, digits):
    reference = load_classifier(lenet, spec=MNIST_SPEC).probabilities(digits)
    # channels_last converts the module's own weights, so give it a copy.
    fast = load_classifier(copy.deepcopy(lenet), spec=MNIST_SPEC, channels_last=True).probabilities(digits)
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-5)
    half = load_classifier(lenet, spec=MNIST_SPEC, dtype=torch.bfloat16).probabilities(digits)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, reference, rtol=0, atol=5e-2)


# ---------------------------------------------------------------------------------------------------------------
# Gradients


def test_differentiable_probabilities_give_the_gradient_of_the_direct_softmax(lenet, digits):
    classifier = load_classifier(lenet, spec=MNIST_SPEC)
    images = digits.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(classifier.differentiable_probabilities(images)[:, 3].sum(), images)
    direct = digits.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(torch.softmax(lenet(direct), dim=1)[:, 3].sum(), direct)
    torch.testing.assert_close(gradient, expected, rtol=1e-5, atol=1e-8)
    assert gradient.abs().max() > 0


def test_log_probabilities_are_the_log_of_probabilities_and_differentiable(lenet, digits):
    classifier = load_classifier(lenet, spec=MNIST_SPEC)
    images = digits.clone().requires_grad_(True)
    log_probabilities = classifier.log_probabilities(images)
    torch.testing.assert_close(log_probabilities.exp().detach(), classifier.probabilities(digits), rtol=0, atol=1e-6)
    (gradient,) = torch.autograd.grad(log_probabilities[:, 5].sum(), images)
    assert torch.isfinite(gradient).all() and gradient.abs().max() > 0


def test_gradients_flow_through_resize_and_crops(lenet):
    classifier = load_classifier(lenet, spec=InputSpec(1, 32, 32, resize=True, crops=28))
    images = torch.rand((2, 1, 40, 40), generator=torch.Generator().manual_seed(9)).requires_grad_(True)
    (gradient,) = torch.autograd.grad(classifier.differentiable_probabilities(images)[:, 1].sum(), images)
    assert gradient.shape == images.shape and gradient.abs().sum() > 0


def test_a_model_that_detaches_its_input_is_reported_as_not_differentiable(digits):
    class Detaching(nn.Module):
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return inputs.detach().flatten(1)[:, :3]

    classifier = load_classifier(Detaching(), spec=MNIST_SPEC)
    with pytest.raises(ValueError, match=r"Detaching is not differentiable"):
        classifier.differentiable_probabilities(digits.clone().requires_grad_(True))


# ---------------------------------------------------------------------------------------------------------------
# Non-finite outputs


def test_nonfinite_outputs_are_counted_zeroed_and_warned_about_once():
    classifier = load_classifier(NaNRows(), spec=InputSpec(1, 4, 4))
    images = torch.zeros((5, 1, 4, 4))
    images[1, 0, 0, 0] = 0.7  # NaN row
    images[3, 0, 0, 0] = 0.95  # Inf row
    with pytest.warns(RuntimeWarning, match=r"NaN or Inf for 2 image\(s\)"):
        probabilities = classifier.probabilities(images)
    assert classifier.nonfinite_count == 2
    assert probabilities[[1, 3]].abs().sum() == 0
    torch.testing.assert_close(probabilities[[0, 2, 4]].sum(dim=1), torch.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = classifier.probabilities(images)
        log_probabilities = classifier.log_probabilities(images)
    assert classifier.nonfinite_count == 6
    torch.testing.assert_close(again, probabilities)
    assert torch.isneginf(log_probabilities[1]).all() and torch.isfinite(log_probabilities[0]).all()


def test_nonfinite_rows_in_one_crop_zero_the_whole_image():
    classifier = load_classifier(NaNRows(), spec=InputSpec(1, 6, 6, crops=4))
    images = torch.zeros((2, 1, 6, 6))
    images[1, 0, 2, 2] = 0.7  # top-left pixel of the bottom-right crop only
    with pytest.warns(RuntimeWarning, match=r"for 1 image"):
        probabilities = classifier.probabilities(images)
    assert probabilities[1].abs().sum() == 0 and probabilities[0].sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------------
# Bad input


def test_a_missing_model_path_is_named(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"no built-in model and no model file called '.*absent\.pt2': the "
        r"built-in models are mnist, imagenet",
    ):
        load_classifier(tmp_path / "absent.pt2", spec=MNIST_SPEC)


@pytest.mark.parametrize(
    "name, content",
    [("random.pt", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))), ("notes.txt", b"hello\n")],
)
def test_a_file_that_is_not_a_model_is_named_with_the_accepted_formats(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')} is not a model file; accepted: a torch.export"):
        load_classifier(tmp_path / name, spec=MNIST_SPEC)


def test_a_foreign_state_dict_is_explained(tmp_path):
    torch.save(nn.Linear(3, 2).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match=r"weights\.pt holds a state_dict \(weights without the network\)"):
        load_classifier(tmp_path / "weights.pt", spec=MNIST_SPEC)


def test_a_pickled_module_is_not_unpickled(tmp_path):
    torch.save(nn.Linear(3, 2), tmp_path / "whole.pt")
    with pytest.raises(ValueError, match=r"whole\.pt is a torch\.save archive of a Python object"):
        load_classifier(tmp_path / "whole.pt", spec=MNIST_SPEC)


def test_a_model_file_without_a_spec_is_an_error(lenet, digits, tmp_path):
    program = torch.export.export(lenet, (digits,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "lenet.pt2")
    with pytest.raises(ValueError, match=r"lenet\.pt2: a model file needs an input spec"):
        load_classifier(tmp_path / "lenet.pt2")
    with pytest.raises(ValueError, match=r"needs an input spec: load_classifier\(model, spec=InputSpec"):
        load_classifier(lenet)


def test_an_exported_program_with_a_fixed_batch_is_explained(lenet, digits, tmp_path):
    torch.export.save(torch.export.export(lenet, (digits,)), tmp_path / "fixed.pt2")
    with pytest.raises(ValueError, match=r"exported for a fixed batch of 7 \(input shape \[7, 1, 28, 28\]\).*dynamic"):
        load_classifier(tmp_path / "fixed.pt2", spec=MNIST_SPEC)


def test_an_input_spec_the_model_rejects_reports_the_shapes(lenet, digits, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"rejected input of shape \[1, 3, 28, 28\] \(made from the input spec "
        r"\[B, 3, 28, 28\]\): RuntimeError",
    ):
        load_classifier(lenet, spec=InputSpec(3, 28, 28))
    program = torch.export.export(lenet, (digits,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "lenet.pt2")
    with pytest.raises(
        ValueError,
        match=r"rejected input of shape \[1, 1, 32, 32\].*exported for inputs of shape "
        r"\[N, 1, 28, 28\]",
    ):
        load_classifier(tmp_path / "lenet.pt2", spec=InputSpec(1, 32, 32))


@pytest.mark.parametrize(
    "output, message",
    [
        (
            lambda inputs: inputs.flatten(1)[:, :10, None],
            r"returned shape \[1, 10, 1\] for 1 input\(s\); expected \[1, K\]",
        ),
        (lambda inputs: inputs.flatten(1)[:1, :10].expand(3, 10), r"returned shape \[3, 10\] for 1 input"),
        (lambda inputs: (inputs.flatten(1)[:, :10],), r"returned tuple; it must return one tensor of shape \[B, K\]"),
    ],
)
def test_model_output_that_is_not_b_by_k_is_an_error(output, message):
    with pytest.raises(ValueError, match=message):
        load_classifier(output, spec=MNIST_SPEC)


def test_class_count_must_match_the_class_names(lenet):
    with pytest.raises(ValueError, match=r"returns 10 classes but 3 class names were given"):
        load_classifier(lenet, spec=MNIST_SPEC, class_names=["a", "b", "c"])


def test_a_model_whose_class_count_changes_is_an_error():
    calls = []

    def unstable(inputs: torch.Tensor) -> torch.Tensor:
        calls.append(len(inputs))
        return inputs.flatten(1)[:, : 4 if len(calls) == 1 else 5]

    classifier = load_classifier(unstable, spec=MNIST_SPEC)
    with pytest.raises(ValueError, match=r"model output has 5 classes, but the classifier has 4 class names"):
        classifier.probabilities(torch.zeros((2, 1, 28, 28)))


def test_output_declared_as_probabilities_must_be_probabilities(lenet):
    with pytest.raises(ValueError, match=r"declared to return probabilities.*declare output='logits'"):
        load_classifier(lenet, spec=InputSpec(1, 28, 28, output="probabilities"))


def test_probabilities_declared_as_logits_are_warned_about():
    with pytest.warns(UserWarning, match=r"declare output='probabilities' so that the softmax is not applied twice"):
        load_classifier(Flat(1, 28, 4, softmax=True), spec=MNIST_SPEC)


@pytest.mark.parametrize(
    "images, error, message",
    [
        (torch.zeros((1, 28, 28)), ValueError, r"images must be 4-D \[B, C, H, W\], got shape \[1, 28, 28\]"),
        (torch.zeros((2, 3, 28, 28)), ValueError, r"expects 1 channel\(s\), got images of shape \[2, 3, 28, 28\]"),
        (torch.zeros((2, 1, 32, 28)), ValueError, r"expects images of shape \[B, 1, 28, 28\], got \[2, 1, 32, 28\]"),
        (torch.full((2, 1, 28, 28), 1.5), ValueError, r"must lie in \[0, 1\], found values in \[1\.5, 1\.5\]"),
        (torch.linspace(-0.25, 1, 784).view(1, 1, 28, 28), ValueError, r"found values in \[-0\.25, 1\]"),
        (torch.full((1, 1, 28, 28), float("nan")), ValueError, r"images contain NaN or Inf"),
        (
            torch.zeros((1, 1, 28, 28), dtype=torch.uint8),
            ValueError,
            r"floating point in \[0, 1\], got dtype torch.uint8",
        ),
        (torch.zeros((0, 1, 28, 28)), ValueError, r"at least one image"),
        ([[0.0]], TypeError, r"torch\.Tensor or numpy\.ndarray, got list"),
    ],
)
def test_bad_images_are_rejected_with_the_reason(lenet, images, error, message):
    classifier = load_classifier(lenet, spec=MNIST_SPEC)
    with pytest.raises(error, match=message):
        classifier.probabilities(images)
    with pytest.raises(error, match=message):
        classifier.differentiable_probabilities(images)


def test_values_within_the_tolerance_of_the_range_are_accepted(lenet):
    classifier = load_classifier(lenet, spec=MNIST_SPEC)
    images = torch.full((1, 1, 28, 28), 1.0 + 5e-7)
    assert classifier.probabilities(images).sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=0, height=28, width=28), r"channels must be a positive integer, got 0"),
        (
            dict(channels=3, height=28, width=28, mean=(0.1, 0.2)),
            r"mean needs 1 or 3 values \(one per channel\), got 2",
        ),
        (dict(channels=1, height=28, width=28, std=0.0), r"std must be positive"),
        (
            dict(channels=1, height=28, width=28, output="softmax"),
            r"output must be one of \('logits', 'probabilities'\)",
        ),
        (dict(channels=1, height=28, width=28, crops=29), r"crops=29 does not fit in 28x28 images"),
    ],
)
def test_invalid_input_specs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InputSpec(**kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Devices


def test_device_resolution(monkeypatch):
    monkeypatch.delenv("FOOLING_BACKEND", raising=False)
    assert resolve_device("cpu") == torch.device("cpu")
    auto = torch.device("cuda", torch.cuda.current_device()) if cuda_available() else torch.device("cpu")
    assert resolve_device("auto") == auto
    monkeypatch.setenv("FOOLING_BACKEND", "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"unknown device 'tpu7'"):
        resolve_device("tpu7")
    with pytest.raises(ValueError, match=r"no backend runs on device meta"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is absent")
def test_asking_for_cuda_without_cuda_is_a_clear_error(lenet):
    with pytest.raises(ValueError, match=r"device 'cuda' requested but CUDA is not available"):
        load_classifier(lenet, spec=MNIST_SPEC, device="cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(digits):
    cpu = load_classifier("mnist").probabilities(digits)
    gpu = load_classifier("mnist", device="cuda")
    probabilities = gpu.probabilities(digits)
    assert probabilities.device.type == "cuda"
    torch.testing.assert_close(probabilities.cpu(), cpu, rtol=0, atol=1e-5)
    fast = load_classifier("mnist", device="cuda", channels_last=True, dtype=torch.float16).probabilities(digits)
    torch.testing.assert_close(fast.cpu(), cpu, rtol=0, atol=2e-2)
    torch.testing.assert_close(gpu.to("cpu").probabilities(digits), cpu, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Describing a model: JSON and command-line flags


@pytest.fixture
def exported_lenet(lenet, digits, tmp_path):
    program = torch.export.export(lenet, (digits,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "digits.pt2")
    (tmp_path / "names.txt").write_text("".join(f"digit {digit}\n" for digit in range(10)) + "\n")
    return tmp_path / "digits.pt2"


def test_json_description_with_relative_paths(exported_lenet, lenet, digits, tmp_path):
    description = {
        "path": "digits.pt2",
        "channels": 1,
        "height": 28,
        "width": 28,
        "classes": "names.txt",
        "name": "my-digits",
    }
    (tmp_path / "model.json").write_text(json.dumps(description))
    classifier = load_classifier(tmp_path / "model.json")
    assert classifier.name == "my-digits" and classifier.class_names[3] == "digit 3"
    assert classifier.spec == MNIST_SPEC
    torch.testing.assert_close(classifier.probabilities(digits), direct_probabilities(lenet, digits), rtol=0, atol=1e-6)


def test_model_spec_round_trips_through_a_dict():
    spec = ModelSpec(
        path="model.pt2",
        channels=3,
        height=32,
        width=32,
        mean=(0.5, 0.4, 0.3),
        std=(0.2,),
        classes=("cat", "dog"),
        crops=28,
        resize=True,
    )
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["mean"] == [0.5, 0.4, 0.3]
    assert json.loads(json.dumps(spec.to_dict()))["classes"] == ["cat", "dog"]
    assert spec.input_spec() == InputSpec(3, 32, 32, mean=(0.5, 0.4, 0.3), std=0.2, resize=True, crops=28)


def test_model_spec_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown model description key\(s\) \['colour'\]"):
        ModelSpec.from_dict({"path": "mnist", "colour": True})
    with pytest.raises(ValueError, match=r"needs 'path'"):
        ModelSpec.from_dict({"channels": 1})
    with pytest.raises(ValueError, match=r"sets \['channels'\] but lacks \['height', 'width'\]"):
        ModelSpec(path="model.pt2", channels=1).input_spec()
    with pytest.raises(ValueError, match=r"built-in 'mnist' model takes 1 channel\(s\), not 3"):
        ModelSpec(path="mnist", channels=3).input_spec()
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        ModelSpec.from_json(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match=r"model description not found"):
        ModelSpec.from_json(tmp_path / "absent.json")
    with pytest.raises(FileNotFoundError, match=r"class names file not found"):
        ModelSpec(path="mnist", classes=str(tmp_path / "absent.txt")).class_names()


def test_builtin_model_description_overrides_its_defaults():
    classifier = load_classifier({"path": "mnist", "resize": True})
    assert classifier.spec == InputSpec(1, 28, 28, resize=True)
    torch.testing.assert_close(
        classifier.probabilities(torch.zeros((1, 1, 56, 56))), classifier.probabilities(torch.zeros((1, 1, 28, 28)))
    )


def parse_model_flags(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_flags_describe_a_model_file(exported_lenet, lenet, digits, tmp_path):
    args = parse_model_flags(
        [
            "--model",
            str(exported_lenet),
            "--model-channels",
            "1",
            "--model-size",
            "28x28",
            "--model-classes",
            str(tmp_path / "names.txt"),
            "--backend",
            "cpu",
        ]
    )
    classifier = classifier_from_args(args)
    assert classifier.class_names[0] == "digit 0" and classifier.spec == MNIST_SPEC
    torch.testing.assert_close(classifier.probabilities(digits), direct_probabilities(lenet, digits), rtol=0, atol=1e-6)


def test_command_line_flags_override_a_json_description(exported_lenet, tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"path": "digits.pt2", "channels": 1, "height": 28, "width": 28}))
    args = parse_model_flags(
        [
            "--model",
            str(tmp_path / "model.json"),
            "--model-size",
            "36",
            "--model-resize",
            "--crops",
            "28",
            "--model-mean",
            "0.1",
            "--model-std",
            "0.5",
            "--model-scale",
            "2",
        ]
    )
    classifier = classifier_from_args(args)
    assert classifier.spec == InputSpec(1, 36, 36, mean=0.1, std=0.5, scale=2.0, resize=True, crops=28)
    assert classifier.device == resolve_device("auto")


def test_default_flags_give_the_shipped_lenet():
    classifier = classifier_from_args(parse_model_flags([]))
    assert classifier.name == "mnist" and classifier.num_classes == 10


@pytest.mark.parametrize("flags", [["--model-size", "28by28"], ["--model-mean", "a,b"], ["--backend", "gpu"]])
def test_malformed_flags_are_usage_errors(flags, capsys):
    with pytest.raises(SystemExit):
        parse_model_flags(flags)
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("text, size", [("28x28", (28, 28)), ("224", (224, 224)), (" 32X16 ", (32, 16))])
def test_sizes_are_n_or_h_by_w(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["28by28", "0x5", "28x", "1x2x3", "-4"])
def test_malformed_sizes_are_argument_errors(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a size like 28x28 or 224"):
        parse_size(text)
