"""Images a run leaves for people: one PNG per class, and labelled grids (class name and confidence under each
image). Pillow draws them: exact pixels, nearest-neighbour upscaling, captions, no display needed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from fooling_ext.runs.report import format_confidence

TILE = 128  # grid tile side in pixels
CAPTION = 30
GAP = 6  # white space between tiles and around the grid, so that neighbouring images never merge


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> uint8 0..255 (round to nearest)."""
    return (images.clamp(0.0, 1.0) * 255.0).round_().to(torch.uint8)


def to_pil(image: np.ndarray) -> Image.Image:
    """uint8 [C, H, W] (C = 1 or 3) -> PIL image."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.shape[0] == 1:
        return Image.fromarray(image[0], mode="L")
    return Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), mode="RGB")


def safe_name(name: str, limit: int = 40) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:limit] or "class"


def save_class_images(
    folder: Path,
    images: np.ndarray,
    occupied: np.ndarray,
    class_names: Sequence[str],
    indices: Sequence[int] | None = None,
) -> list[Path]:
    """images/class_<k>_<name>.png for every occupied cell, at the rendered resolution. `indices`: the class
    index of each row when the rows are a subset of the classes (default: row i is class i)."""
    folder.mkdir(parents=True, exist_ok=True)
    indices = list(range(len(class_names))) if indices is None else list(indices)
    paths = []
    width = max(3, len(str(max(indices, default=0))))
    for row, (k, name) in enumerate(zip(indices, class_names)):
        if not occupied[row]:
            continue
        path = folder / f"class_{k:0{width}d}_{safe_name(name)}.png"
        to_pil(images[row]).save(path)
        paths.append(path)
    return paths


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-1]
    return text


def labelled_grid(
    images: np.ndarray | Sequence[np.ndarray],
    labels: Sequence[str],
    captions: Sequence[str],
    *,
    columns: int = 10,
    tile: int = TILE,
    gap: int = GAP,
) -> Image.Image:
    """A grid of images (uint8 [N, C, H, W]) with two caption lines under each (e.g. class name and
    confidence). Images are scaled to `tile` pixels, nearest-neighbour when enlarging (pixels stay pixels),
    with `gap` white pixels between tiles and around the grid."""
    n = len(images)
    columns = max(1, min(columns, n))
    rows = max(1, -(-n // columns))
    sheet = Image.new("RGB", (columns * (tile + gap) + gap, rows * (tile + CAPTION + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(12)
    for i in range(n):
        img = to_pil(images[i]).convert("RGB")
        # Image.Resampling is Pillow >= 9.1 (we support 9.0); Pillow sets the module's names at import, unseen by mypy.
        resample = Image.NEAREST if img.width <= tile else Image.LANCZOS  # type: ignore[attr-defined]
        img = img.resize((tile, tile), resample)
        x, y = gap + (i % columns) * (tile + gap), gap + (i // columns) * (tile + CAPTION + gap)
        sheet.paste(img, (x, y))
        draw.rectangle((x - 1, y - 1, x + tile, y + tile), outline=(200, 200, 200))  # white images keep an edge
        draw.text((x + 3, y + tile + 1), _fit(draw, labels[i], font, tile - 6), fill="black", font=font)
        draw.text((x + 3, y + tile + 15), _fit(draw, captions[i], font, tile - 6), fill="black", font=font)
    return sheet


def save_grids(
    folder: Path,
    images: np.ndarray,
    confidence: np.ndarray,
    occupied: np.ndarray,
    class_names: Sequence[str],
    *,
    per_grid: int = 100,
    top: int = 50,
    indices: Sequence[int] | None = None,
) -> list[Path]:
    """grid.png for up to `per_grid` classes; for more classes grid_<first>-<last>.png per block of
    `per_grid`, plus grid_top<top>.png with the most confident cells. `indices`: as in save_class_images."""
    k = len(class_names)
    indices = list(range(k)) if indices is None else list(indices)
    labels = [f"{i}: {name}" for i, name in zip(indices, class_names)]
    caps = [format_confidence(float(c)) if occ else "empty" for c, occ in zip(confidence, occupied)]
    blank = np.zeros_like(images[:1])
    imgs = np.stack([images[i] if occupied[i] else blank[0] for i in range(k)])
    paths = []
    if k <= per_grid:
        path = folder / "grid.png"
        labelled_grid(imgs, labels, caps, columns=min(10, k)).save(path)
        return [path]
    for start in range(0, k, per_grid):
        end = min(k, start + per_grid)
        path = folder / f"grid_{start:04d}-{end - 1:04d}.png"
        labelled_grid(imgs[start:end], labels[start:end], caps[start:end]).save(path)
        paths.append(path)
    order = [i for i in np.argsort(-np.where(occupied, confidence, -1.0), kind="stable") if occupied[i]][:top]
    if order:
        path = folder / f"grid_top{top}.png"
        labelled_grid(imgs[order], [labels[i] for i in order], [caps[i] for i in order]).save(path)
        paths.append(path)
    return paths
