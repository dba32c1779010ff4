"""The original code's colour mapping (colour mode "hls8") against OpenCV itself, and 8-bit pixels (quantize).

The authors' code writes each CPPN output as the byte trunc(255 |v|) into an 8-bit H, L, S image and converts it
with OpenCV's cvtColor(HLS2BGR); OpenCV (opencv-python-headless, a test-only dependency) is the oracle here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genomes import random_population

import fooling_ext as fx
from fooling_ext.core.cppn import CPPNPopulation
from fooling_ext.core.direct import DirectPopulation
from fooling_ext.core.reference.render import (
    direct_reference,
    hls8_to_rgb_bytes,
    intensity,
    intensity_byte,
    network_outputs,
    render_reference,
)
from fooling_ext.core.render import hls8_to_rgb
from fooling_ext.search.encodings import CPPNEncoding, DirectEncoding


def opencv():
    """The oracle, imported where a test needs it: the tests that compare backends run without it (e.g. on a GPU
    machine without the [test] extra)."""
    return pytest.importorskip("cv2", reason="the OpenCV oracle needs the [test] extra (opencv-python-headless)")


def every_byte_triple() -> np.ndarray:
    """All 256^3 (H, L, S) byte triples as one uint8 image [256, 65536, 3]."""
    h, l, s = np.meshgrid(np.arange(256), np.arange(256), np.arange(256), indexing="ij")  # noqa: E741
    return np.stack([h, l, s], -1).astype(np.uint8).reshape(256, 65536, 3)


def test_hls8_conversion_equals_opencv_on_every_byte_triple():
    cv2 = opencv()
    hls = every_byte_triple()
    want = cv2.cvtColor(hls, cv2.COLOR_HLS2RGB)
    got = hls8_to_rgb(torch.from_numpy(hls)).numpy()
    mismatched = int((got != want).any(-1).sum())
    assert mismatched == 0, f"{mismatched} of 16777216 triples differ from OpenCV"
    # Not vacuous: hues past 180 half-degrees wrap round (byte 200 = byte 20), and saturation 0 is grey.
    assert np.array_equal(got[200], got[20]) and not np.array_equal(got[20], got[40])
    grey = got[:, ::256]  # (l, s) = (k, 0) at column 256 k
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 0], grey[..., 2])


def test_numpy_reference_of_hls8_equals_opencv():
    cv2 = opencv()
    hls = every_byte_triple()[:, ::7]  # every hue, a seventh of the (L, S) pairs
    want = cv2.cvtColor(np.ascontiguousarray(hls), cv2.COLOR_HLS2RGB)
    got = np.stack(hls8_to_rgb_bytes(hls[..., 0], hls[..., 1], hls[..., 2]), -1)
    assert np.array_equal(got, want)


def test_hls8_conversion_checks_its_input():
    with pytest.raises(ValueError, match="uint8"):
        hls8_to_rgb(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="last dimension of 3"):
        hls8_to_rgb(torch.zeros(4, 2, dtype=torch.uint8))


@pytest.mark.parametrize("hidden", [(0, 0), (2, 12)])
def test_hls8_render_equals_opencv_on_the_references_bytes(device, hidden):
    pop = random_population(10, 3, hidden=hidden, seed=17 + hidden[1])
    got = fx.render(pop.to(device), 23, 31, color="hls8").cpu().numpy()
    assert np.array_equal(got, render_reference(pop, 23, 31, color="hls8"))
    # The oracle: the reference's bytes trunc(255 min(|v|, 1)) of the H, L, S outputs through cv2.cvtColor.
    cv2 = opencv()
    raw = np.stack([np.stack(network_outputs(pop.genome(b), 23, 31)) for b in range(pop.batch)])
    raw = raw.reshape(pop.batch, 3, 23, 31)
    hls = intensity_byte(intensity(raw)).astype(np.uint8)  # [B, 3, H, W]
    want = np.stack(
        [cv2.cvtColor(np.ascontiguousarray(img.transpose(1, 2, 0)), cv2.COLOR_HLS2RGB) for img in hls]
    ).transpose(0, 3, 1, 2)
    assert np.array_equal(np.round(got * 255).astype(np.uint8), want)
    assert np.array_equal(got, (want / np.float32(255)).astype(np.float32))
    assert got.std() > 0.05  # the images carry structure


def test_hls8_is_always_8_bit_and_differs_from_float_hsl(device):
    pop = random_population(6, 3, hidden=(1, 8), seed=4).to(device)
    hls8 = fx.render(pop, 16, 16, color="hls8")
    assert torch.equal(hls8, fx.render(pop, 16, 16, color="hls8", quantize=True))
    assert torch.equal(hls8 * 255, (hls8 * 255).round())
    hsl = fx.render(pop, 16, 16, color="hsl")
    assert (hls8 - hsl).abs().max() > 0.2  # the hue circle is 510 degrees long in hls8


@pytest.mark.parametrize("channels,color", [(1, "hsl"), (3, "hsl"), (3, "hsv")])
def test_quantized_render_matches_reference(device, channels, color):
    pop = random_population(8, channels, hidden=(1, 10), seed=31 + channels)
    got = fx.render(pop.to(device), 20, 18, color=color, quantize=True).cpu().numpy()
    assert np.array_equal(got, render_reference(pop, 20, 18, color=color, quantize=True))
    plain = fx.render(pop.to(device), 20, 18, color=color).cpu().numpy()
    if channels == 1:  # grey pixels: exactly trunc(255 a) / 255 of the float image
        assert np.array_equal(got, np.trunc(plain * np.float32(255)).astype(np.float32) / np.float32(255))
        assert np.array_equal(got * 255, np.round(got * 255))
    assert 0 < np.abs(got - plain).max() < 0.05


def test_quantize_of_known_values():
    genome = {"num_outputs": 1, "activations": ["input"] * 4 + ["linear"], "edges": [[0, 4, 3.0]]}  # out = x
    pop = CPPNPopulation.from_genomes([genome])
    img = fx.render(pop, 1, 5, quantize=True)[0, 0, 0]  # x = -1, -0.5, 0, 0.5, 1
    assert torch.equal(img, torch.tensor([255.0, 127.0, 0.0, 127.0, 255.0]) / 255)
    with pytest.raises(ValueError, match="quantize must be a bool"):
        fx.render(pop, 4, quantize=1)


def test_direct_encoding_quantizes_pixels_not_genes():
    genes = torch.rand(5, 3, 7, 9, generator=torch.Generator().manual_seed(2))
    genes[0, 0, 0, :4] = torch.tensor([0.0, 1.0, 0.5, 1 / 255])
    pop = DirectPopulation(genes.clone())
    enc = DirectEncoding(3, 7, 9, quantize=True)
    img = enc.render(pop)
    assert np.array_equal(img.numpy(), direct_reference(genes.numpy(), quantize=True))
    assert torch.equal(img[0, 0, 0, :4], torch.tensor([0.0, 255.0, 127.0, 1.0]) / 255)
    assert torch.equal(pop.genes, genes)  # the genes stay float
    out = torch.empty_like(genes)
    assert enc.render(pop, out=out) is out and torch.equal(out, img)
    assert torch.equal(DirectEncoding(3, 7, 9).render(pop), genes)


def test_cppn_encoding_passes_colour_and_quantize_on():
    pop = random_population(4, 3, hidden=(1, 6), seed=9)
    for color, quantize in (("hls8", False), ("hsv", True)):
        enc = CPPNEncoding(3, 12, 12, color=color, quantize=quantize)
        assert enc.config()["quantize"] is quantize and enc.config()["color"] == color
        assert np.array_equal(enc.render(pop).numpy(), render_reference(pop, 12, 12, color=color, quantize=quantize))
