"""What a run shows people besides the gallery: the confidence plot on an axis that tells 99% from 99.99%, grids
whose tiles do not touch, and image grids inline in notebooks."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from fooling_ext.experiments.gradient_ascent import GradientResult
from fooling_ext.runs.images import CAPTION, GAP, labelled_grid
from fooling_ext.runs.notebook import class_grid_html, image_grid_html
from fooling_ext.runs.plots import metrics_figure, nines, nines_label, nines_ticks, plot_metrics
from fooling_ext.search.archive import Archive
from fooling_ext.search.evolve import EvolveResult


def rows(best, median, mean, n99=0, n9999=0, classes=10):
    return [
        {"generation": g, "best": b, "median": m, "mean": a, "n99": n99, "n9999": n9999, "classes": classes}
        for g, (b, m, a) in enumerate(zip(best, median, mean))
    ]


def test_nines_spreads_the_values_near_one():
    np.testing.assert_allclose(nines([0.0, 0.9, 0.99, 0.999, 0.9999]), [0.0, 1.0, 2.0, 3.0, 4.0], atol=1e-9)
    assert float(nines(1.0)) == 7.0 and float(nines(-1.0)) == 0.0  # float32's 1.0 sits at the top; empty at 0
    assert [nines_label(n) for n in range(6)] == ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
    positions, labels = nines_ticks(3.2)
    assert labels == ["0%", "50%", "90%", "99%", "99.9%", "99.99%"]
    assert positions[1] == pytest.approx(np.log10(2)) and positions[2:] == [1.0, 2.0, 3.0, 4.0]
    assert nines_ticks(6.5)[1][-1] == "99.99999%"


def test_plot_tells_99_from_9999_and_keeps_the_three_lines_apart():
    metrics = rows(best=[0.9999, 0.99999], median=[0.99, 0.9999], mean=[0.9, 0.999], n99=3, n9999=1)
    fig = metrics_figure(metrics, "t", x_label="step")
    try:
        ax, counts = fig.axes
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert list(lines) == ["best class", "median over classes", "mean over classes"]
        np.testing.assert_allclose(lines["median over classes"].get_ydata(), [2.0, 4.0], atol=1e-9)
        np.testing.assert_allclose(lines["best class"].get_ydata(), [4.0, 5.0], atol=1e-9)
        np.testing.assert_allclose(lines["mean over classes"].get_ydata(), [1.0, 3.0], atol=1e-9)
        styles = {(str(line.get_color()), str(line.get_linestyle()), line.get_linewidth()) for line in lines.values()}
        assert len(styles) == 3
        assert [t.get_text() for t in ax.get_yticklabels()] == ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        assert counts.get_xlabel() == "step"
        assert [line.get_label() for line in counts.get_lines()] == ["classes >= 99%", "classes >= 99.99%"]
        assert list(counts.get_lines()[1].get_ydata()) == [1, 1]
    finally:
        plt.close(fig)


def test_plot_metrics_writes_the_figure(tmp_path):
    path = plot_metrics(tmp_path / "c.png", rows([0.5, 0.6], [0.4, 0.5], [0.3, 0.4]), "run")
    assert Image.open(path).size == (825, 550)  # 7.5 x 5 inches at 110 dpi


def test_grid_tiles_are_separated_by_a_gap():
    images = np.zeros((4, 1, 8, 8), np.uint8)  # black tiles: without a gap they would merge
    grid = np.asarray(labelled_grid(images, list("abcd"), list("wxyz"), columns=2, tile=16).convert("L"))
    assert grid.shape == (2 * (16 + CAPTION + GAP) + GAP, 2 * (16 + GAP) + GAP)
    first, second = GAP, GAP + 16 + GAP  # left edges of the two columns
    assert (grid[GAP : GAP + 16, first : first + 16] == 0).all() and (
        grid[GAP : GAP + 16, second : second + 16] == 0
    ).all()
    between = grid[GAP + 1 : GAP + 15, first + 17 : second - 1]  # the gap, less the tiles' one-pixel outline
    assert between.size > 0 and (between == 255).all()


def decoded(html: str) -> list[np.ndarray]:
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(u)))) for u in uris]


def test_html_grid_embeds_the_exact_pixels_with_captions():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 3, 5, 7), dtype=np.uint8)
    html = image_grid_html(images, ["a", "b<", "c"], ["1%", "2%", "3%"], title="T")
    shown = decoded(html)
    assert len(shown) == 3 and all(np.array_equal(s, i.transpose(1, 2, 0)) for s, i in zip(shown, images))
    assert "b&lt;<br>2%" in html and "image-rendering:pixelated" in html
    with pytest.raises(ValueError, match="3 images, 2 labels"):
        image_grid_html(images, ["a", "b"], ["1", "2", "3"])


def test_class_grid_shows_the_most_confident_cells_when_there_are_many():
    images = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1).repeat(4, 2).repeat(4, 3)
    confidence = np.array([0.2, 0.9, -1.0, 0.99999, 0.5], np.float32)
    occupied = confidence >= 0
    html = class_grid_html(images, confidence, occupied, list("vwxyz"), limit=2, title="A")
    assert [int(s[0, 0]) for s in decoded(html)] == [3, 1]
    assert "A (2 most confident of 4 cells)" in html and "3: y<br>99.9990%" in html
    everything = class_grid_html(images, confidence, occupied, list("vwxyz"), indices=[10, 11, 12, 13, 14])
    assert re.findall(r"<figcaption[^>]*>(\d+):", everything) == ["10", "11", "13", "14"]


def test_notebooks_show_archives_and_results_as_grids():
    archive = Archive(["cat", "dog"], {"genes": torch.zeros(1, 1, 2, 2)}, (1, 2, 2))
    archive.add(
        {"genes": torch.zeros(1, 1, 2, 2)},
        torch.full((1, 1, 2, 2), 0.5),
        torch.tensor([[0.25, 0.75]]),
        generation=0,
        ids=torch.tensor([0]),
        parent_ids=torch.tensor([-1]),
    )
    html = archive._repr_html_()
    assert "Archive: 2 of 2 cells" in html and len(decoded(html)) == 2 and "1: dog<br>75.00%" in html
    assert (decoded(html)[0] == 128).all()
    html = EvolveResult(None, archive, [], 5, {})._repr_html_()
    assert "5 generations: classes: 2  median confidence: 50.00%" in html and len(decoded(html)) == 2
    result = GradientResult([3], ["three"], torch.ones(1, 1, 2, 2), np.array([0.99995]), np.array([7]))
    html = result._repr_html_()
    assert "3: three<br>99.9950%" in html and (decoded(html)[0] == 255).all()
