"""Evolution against the ImageNet model (EfficientNet-Lite0 standing in for CaffeNet): colour CPPNs and pixel
genomes rendered at the paper's 256 x 256, scored resized to 224 or as the paper's 10 crops, and the run folder
with all 1000 classes. Small sizes, CPU."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fooling_ext.classifiers import imagenet_spec, load_classifier
from fooling_ext.cli import main
from fooling_ext.search import EvolveConfig, evolve
from fooling_ext.search.encodings import quantize_pixels
from fooling_ext.search.evolve import classifier_for_renders

pytestmark = pytest.mark.imagenet


@pytest.fixture(scope="module")
def cli_run(imagenet, tmp_path_factory):
    """A run folder made by `fooling evolve --model imagenet` with the paper's 10 crops."""
    out = tmp_path_factory.mktemp("imagenet") / "run"
    status = main(
        [
            "evolve",
            "--model",
            "imagenet",
            "--crops",
            "224",
            "--generations",
            "1",
            "--batch",
            "2",
            "--seed",
            "7",
            "--backend",
            "cpu",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    return out


def small_run(imagenet, encoding: str, generations: int, batch: int):
    """A run with top-class insertion: each child fills at most one cell, which keeps the copies into a
    1000-cell archive of 256 x 256 images small (the default fills every cell from the first batch)."""
    config = EvolveConfig(
        model="imagenet",
        encoding=encoding,
        generations=generations,
        batch=batch,
        seed=7,
        backend="cpu",
        insertion="top",
    )
    return evolve(config, classifier=imagenet, progress=False)


def test_colour_cppns_render_at_256_and_the_model_sees_them_resized_to_224(imagenet):
    result = small_run(imagenet, "cppn", generations=2, batch=6)
    cfg = result.config
    assert cfg["run"]["image_size"] == [256, 256] and cfg["encoding"]["channels"] == 3
    assert cfg["classifier"]["spec"]["height"] == 224 and cfg["classifier"]["spec"]["resize"] is True
    archive = result.archive
    assert archive.images.shape == (1000, 3, 256, 256) and archive.num_occupied() >= 1
    # Colour, not grey: the HSL outputs give the three channels different values.
    assert bool((archive.images[:, 0] != archive.images[:, 1]).any())

    # Every elite's confidence is what the model gives its class for the genome rendered again and resized by
    # hand: the run scored exactly this image, through this resize.
    cells = archive.occupied_cells()
    encoding = result_encoding(cfg)
    genomes = encoding.from_tensors({k: v.index_select(0, cells) for k, v in archive.genomes.items()})
    rendered = encoding.render(genomes)
    resized = F.interpolate(rendered, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
    expected = imagenet.probabilities(resized)[torch.arange(len(cells)), cells]
    torch.testing.assert_close(archive.confidence[cells], expected, rtol=0, atol=1e-5)


def result_encoding(cfg):
    from fooling_ext.search.encodings import make_encoding

    enc = dict(cfg["encoding"])
    return make_encoding(enc.pop("encoding"), enc.pop("channels"), enc.pop("height"), enc.pop("width"), **enc)


def test_the_run_folder_shows_all_1000_classes_and_the_papers_figures(cli_run):
    out = cli_run
    cfg = json.loads((out / "config.json").read_text())
    spec = cfg["classifier"]["spec"]
    assert (spec["height"], spec["width"], spec["crops"]) == (256, 256, 224)  # 10 crops cut from the render
    assert cfg["run"]["batch"] == 2 and cfg["run"]["image_size"] == [256, 256]
    grids = sorted(p.name for p in out.glob("grid*.png"))
    assert grids == [f"grid_{s:04d}-{s + 99:04d}.png" for s in range(0, 1000, 100)] + ["grid_top50.png"]
    assert len(list((out / "images").glob("*.png"))) == 1000
    summary = json.loads((out / "summary.json").read_text())
    with np.load(out / "archive.npz") as archive:
        conf = archive["confidence"].astype(np.float64)
    assert summary["median"] == pytest.approx(float(np.median(conf)))
    assert summary["n99"] == int((conf >= 0.99).sum())
    assert summary["classes"][1]["name"] == "goldfish" and "CaffeNet" in summary["model_description"]
    report = (out / "report.txt").read_text()
    assert "classes: 1000  median confidence:" in report and ">= 99%:" in report


def test_ten_crops_are_cut_from_the_256_render_and_averaged(imagenet):
    crops = load_classifier("imagenet", spec=imagenet_spec(crops=224))
    adapted = classifier_for_renders(crops, 256, 256)
    assert (adapted.spec.height, adapted.spec.width, adapted.spec.crops) == (256, 256, 224)
    images = torch.rand((1, 3, 256, 256), generator=torch.Generator().manual_seed(3))
    offsets = [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]
    cut = [images[:, :, y : y + 224, x : x + 224] for y, x in offsets]
    cut += [c.flip(-1) for c in cut]
    by_hand = torch.stack([imagenet.probabilities(c) for c in cut]).mean(dim=0)
    torch.testing.assert_close(adapted.probabilities(images), by_hand, rtol=0, atol=1e-6)
    assert crops.spec.height == 224  # the classifier given is left as it was


def test_classifier_for_renders_keeps_a_model_that_takes_the_render_size(imagenet):
    assert classifier_for_renders(imagenet, 224, 224) is imagenet
    resized = classifier_for_renders(imagenet, 256, 256)
    assert resized.spec.resize and resized.model is imagenet.model and resized is not imagenet
    assert classifier_for_renders(resized, 300, 300) is resized
    look_alike = SimpleNamespace(spec=imagenet.spec, model=imagenet.model)  # e.g. a wrapper that drops a class
    assert classifier_for_renders(look_alike, 256, 256) is look_alike


def test_pixel_genomes_evolve_at_256_in_colour(imagenet):
    archive = small_run(imagenet, "direct", generations=2, batch=3).archive
    assert archive.genomes["genes"].shape == (1000, 3, 256, 256)
    cells = archive.occupied_cells()
    genes = archive.genomes["genes"].index_select(0, cells)
    images = quantize_pixels(genes)  # a pixel genome's image: its genes on the 8-bit grid (the default)
    assert bool((images[:, 0] != images[:, 1]).any()) and not torch.equal(images, genes)
    resized = F.interpolate(images, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
    expected = imagenet.probabilities(resized)[torch.arange(len(cells)), cells]
    torch.testing.assert_close(archive.confidence[cells], expected, rtol=0, atol=1e-5)
