"""Image grids as HTML for notebooks: what ``Archive._repr_html_`` and the run results' ``_repr_html_`` show.

Each image is embedded as a PNG data URI (nothing to load from disk), drawn at `tile` CSS pixels with
nearest-neighbour scaling so small images stay sharp, with a caption (class name, confidence) under it.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np

from fooling_ext.runs.images import to_pil
from fooling_ext.runs.report import format_confidence

MAX_TILES = 100  # a notebook cell shows at most this many images (the most confident first when cut)


def png_data_uri(image: np.ndarray) -> str:
    """uint8 [C, H, W] -> "data:image/png;base64,..."."""
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_grid_html(
    images: np.ndarray, labels: Sequence[str], captions: Sequence[str], *, tile: int = 96, title: str = ""
) -> str:
    """An HTML grid of uint8 [N, C, H, W] images with a label and a caption under each."""
    if len(images) != len(labels) or len(labels) != len(captions):
        raise ValueError(f"{len(images)} images, {len(labels)} labels and {len(captions)} captions: give one of each")
    cells = []
    for image, label, caption in zip(images, labels, captions):
        cells.append(
            f'<figure style="margin:0;width:{tile}px">'
            f'<img src="{png_data_uri(np.asarray(image))}" width="{tile}" height="{tile}" alt="{html.escape(label)}" '
            f'style="image-rendering:pixelated;display:block;border:1px solid #ccc">'
            f'<figcaption style="font-size:11px;line-height:1.25;overflow:hidden;white-space:nowrap;'
            f'text-overflow:ellipsis">{html.escape(label)}<br>{html.escape(caption)}</figcaption></figure>'
        )
    head = f'<div style="font-weight:bold;margin:4px 0">{html.escape(title)}</div>' if title else ""
    return (
        f'<div class="fooling-grid">{head}<div style="display:flex;flex-wrap:wrap;gap:8px">'
        + "".join(cells)
        + "</div></div>"
    )


def class_grid_html(
    images: np.ndarray,
    confidence: np.ndarray,
    occupied: np.ndarray,
    class_names: Sequence[str],
    *,
    indices: Sequence[int] | None = None,
    title: str = "",
    limit: int = MAX_TILES,
) -> str:
    """The occupied cells of an archive (or a run's classes) as an HTML grid: "k: name" and the confidence
    under each image. With more than `limit` occupied cells, the `limit` most confident are shown, and the
    title says so."""
    indices = list(range(len(class_names))) if indices is None else list(indices)
    rows = [i for i in range(len(class_names)) if occupied[i]]
    if len(rows) > limit:
        rows = sorted(rows, key=lambda i: -float(confidence[i]))[:limit]
        title = f"{title} ({limit} most confident of {sum(bool(o) for o in occupied)} cells)".strip()
    if not rows:
        return f"<div>{html.escape(title)} (no occupied cells)</div>"
    labels = [f"{indices[i]}: {class_names[i]}" for i in rows]
    captions = [format_confidence(float(confidence[i])) for i in rows]
    return image_grid_html(np.asarray(images)[rows], labels, captions, title=title)
