"""Natural photos: a user's folder of images, or the sample photos the ``foolbox`` wheel carries, as uint8 views
at a render size. The ImageNet fooling-class experiment uses them as the images its new class must not take.

The foolbox wheel (``pip install --no-deps foolbox==3.3.4``) holds 20 sample photos each of ImageNet, CIFAR-10,
CIFAR-100, MNIST and Fashion-MNIST as ``foolbox/data/<set>_<i>_<label>.png``; the package is located, never
imported, so its own dependencies are not needed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# The natural photos of the foolbox wheel used by default (MNIST and Fashion-MNIST are not natural images).
FOOLBOX_NATURAL_SETS = ("imagenet", "cifar10", "cifar100")
FOOLBOX_HINT = "pip install --no-deps foolbox==3.3.4"


def foolbox_photos(sets: Sequence[str] = FOOLBOX_NATURAL_SETS) -> list[Path]:
    """The sample photos inside the installed foolbox package (located, never imported)."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"no natural images given and the foolbox sample photos are not installed ({FOOLBOX_HINT}); "
            "pass a folder of natural images with --natural"
        )
    folder = Path(list(spec.submodule_search_locations)[0], "data")
    return sorted(path for name in sets for path in folder.glob(f"{name}_*_*.*"))


def image_files(folder: str | Path) -> list[Path]:
    """Every image file under `folder` (an ImageNet-style folder of class subfolders, or a flat one)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder of natural images at {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def photo_views(path: Path, views: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """`views` uint8 [3, H, W] images of one photo at the render size: the whole photo first, then random
    crops (35-100% of the area, aspect 3:4 to 4:3), half of them mirrored."""
    try:
        photo = Image.open(path).convert("RGB")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable image: {exc}") from exc
    width, height = photo.size
    out = []
    for view in range(views):
        if view == 0:
            box = (0, 0, width, height)
        else:
            area = rng.uniform(0.35, 1.0) * width * height
            aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            w = int(round(min(width, np.sqrt(area * aspect))))
            h = int(round(min(height, np.sqrt(area / aspect))))
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            box = (x, y, x + w, y + h)
        # Image.Resampling and Image.Transpose are Pillow >= 9.1 (we support 9.0); Pillow sets the module's names at
        # import, unseen by mypy.
        crop = photo.resize((size[1], size[0]), Image.BILINEAR, box=box)  # type: ignore[attr-defined]
        if view > 0 and rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)  # type: ignore[attr-defined]
        out.append(np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1))
    return np.stack(out)
