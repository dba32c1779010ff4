"""Repeated motifs in an image, found from its spectrum and autocorrelation, and their removal.

An image that repeats a motif with period vector p (pixels) has a peak in its power spectrum at the frequency
f = p / |p|^2 (cycles per pixel) and correlates with itself shifted by p. :func:`find_motif` takes the strongest
spectral peaks whose period is at least ``min_period`` pixels and gives at least two copies, refines each
period on the autocorrelation (the shift, near 1/|f| along f, that matches best) and accepts it when the
image shifted by it correlates at least ``min_peak`` with itself and clearly less when shifted by half of it
(a repeat, not just a smooth image). One accepted frequency is a stripe pattern; a second one, not parallel
to the first, makes a 2-D lattice.

:func:`remove_copies` keeps one copy (the band of one period along each accepted frequency that holds the
image centre, its borders placed where the image shows least foreground) and paints everything else with
the background: the image's most common colour. :func:`random_blocks` is the control: square blocks at
random places covering the same area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_PEAK = 0.5  # autocorrelation at the period for a repeat to count
MIN_DIP = 0.25  # how much lower the autocorrelation must be at half the period
MIN_PERIOD = 4.0  # pixels
CANDIDATES = 12  # strongest spectral peaks examined
RELATIVE_POWER = 0.1  # a candidate's power against the strongest's
PARALLEL = 0.3  # |sin| of the angle under which two frequencies count as parallel


@dataclass(frozen=True)
class Motif:
    """The repetition found in an image: one frequency (stripes) or two (a lattice), in cycles per pixel
    (fy, fx), with the autocorrelation at each period."""

    frequencies: np.ndarray  # float64 [n, 2]
    correlation: tuple[float, ...]

    @property
    def periods(self) -> list[float]:
        return [float(1.0 / np.linalg.norm(f)) for f in self.frequencies]

    @property
    def kind(self) -> str:
        return "stripes" if len(self.frequencies) == 1 else "lattice"


def grey(image: np.ndarray) -> np.ndarray:
    """float64 [H, W]: the mean over channels of a [C, H, W] image."""
    return np.asarray(image, dtype=np.float64).mean(axis=0)


def autocorrelation(values: np.ndarray) -> np.ndarray:
    """Unbiased autocorrelation of a mean-removed 2-D array, 1 at lag 0, indexed [dy % 2H, dx % 2W]."""
    h, w = values.shape
    padded = np.fft.rfft2(values, s=(2 * h, 2 * w))
    raw = np.fft.irfft2(padded * np.conj(padded), s=(2 * h, 2 * w))
    dy = np.fft.fftfreq(2 * h, 1.0 / (2 * h))
    dx = np.fft.fftfreq(2 * w, 1.0 / (2 * w))
    overlap = np.maximum((h - np.abs(dy))[:, None] * (w - np.abs(dx))[None, :], 1.0)
    unbiased = raw / overlap
    return unbiased / max(unbiased[0, 0], 1e-12)


def _lookup(ac: np.ndarray, lag: np.ndarray, h: int, w: int) -> float:
    dy, dx = int(round(lag[0])), int(round(lag[1]))
    if abs(dy) > h // 2 or abs(dx) > w // 2:
        return -1.0
    return float(ac[dy % (2 * h), dx % (2 * w)])


def _refine(ac: np.ndarray, frequency: np.ndarray, h: int, w: int) -> tuple[np.ndarray, float, float]:
    """The best whole-pixel shift near 1/|f| along `frequency` on the autocorrelation, as a frequency; with the
    autocorrelation there and at half of it. Ties go to the shift nearest the spectral period."""
    period = frequency / float(frequency @ frequency)
    lags = {tuple(np.round(period * scale).astype(int)) for scale in np.linspace(0.8, 1.25, 46)}
    lags.discard((0, 0))
    if not lags:
        return frequency, -1.0, 1.0
    scored = [(-_lookup(ac, np.array(lag), h, w), float(np.linalg.norm(np.array(lag) - period)), lag) for lag in lags]
    neg_value, _, lag = min(scored)
    best = np.array(lag, dtype=np.float64)
    return best / float(best @ best), -neg_value, _lookup(ac, best / 2.0, h, w)


def find_motif(image: np.ndarray, *, min_peak: float = MIN_PEAK, min_period: float = MIN_PERIOD) -> Motif | None:
    """The repeated motif of a [C, H, W] image in [0, 1], or None when it repeats nothing."""
    values = grey(image)
    h, w = values.shape
    values = values - values.mean()
    if values.std() < 1e-6:
        return None
    power = np.abs(np.fft.fft2(values)) ** 2
    fy = np.fft.fftfreq(h)[:, None] * np.ones((1, w))
    fx = np.ones((h, 1)) * np.fft.fftfreq(w)[None, :]
    norm = np.hypot(fy, fx)
    period = np.divide(1.0, norm, out=np.full_like(norm, np.inf), where=norm > 0)
    half_plane = (fx > 0) | ((fx == 0) & (fy > 0))
    cycles_y, cycles_x = np.abs(fy) * h, np.abs(fx) * w
    allowed = half_plane & (period >= min_period) & (np.maximum(cycles_y, cycles_x) >= 2)
    if not allowed.any():
        return None
    order = np.argsort(-np.where(allowed, power, -1.0), axis=None)[:CANDIDATES]
    ac = autocorrelation(values)
    accepted: list[tuple[np.ndarray, float]] = []
    strongest = float(power.flat[order[0]])
    for flat in order:
        if not allowed.flat[flat] or power.flat[flat] < RELATIVE_POWER * strongest:
            break
        frequency = np.array([fy.flat[flat], fx.flat[flat]])
        refined, value, half = _refine(ac, frequency, h, w)
        if value < min_peak or half > value - MIN_DIP or 1.0 / np.linalg.norm(refined) < min_period:
            continue
        if accepted:
            first = accepted[0][0]
            cross = abs(first[0] * refined[1] - first[1] * refined[0])
            sine = cross / (np.linalg.norm(first) * np.linalg.norm(refined))
            if sine < PARALLEL:
                continue
        accepted.append((refined, value))
        if len(accepted) == 2:
            break
    if not accepted:
        return None
    return Motif(np.stack([f for f, _ in accepted]), tuple(v for _, v in accepted))


def background_colour(image: np.ndarray, levels: int = 16) -> np.ndarray:
    """The image's most common colour (per channel, float [C]): the mean of the pixels in the fullest bin when
    each channel is cut into `levels` bins."""
    c = image.shape[0]
    pixels = np.asarray(image, dtype=np.float64).reshape(c, -1)
    bins = np.minimum((pixels * levels).astype(np.int64), levels - 1)
    codes = np.zeros(pixels.shape[1], dtype=np.int64)
    for channel in range(c):
        codes = codes * levels + bins[channel]
    mode = np.bincount(codes).argmax()
    return pixels[:, codes == mode].mean(axis=1)


def keep_mask(image: np.ndarray, motif: Motif, background: np.ndarray, offsets: int = 32) -> np.ndarray:
    """bool [H, W]: the one copy kept (see the module docstring)."""
    _, h, w = image.shape
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    foreground = np.abs(np.asarray(image, dtype=np.float64) - background[:, None, None]).mean(axis=0)
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    keep = np.ones((h, w), dtype=bool)
    for frequency in motif.frequencies:
        phase = frequency[0] * ys + frequency[1] * xs
        edge = 0.5 * float(np.abs(frequency).max())  # half a pixel, in cycles
        best_offset, best_cost = 0.0, np.inf
        for offset in np.arange(offsets) / offsets:
            fraction = np.mod(phase - offset, 1.0)
            border = (fraction < edge) | (fraction >= 1.0 - edge)
            cost = float(foreground[border].mean()) if border.any() else 0.0
            if cost < best_cost - 1e-12:
                best_offset, best_cost = offset, cost
        band = np.floor(float(frequency @ centre) - best_offset)
        keep &= np.floor(phase - best_offset) == band
    return keep


def remove_copies(image: np.ndarray, motif: Motif) -> tuple[np.ndarray, np.ndarray]:
    """(the image with one copy kept and the rest painted with the background colour, the bool mask of what
    was removed)."""
    image = np.asarray(image, dtype=np.float32)
    background = background_colour(image)
    removed = ~keep_mask(image, motif, background)
    out = image.copy()
    out[:, removed] = background.astype(np.float32)[:, None]
    return out, removed


def random_blocks(shape: tuple[int, int], removed: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """bool [H, W]: square blocks of side `block` on a grid, taken in random order until about `removed`
    pixels are covered (the last block is taken when it brings the count closer)."""
    h, w = shape
    block = int(max(1, min(block, h, w)))
    tops = [(y, x) for y in range(0, h, block) for x in range(0, w, block)]
    mask = np.zeros((h, w), dtype=bool)
    count = 0
    for index in rng.permutation(len(tops)):
        y, x = tops[index]
        area = min(block, h - y) * min(block, w - x)
        if count + area / 2.0 > removed:
            continue
        mask[y : y + block, x : x + block] = True
        count += area
    return mask


def paint(image: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """A copy of `image` with the pixels of `mask` set to `colour` [C]."""
    out = np.array(image, dtype=np.float32, copy=True)
    out[:, mask] = np.asarray(colour, dtype=np.float32)[:, None]
    return out
