"""Batched rendering of a CPPN population into images.

``render(pop, 28, 28)`` evaluates every genome at every pixel and returns float32 [B, C, H, W] in [0, 1]
(C = 1: |output| clipped; C = 3: the three outputs read as H, L, S, or H, S, V, and converted to RGB). The
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
COLORS = {"hsl": 0, "hsv": 1}


def render(
    pop: CPPNPopulation,
    height: int,
    width: int | None = None,
    *,
    coords: str = "normalized",
    color: str = "hsl",
    out: torch.Tensor | None = None,
    check: bool = True,
) -> torch.Tensor:
    """Render every genome of `pop` at height x width.

    coords: "normalized" (x, y on [-1, 1]) or "pixel" (x, y = column, row index, the original code's
    choice); d is the distance from the centre on normalised coordinates either way.
    color: how 3 outputs become RGB: "hsl" (outputs are H, L, S; the original's choice) or "hsv".
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
    if not isinstance(pop, CPPNPopulation):
        raise ValueError(f"render needs a CPPNPopulation, got {type(pop).__name__}")
    device = pop.device
    shape = (pop.batch, pop.num_outputs, height, width)
    if out is None:
        out = torch.empty(shape, dtype=torch.float32, device=device)
    else:
        check_tensor(out, "out", torch.float32, shape, device)
    errors = torch.empty(pop.batch, 3, dtype=torch.int32, device=device)
    invalid = launch("render", device, pop.core_view(), height, width, COORDS[coords], COLORS[color],
                     out.data_ptr(), errors.data_ptr(), genomes=pop)
    if check and (invalid is None or invalid > 0):  # None: on CUDA the count is only in `errors`
        raise_first_error(errors, pop)
    return out
