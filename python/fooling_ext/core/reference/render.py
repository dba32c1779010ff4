"""Plain NumPy reference of the CPPN renderer (the render oracle): what both backends are tested against.

Written independently of the core, genome by genome and node by node, in float32 with one rounding per
operation. The activation formulas are the same range-reduced polynomials as
cpp/include/fooling/activations.h (so the comparison can be exact); tests separately check those
polynomials against the true functions (np.sin, np.exp in float64).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fooling_ext.core.cppn import NUM_INPUTS, CPPNPopulation

f32 = np.float32

# Constants: double literals rounded to float32, exactly as the C++ header does.
INV_PI = f32(0.318309886183790671538)
PI_A, PI_B, PI_C = f32(3.140625), f32(9.67502593994140625e-4), f32(1.509957990978376432e-7)
SIN_COEFFS = [
    f32(c)
    for c in (
        -2.5052108385441720e-8,
        2.7557319223985893e-6,
        -1.9841269841269841e-4,
        8.3333333333333333e-3,
        -1.6666666666666667e-1,
    )
]
LOG2E = f32(1.44269504088896341)
LN2_HI, LN2_LO = f32(0.693359375), f32(-2.12194440054690583e-4)
EXP_COEFFS = [
    f32(c)
    for c in (
        1.9841269841269841e-4,
        1.3888888888888889e-3,
        8.3333333333333333e-3,
        4.1666666666666667e-2,
        1.6666666666666667e-1,
        0.5,
        1.0,
        1.0,
    )
]
ROUND_MAGIC = f32(12582912.0)


def clamp(x: np.ndarray | np.floating[Any], lo: float | np.floating[Any], hi: float | np.floating[Any]) -> np.ndarray:
    """Clamp with NaN -> lo, like the core."""
    x = np.where(x > f32(lo), x, f32(lo))
    return np.where(x < f32(hi), x, f32(hi)).astype(f32)


def sin(x: np.ndarray) -> np.ndarray:
    x = clamp(np.asarray(x, dtype=f32), -1.0e7, 1.0e7)
    k = (x * INV_PI + ROUND_MAGIC) - ROUND_MAGIC
    r = x - k * PI_A
    r = r - k * PI_B
    r = r - k * PI_C
    r2 = r * r
    p = np.full_like(r, SIN_COEFFS[0])
    for c in SIN_COEFFS[1:]:
        p = p * r2 + c
    s = r + r * (r2 * p)
    odd = (k.astype(np.int32) & 1).astype(bool)
    out: np.ndarray = np.where(odd, -s, s).astype(f32)
    return out


def exp(x: np.ndarray) -> np.ndarray:
    x = clamp(np.asarray(x, dtype=f32), -87.0, 88.0)
    k = (x * LOG2E + ROUND_MAGIC) - ROUND_MAGIC
    r = x - k * LN2_HI
    r = r - k * LN2_LO
    p = np.full_like(r, EXP_COEFFS[0])
    for c in EXP_COEFFS[1:]:
        p = p * r + c
    scale = ((k.astype(np.int32) + 127).astype(np.uint32) << np.uint32(23)).view(f32)
    out: np.ndarray = (p * scale).astype(f32)
    return out


def activation(act: int, p: np.ndarray) -> np.ndarray:
    """The four activations of the paper: sine, 2(sigmoid - 0.5), Gaussian, clip(p, -3, 3) / 3."""
    p = np.asarray(p, dtype=f32)
    if act == 0:
        return sin(p)
    out: np.ndarray
    if act == 1:
        out = (f32(2) * (f32(1) / (f32(1) + exp(-p)) - f32(0.5))).astype(f32)
        return out
    if act == 2:
        return exp(-(p * p))
    if act == 3:
        out = (clamp(p, -3.0, 3.0) / f32(3)).astype(f32)
        return out
    raise ValueError(f"unknown activation id {act}")


def exact_activation(act: int, p: np.ndarray) -> np.ndarray:
    """The same activations computed in float64 with NumPy's own functions (for accuracy checks)."""
    p = np.asarray(p, dtype=np.float64)
    functions: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        0: np.sin,
        1: lambda v: np.tanh(0.5 * v),  # = 2 (sigmoid(v) - 1/2), without overflow
        2: lambda v: np.exp(-v * v),
        3: lambda v: np.clip(v, -3.0, 3.0) / 3.0,
    }
    return functions[act](p)


def _hue_to_rgb(h: np.ndarray, c: np.ndarray, m: np.ndarray) -> list[np.ndarray]:
    hp = h * f32(6)
    sector_f = hp - f32(2) * (hp * f32(0.5)).astype(np.int32).astype(f32)
    x = c * (f32(1) - np.abs(sector_f - f32(1)))
    sector = hp.astype(np.int32)
    sector = np.where(sector >= 6, 0, sector)
    zero = np.zeros_like(c)
    table = [(c, x, zero), (x, c, zero), (zero, c, x), (zero, x, c), (x, zero, c), (c, zero, x)]
    rgb = []
    for ch in range(3):
        val = zero
        for s, trio in enumerate(table):
            val = np.where(sector == s, trio[ch], val)
        rgb.append(val + m)
    return rgb


def hsl_to_rgb(h: np.ndarray, s: np.ndarray, l: np.ndarray) -> list[np.ndarray]:  # noqa: E741 - the channel names of the colour model
    c = (f32(1) - np.abs(f32(2) * l - f32(1))) * s
    return _hue_to_rgb(h, c, l - f32(0.5) * c)


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    c = v * s
    return _hue_to_rgb(h, c, v - c)


def intensity(v: np.ndarray) -> np.ndarray:
    return clamp(np.abs(v), 0.0, 1.0)


def intensity_byte(a: np.ndarray) -> np.ndarray:
    """The original code's byte of an intensity a in [0, 1]: trunc(255 a), the product rounded to float32."""
    out: np.ndarray = (np.asarray(a, dtype=f32) * f32(255)).astype(np.int32)
    return out


def quantize_intensity(a: np.ndarray) -> np.ndarray:
    """An intensity on the 8-bit grid: trunc(255 a) / 255 in float32."""
    out: np.ndarray = (intensity_byte(a).astype(f32) / f32(255)).astype(f32)
    return out


# OpenCV's 8-bit HLS -> BGR (HLS2RGB_b around HLS2RGB_f): which of (p2, p1, t2, t3) is B, G, R in each sector.
HLS_SECTORS = ((1, 3, 0), (1, 0, 2), (3, 0, 1), (0, 2, 1), (0, 1, 3), (2, 1, 0))


def hls8_to_rgb_bytes(h8: np.ndarray, l8: np.ndarray, s8: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's cvtColor(COLOR_HLS2RGB) on 8-bit H, L, S arrays, in float32 as its scalar code computes it: hue
    byte x 6/180 wrapped into [0, 6) (bytes over 180 go round the circle again), L and S bytes / 255, p2 and p1,
    the sector table, and each channel x 255 rounded half to even and saturated to [0, 255]. Returns R, G, B
    as int32 arrays."""
    h = np.asarray(h8).astype(f32)
    lum = (np.asarray(l8).astype(f32) * (f32(1) / f32(255))).astype(f32)
    sat = (np.asarray(s8).astype(f32) * (f32(1) / f32(255))).astype(f32)
    p2 = np.where(lum <= f32(0.5), lum * (f32(1) + sat), (lum + sat) - lum * sat).astype(f32)
    p1 = (f32(2) * lum - p2).astype(f32)
    h = (h * (f32(6) / f32(180))).astype(f32)
    while (h >= f32(6)).any():
        h = np.where(h >= f32(6), h - f32(6), h).astype(f32)
    sector = np.floor(h).astype(np.int32)
    frac = (h - sector.astype(f32)).astype(f32)
    tab = (p2, p1, p1 + (p2 - p1) * (f32(1) - frac), p1 + (p2 - p1) * frac)
    bgr = []
    for ch in range(3):
        val = np.zeros_like(lum)
        for k, row in enumerate(HLS_SECTORS):
            val = np.where(sector == k, tab[row[ch]], val)
        val = np.where(sat == f32(0), lum, val).astype(f32)
        bgr.append(np.clip(np.rint(val * f32(255)), 0, 255).astype(np.int32))  # rint: half to even
    return bgr[2], bgr[1], bgr[0]


def hls8_to_rgb(h: np.ndarray, l: np.ndarray, s: np.ndarray) -> list[np.ndarray]:  # noqa: E741 - the channel names of the colour model
    """The colour mode "hls8" on intensities in [0, 1]: bytes trunc(255 a), OpenCV's 8-bit HLS -> RGB, / 255."""
    return [
        (c.astype(f32) / f32(255)).astype(f32)
        for c in hls8_to_rgb_bytes(intensity_byte(h), intensity_byte(l), intensity_byte(s))
    ]


def pixel_inputs(height: int, width: int, coords: str) -> list[np.ndarray]:
    """x, y, d, bias for every pixel, row-major, as flat float32 arrays."""

    def axis(n: int) -> np.ndarray:
        i = np.arange(n)
        return ((2 * i - (n - 1)).astype(f32) / f32(n - 1)).astype(f32) if n > 1 else np.zeros(n, f32)

    yn, xn = np.meshgrid(axis(height), axis(width), indexing="ij")
    d = np.sqrt(xn * xn + yn * yn).astype(f32)
    if coords == "pixel":
        rows, cols = np.meshgrid(np.arange(height, dtype=f32), np.arange(width, dtype=f32), indexing="ij")
        x, y = cols, rows
    else:
        x, y = xn, yn
    return [a.reshape(-1).astype(f32) for a in (x, y, d, np.ones_like(d))]


def topological_order(num_nodes: int, edges: Sequence[tuple[int, int, float | np.floating[Any]]]) -> list[int]:
    """Any topological order (depth-first); raises ValueError on a cycle."""
    incoming: dict[int, list[int]] = {v: [] for v in range(num_nodes)}
    for s, d, _ in edges:
        incoming[d].append(s)
    state = [0] * num_nodes  # 0 new, 1 on the stack, 2 done
    order: list[int] = []

    def visit(v: int) -> None:
        if state[v] == 2:
            return
        if state[v] == 1:
            raise ValueError(f"cycle through node {v}")
        state[v] = 1
        for u in incoming[v]:
            visit(u)
        state[v] = 2
        order.append(v)

    for v in range(num_nodes):
        visit(v)
    return order


def network_outputs(genome: dict[str, Any], height: int, width: int, coords: str = "normalized") -> list[np.ndarray]:
    """The output nodes' values at every pixel (flat float32 arrays, row-major), before |.| and colour."""
    n = len(genome["activations"])
    o = int(genome["num_outputs"])
    edges = [(int(s), int(d), f32(w)) for s, d, w in genome["edges"]]
    act_ids = {"sine": 0, "sigmoid": 1, "gaussian": 2, "linear": 3}
    values: dict[int, np.ndarray] = dict(enumerate(pixel_inputs(height, width, coords)))
    for v in topological_order(n, edges):
        if v < NUM_INPUTS:
            continue
        acc = np.zeros(height * width, dtype=f32)
        for s, d, w in edges:  # storage order, as the core sums
            if d == v:
                acc = (acc + w * values[s]).astype(f32)
        values[v] = activation(act_ids[genome["activations"][v]], acc)
    return [values[NUM_INPUTS + k] for k in range(o)]


def render_genome(
    genome: dict[str, Any],
    height: int,
    width: int,
    coords: str = "normalized",
    color: str = "hsl",
    quantize: bool = False,
) -> np.ndarray:
    """One genome dict (CPPNPopulation.genome) -> float32 [C, H, W]."""
    o = int(genome["num_outputs"])
    outs = [intensity(v) for v in network_outputs(genome, height, width, coords)]
    if o == 3 and color == "hls8":
        img = hls8_to_rgb(*outs)  # (H, L, S), always on bytes
    else:
        if quantize:
            outs = [quantize_intensity(a) for a in outs]
        if o == 1:
            img = outs
        else:
            h_, a, b = outs  # (H, L, S) or (H, S, V)
            img = hsl_to_rgb(h_, b, a) if color == "hsl" else hsv_to_rgb(h_, a, b)
            img = [clamp(c, 0.0, 1.0) for c in img]
    out: np.ndarray = np.stack(img).reshape(o, height, width).astype(f32)
    return out


def render_reference(
    pop: CPPNPopulation,
    height: int,
    width: int | None = None,
    *,
    coords: str = "normalized",
    color: str = "hsl",
    quantize: bool = False,
) -> np.ndarray:
    """The whole population, float32 [B, C, H, W]."""
    width = height if width is None else width
    host = pop.to("cpu")
    return np.stack([render_genome(host.genome(b), height, width, coords, color, quantize) for b in range(host.batch)])


def direct_reference(genes: np.ndarray, quantize: bool = False) -> np.ndarray:
    """The direct encoding's images: the genes, or with `quantize` the original's 8-bit pixels int(255 g) / 255."""
    genes = np.asarray(genes, dtype=f32)
    return quantize_intensity(genes) if quantize else genes.copy()
