"""Batched rendering against the NumPy reference, the true functions, and hand-made networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from genomes import random_population

import fooling_ext as fx
from fooling_ext import _core
from fooling_ext.core.cppn import CPPNPopulation
from fooling_ext.core.reference.render import activation, exact_activation, render_reference


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("coords", ["normalized", "pixel"])
@pytest.mark.parametrize("hidden", [(0, 0), (1, 6), (20, 30)])
def test_backend_matches_numpy_reference(device, channels, coords, hidden):
    pop = random_population(12, channels, hidden=hidden, seed=hash((channels, coords, hidden)) % 1000)
    got = fx.render(pop.to(device), 19, 27, coords=coords).cpu().numpy()
    want = render_reference(pop, 19, 27, coords=coords)
    assert got.shape == (12, channels, 19, 27)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # Guard against a vacuous comparison: the images carry structure.
    assert got.std() > 0.05


def test_hsv_matches_reference(device):
    pop = random_population(8, 3, hidden=(2, 8), seed=5)
    got = fx.render(pop.to(device), 16, 16, color="hsv").cpu().numpy()
    np.testing.assert_allclose(got, render_reference(pop, 16, 16, color="hsv"), rtol=0, atol=1e-6)
    assert not np.allclose(got, render_reference(pop, 16, 16, color="hsl"), atol=1e-3)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (3, 1024), (64, 33)])
def test_any_image_size(device, shape):
    pop = random_population(3, 1, hidden=(0, 5), seed=11)
    got = fx.render(pop.to(device), *shape).cpu().numpy()
    np.testing.assert_allclose(got, render_reference(pop, *shape), rtol=0, atol=1e-6)


def test_bad_image_sizes():
    pop = CPPNPopulation.initial(2)
    for h, w in ((0, 5), (5, 0), (1025, 4), (4, 2000)):
        with pytest.raises(ValueError, match="must be an int in"):
            fx.render(pop, h, w)
    with pytest.raises(ValueError, match="coords must be one of"):
        fx.render(pop, 4, coords="polar")
    with pytest.raises(ValueError, match="color must be one of"):
        fx.render(pop, 4, color="rgb")


@pytest.mark.parametrize("act", range(len(fx.core.ACTIVATIONS)))
def test_activations_are_accurate_and_match_reference(act):
    x = np.concatenate([np.linspace(-50, 50, 400_001), np.linspace(-3000, 3000, 100_001)]).astype(np.float32)
    core = _core.activation_values(act, x)
    np.testing.assert_array_equal(core, activation(act, x))
    err = np.abs(core.astype(np.float64) - exact_activation(act, x.astype(np.float64)))
    assert err.max() < 3e-7


def test_activation_known_values():
    x = np.array([0.0, math.pi / 2, -math.pi / 2, 2.0, -6.0, 100.0], dtype=np.float32)
    sine, sigmoid, gauss, linear = (_core.activation_values(a, x) for a in range(4))
    np.testing.assert_allclose(sine[:3], [0.0, 1.0, -1.0], atol=2e-7)
    np.testing.assert_allclose(sigmoid[[0, 3, 5]], [0.0, 2 / (1 + math.exp(-2)) - 1, 1.0], atol=2e-7)
    np.testing.assert_allclose(gauss[[0, 3]], [1.0, math.exp(-4)], atol=2e-7)
    np.testing.assert_allclose(linear[[0, 3, 4]], [0.0, 2 / 3, -1.0], atol=1e-7)


def test_non_finite_sums_never_reach_the_image():
    # Weights of 3e38 overflow the sums to +-inf and inf - inf = NaN inside the network.
    g = {
        "num_outputs": 1,
        "activations": ["input"] * 4 + ["linear", "sine", "sine"],
        "edges": [[0, 5, 3e38], [1, 5, 3e38], [0, 6, -3e38], [1, 6, 3e38], [5, 4, 3e38], [6, 4, -3e38]],
    }
    img = fx.render(CPPNPopulation.from_genomes([g]), 9, 9).numpy()
    assert np.isfinite(img).all() and img.min() >= 0 and img.max() <= 1


def _single(edges, acts, outputs=1):
    return CPPNPopulation.from_genomes([{"num_outputs": outputs, "activations": ["input"] * 4 + acts, "edges": edges}])


def test_known_pixels_linear_of_x():
    # out = linear(3x) = clip(3x, -3, 3) / 3 = x on [-1, 1]; pixel = |x|.
    img = fx.render(_single([[0, 4, 3.0]], ["linear"]), 3, 5).numpy()[0, 0]
    np.testing.assert_allclose(img, np.tile([1.0, 0.5, 0.0, 0.5, 1.0], (3, 1)), atol=1e-7)


def test_known_pixels_gaussian_of_distance_and_pixel_coords():
    # out = gaussian(d): 1 at the centre, exp(-2) at the corners (d = sqrt 2).
    img = fx.render(_single([[2, 4, 1.0]], ["gaussian"]), 3, 3).numpy()[0, 0]
    assert img[1, 1] == pytest.approx(1.0, abs=1e-7)
    assert img[0, 0] == pytest.approx(math.exp(-2.0), abs=2e-7)
    # In pixel coordinates x is the column index: linear(x) = clip(col, -3, 3) / 3.
    img = fx.render(_single([[0, 4, 1.0]], ["linear"]), 2, 6, coords="pixel").numpy()[0, 0]
    np.testing.assert_allclose(img[0], [0, 1 / 3, 2 / 3, 1, 1, 1], atol=1e-7)


def test_known_colours_hsl():
    # Outputs (H, L, S) from the bias: H = 0 (red), L = 0.5, S = 1 -> pure red.
    edges = [[3, 4, 0.0], [3, 5, 1.5], [3, 6, 3.0]]
    img = fx.render(_single(edges, ["linear", "linear", "linear"], outputs=3), 2, 2).numpy()[0]
    np.testing.assert_allclose(img[:, 0, 0], [1.0, 0.0, 0.0], atol=1e-7)
    # H = 1/3 is green.
    edges[0][2] = 1.0
    img = fx.render(_single(edges, ["linear", "linear", "linear"], outputs=3), 2, 2).numpy()[0]
    np.testing.assert_allclose(img[:, 0, 0], [0.0, 1.0, 0.0], atol=1e-6)


def test_hidden_chain_in_topological_order():
    # Storage order is reversed with respect to evaluation order: 7 -> 6 -> 5 -> out.
    edges = [[5, 4, 1.0], [6, 5, 2.0], [7, 6, 1.5], [3, 7, 0.5]]
    img = fx.render(_single(edges, ["linear", "sine", "linear", "gaussian"]), 1, 1).numpy()[0, 0, 0, 0]
    h7 = math.exp(-0.25)
    h6 = max(-3.0, min(3.0, 1.5 * h7)) / 3.0
    h5 = math.sin(2.0 * h6)
    assert img == pytest.approx(abs(max(-3, min(3, h5)) / 3.0), abs=2e-7)


def test_nodes_no_output_depends_on_do_not_change_the_image():
    base = [[0, 4, 2.0], [1, 4, -1.0]]
    with_dead_branch = base + [[0, 5, 5.0], [5, 6, 3.0]]
    a = fx.render(_single(base, ["sine"]), 8, 8)
    b = fx.render(_single(with_dead_branch, ["sine", "gaussian", "sigmoid"]), 8, 8)
    assert torch.equal(a, b)


def test_out_buffer_is_written_in_place():
    pop = random_population(4, 3, hidden=(2, 4), seed=3)
    out = torch.full((4, 3, 10, 12), -1.0)
    ret = fx.render(pop, 10, 12, out=out)
    assert ret.data_ptr() == out.data_ptr()
    np.testing.assert_allclose(out.numpy(), render_reference(pop, 10, 12), atol=1e-6)
    with pytest.raises(ValueError, match=r"out must have shape \[4, 3, 10, 12\]"):
        fx.render(pop, 10, 12, out=torch.zeros(4, 1, 10, 12))
    with pytest.raises(ValueError, match="out must have dtype torch.float32"):
        fx.render(pop, 10, 12, out=torch.zeros(4, 3, 10, 12, dtype=torch.float64))
    with pytest.raises(ValueError, match="out must be contiguous"):
        fx.render(pop, 10, 12, out=torch.zeros(4, 3, 12, 10).transpose(2, 3))


def test_empty_population_renders_nothing():
    out = fx.render(CPPNPopulation.empty(0), 5, 5)
    assert out.shape == (0, 1, 5, 5)


def test_thread_count_does_not_change_images():
    pop = random_population(16, 3, hidden=(5, 20), seed=8)
    before = _core.num_threads()
    try:
        _core.set_num_threads(1)
        one = fx.render(pop, 40, 40)
        _core.set_num_threads(3)
        three = fx.render(pop, 40, 40)
    finally:
        _core.set_num_threads(before)
    assert torch.equal(one, three)
