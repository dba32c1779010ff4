"""Batched rendering of a CPPN population into images.

``render(pop, 28, 28)`` evaluates every genome at every pixel and returns float32 [B, C, H, W] in [0, 1]
(C = 1: |output| clipped; C = 3: the three outputs read as H, L, S, or H, S, V, and converted to RGB). With
``quantize=True`` every output becomes trunc(255 a) / 255 first (the 8-bit images of the original code); the
colour mode "hls8" is the original's own mapping, OpenCV's 8-bit HLS -> RGB, always on bytes. The
backend follows the population's device: CPU tensors render on the CPU backend, CUDA tensors on the CUDA
backend, straight into a device buffer on the current stream.
"""

from __future__ import annotations

import torch

from fooling_ext import _core
from fooling_ext.core.backend import launch
from fooling_ext.core.checks import check_tensor
from fooling_ext.core.cppn import CPPNPopulation, raise_first_error

COORDS = {"normalized": 0, "pixel": 1}
COLORS = {"hsl": 0, "hsv": 1, "hls8": 2}


def render(
    pop: CPPNPopulation,
    height: int,
    width: int | None = None,
    *,
    coords: str = "normalized",
    color: str = "hsl",
    quantize: bool = False,
    out: torch.Tensor | None = None,
    check: bool = True,
) -> torch.Tensor:
    """Render every genome of `pop` at height x width.

    coords: "normalized" (x, y on [-1, 1]) or "pixel" (x, y = column, row index, the original code's
    choice); d is the distance from the centre on normalised coordinates either way.
    color: how 3 outputs become RGB: "hsl" (outputs are H, L, S, hue over 360 degrees, in float), "hsv", or
    "hls8" (the original code: H, L, S bytes trunc(255 a) through OpenCV's 8-bit HLS -> RGB, whose hue byte
    counts half-degrees, so the hue wraps round about 1.4 times; each channel is a byte / 255).
    quantize: 8-bit pixels: each output a in [0, 1] becomes trunc(255 a) / 255 before it becomes a pixel (grey)
    or goes through the float HSL / HSV conversion. "hls8" is 8-bit either way.
    (These defaults are the plain float mapping; runs, EvolveConfig and `fooling evolve`, default to the
    original's: "hls8" and quantize.)
    out: optional float32 [B, C, H, W] contiguous tensor on the population's device to write into.
    check: raise GenomeError for the first invalid genome (its image is left as zeros). On CUDA this
    reads the error flags back, which waits for the render to finish.
    """
    width = height if width is None else width
    for name, v in (("height", height), ("width", width)):
        if not isinstance(v, int) or not 1 <= v <= _core.MAX_IMAGE_SIDE:
            raise ValueError(f"{name} must be an int in [1, {_core.MAX_IMAGE_SIDE}], got {v!r}")
    if coords not in COORDS:
        raise ValueError(f"coords must be one of {tuple(COORDS)}, got {coords!r}")
    if color not in COLORS:
        raise ValueError(f"color must be one of {tuple(COLORS)}, got {color!r}")
    if not isinstance(quantize, bool):
        raise ValueError(f"quantize must be a bool, got {quantize!r}")
    if not isinstance(pop, CPPNPopulation):
        raise ValueError(f"render needs a CPPNPopulation, got {type(pop).__name__}")
    device = pop.device
    shape = (pop.batch, pop.num_outputs, height, width)
    if out is None:
        out = torch.empty(shape, dtype=torch.float32, device=device)
    else:
        check_tensor(out, "out", torch.float32, shape, device)
    errors = torch.empty(pop.batch, 3, dtype=torch.int32, device=device)
    invalid = launch(
        "render",
        device,
        pop.core_view(),
        height,
        width,
        COORDS[coords],
        COLORS[color],
        quantize,
        out.data_ptr(),
        errors.data_ptr(),
        genomes=pop,
    )
    if check and (invalid is None or invalid > 0):  # None: on CUDA the count is only in `errors`
        raise_first_error(errors, pop)
    return out


def hls8_to_rgb(hls: torch.Tensor) -> torch.Tensor:
    """The colour mode "hls8"'s per-pixel conversion on bytes: uint8 [..., 3] (H, L, S) -> uint8 [..., 3] (R, G,
    B), as OpenCV's cvtColor(COLOR_HLS2RGB) on 8-bit images. CPU tensors (the kernels use the same function)."""
    if not isinstance(hls, torch.Tensor) or hls.dtype != torch.uint8 or hls.device.type != "cpu":
        raise ValueError(f"hls must be a uint8 CPU tensor, got {getattr(hls, 'dtype', type(hls).__name__)}")
    if hls.dim() == 0 or hls.shape[-1] != 3:
        raise ValueError(f"hls must have a last dimension of 3 (H, L, S), got shape {tuple(hls.shape)}")
    src = hls.contiguous()
    out = torch.empty_like(src)
    _core.hls8_to_rgb_cpu(src.data_ptr(), out.data_ptr(), src.numel() // 3)
    return out
