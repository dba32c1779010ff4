"""fooling gallery: the static site of runs, sweeps and analyses, read back as files (the browser tests are in
test_gallery_browser.py): every class present with the archive's figures, class pages with lineage and genome,
runs side by side, sweeps and analyses, and bad input refused with the problem named."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from gallery_runs import analysis_folder, class_names, mnist_runs, sweep_folder, synthetic_run
from PIL import Image

from fooling_ext.cli import main
from fooling_ext.core.cppn_text import parse_genome
from fooling_ext.gallery import GalleryError, build_gallery, genome_svg, render_markdown
from fooling_ext.gallery.genome_svg import node_depths
from fooling_ext.runs import RunFolderError
from fooling_ext.runs.archive_file import read_archive
from fooling_ext.runs.report import format_confidence

CLASSES = 1000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return synthetic_run(tmp_path_factory.mktemp("synthetic") / "run", CLASSES, side=32)


@pytest.fixture(scope="module")
def synthetic_gallery(synthetic, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gallery") / "site"
    build_gallery([synthetic], out)
    return out


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> tuple[Path, Path]:
    return mnist_runs(tmp_path_factory.mktemp("mnist"))


def index_data(site: Path) -> dict:
    text = (site / "index.html").read_text()
    raw = re.search(r'<script id="gallery-data" type="application/json">(.*?)</script>', text, re.S).group(1)
    return json.loads(raw.replace("<\\/", "</"))


def class_page(site: Path, k: int, name: str) -> str:
    return (site / "classes" / f"{k:04d}-{name.replace(' ', '_')}.html").read_text()


def archive_cells(run: Path) -> dict[str, np.ndarray]:
    fields = ("confidence", "occupied", "generation", "elite_id", "parent_id", "images", "genome_num_nodes",
              "genome_num_edges")
    return read_archive(run / "archive.npz", fields)[1]


def test_every_class_is_in_the_index_with_the_archives_figures(synthetic, synthetic_gallery):
    cells = archive_cells(synthetic)
    info = json.loads((synthetic_gallery / "gallery.json").read_text())
    assert info["classes"] == CLASSES and [r["kind"] for r in info["runs"]] == ["evolve"]
    page = (synthetic_gallery / "index.html").read_text()
    assert page.count('<a class="tile"') == CLASSES
    assert page.count('loading="lazy"') == int(cells["occupied"].sum())  # empty cells have no image
    data = index_data(synthetic_gallery)
    assert [c["k"] for c in data["classes"]] == list(range(CLASSES))
    assert [c["name"] for c in data["classes"]] == class_names(CLASSES)
    conf = np.array([c["r"][0][0] for c in data["classes"]])
    np.testing.assert_allclose(conf, np.where(cells["occupied"], cells["confidence"], -1.0), atol=1e-9)
    found = [c["r"][0][1] for c in data["classes"]]
    assert found == [int(g) if o else None for g, o in zip(cells["generation"], cells["occupied"])]
    # Every occupied class's image is there, pixel for pixel the archive's; empty cells have none.
    images = sorted((synthetic_gallery / "runs" / "run" / "img").glob("*.png"))
    assert len(images) == int(cells["occupied"].sum())
    assert [c["r"][0][2] is None for c in data["classes"]] == list(~cells["occupied"])
    k = 123
    shown = np.asarray(Image.open(synthetic_gallery / data["classes"][k]["r"][0][2]).convert("RGB"))
    assert np.array_equal(shown, cells["images"][k].transpose(1, 2, 0))
    assert len(list((synthetic_gallery / "classes").glob("*.html"))) == CLASSES


def test_class_page_shows_figures_lineage_and_the_genome(synthetic, synthetic_gallery):
    cells = archive_cells(synthetic)
    names = class_names(CLASSES)
    k = 15  # the sixth of its chain: parents are the elites of 14, 13, 12, 11, 10; 10 is from the start
    page = class_page(synthetic_gallery, k, names[k])
    assert f'<dd class="confidence">{format_confidence(float(cells["confidence"][k]))}</dd>' in page
    assert f'<dd class="found">{int(cells["generation"][k])}</dd>' in page
    lineage = re.search(r'<ol class="lineage">(.*?)</ol>', page, re.S).group(1)
    steps = re.findall(r"parent (\d+), born in generation (\d+)\s*: still the elite of <a href=\"([^\"]+)\"", lineage)
    assert [int(s[0]) for s in steps] == [int(cells["elite_id"][j]) for j in (14, 13, 12, 11, 10)]
    assert [int(s[1]) for s in steps] == [int(cells["generation"][j]) for j in (14, 13, 12, 11, 10)]
    pages = [f"../classes/{j:04d}-{names[j].replace(' ', '_')}.html" for j in (14, 13, 12, 11, 10)]
    assert [s[2] for s in steps] == pages
    # The genome: as many nodes and edges in the SVG as in the archive, and a text form that reads back.
    svg = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    assert svg.count('<g class="node') == int(cells["genome_num_nodes"][k])
    assert svg.count('<g class="edge ') == int(cells["genome_num_edges"][k])
    text = html.unescape(re.search(r'<pre class="genome-text">(.*?)</pre>', page, re.S).group(1))
    genome = parse_genome(text)
    weights = [float(w) for w in re.findall(r'data-weight="([^"]+)"', svg)]
    np.testing.assert_allclose(weights, [w for _s, _d, w in genome["edges"]], rtol=1e-6)
    assert len(genome["activations"]) == int(cells["genome_num_nodes"][k])


def test_lineage_stops_where_the_archive_lost_the_parent_and_shared_elites_are_named(synthetic_gallery):
    names = class_names(CLASSES)
    page = class_page(synthetic_gallery, 97, names[97])  # its parent held class 96, which is empty
    lineage = re.search(r'<ol class="lineage">(.*?)</ol>', page, re.S).group(1)
    assert lineage.count("<li>") == 1 and "no longer in the archive" in lineage
    first = class_page(synthetic_gallery, 990, names[990])
    assert "From the initial random population" in first and '<ol class="lineage">' not in first
    last = class_page(synthetic_gallery, 999, names[999])  # holds the same elite as class 998
    twins = re.search(r'<p class="twins">(.*?)</p>', last, re.S).group(1)
    assert f"998: {names[998]}" in twins


def test_real_mnist_runs_side_by_side(mnist, tmp_path):
    evolve_dir, gradient_dir = mnist
    out = tmp_path / "site"
    build_gallery([evolve_dir, gradient_dir], out)
    data = index_data(out)
    assert [r["name"] for r in data["runs"]] == ["mnist_cppn", "mnist_gradient"]
    assert [r["found"] for r in data["runs"]] == ["generation found", "steps"]
    assert [c["k"] for c in data["classes"]] == list(range(10))
    # The gradient run climbed only digits 3 and 8: the other classes have no entry for it.
    assert [c["r"][1] is not None for c in data["classes"]] == [k in (3, 8) for k in range(10)]
    summary = json.loads((gradient_dir / "summary.json").read_text())
    three = class_page(out, 3, "3")
    assert three.count('<section class="cell"') == 2
    assert f'<dd class="found">{summary["classes"][0]["steps"]}</dd>' in three
    assert class_page(out, 0, "0").count('<section class="cell"') == 1
    # Each run's page has its summary and its own confidence plot.
    for slug, source in (("mnist_cppn", evolve_dir), ("mnist_gradient", gradient_dir)):
        run_page = (out / "runs" / slug / "index.html").read_text()
        assert (out / "runs" / slug / "confidence.png").read_bytes() == (source / "confidence.png").read_bytes()
        median = json.loads((source / "summary.json").read_text())["median"]
        assert f"<th>median confidence</th><td>{format_confidence(median)}</td>" in run_page


def test_a_run_in_progress_is_shown_from_its_checkpoint(mnist, tmp_path):
    run = tmp_path / "stopped"
    shutil.copytree(mnist[0], run)
    (run / "archive.npz").unlink()
    shutil.rmtree(run / "images")  # the images come from the checkpoint too
    out = tmp_path / "site"
    build_gallery([run], out)
    assert "stopped after generation 20" in (out / "index.html").read_text()
    cells = archive_cells(mnist[0])
    shown = np.asarray(Image.open(out / "runs" / "stopped" / "img" / "4.png"))
    assert np.array_equal(shown, cells["images"][4, 0])


def test_the_fooling_class_experiments_folder_shows_its_new_run(mnist, tmp_path):
    experiment = tmp_path / "fooling_class"
    shutil.copytree(mnist[0], experiment / "after")
    (experiment / "fooling_class.json").write_text("{}")
    build_gallery([experiment], tmp_path / "site")
    info = json.loads((tmp_path / "site" / "gallery.json").read_text())
    assert [(r["name"], r["path"]) for r in info["runs"]] == [("fooling_class/after", str(experiment / "after"))]


def test_a_sweep_shows_its_done_runs_side_by_side_and_lists_the_others(mnist, tmp_path):
    sweep = sweep_folder(tmp_path / "sweep", {"seed1": mnist[0], "seed2": mnist[0], "seed3": None})
    analysis_folder(sweep / "analysis")
    out = tmp_path / "site"
    build_gallery([sweep], out)
    page = (out / "sweeps" / "sweep" / "index.html").read_text()
    rows = re.findall(r'<tr class="(\w+)"><td>(.*?)</td>', page)
    assert [(status, re.sub(r"<[^>]+>", "", cell)) for status, cell in rows] == [
        ("done", "seed1"), ("done", "seed2"), ("pending", "seed3")]
    assert 'href="../../runs/sweep-seed1/index.html"' in page and "seed3</td>" in page
    three = class_page(out, 3, "3")
    assert re.findall(r'<section class="cell" data-run="([^"]+)"', three) == ["sweep/seed1", "sweep/seed2"]
    assert json.loads((out / "gallery.json").read_text())["analyses"] == ["sweep/analysis"]


def test_an_analysis_page_has_its_summary_report_and_figures(mnist, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(mnist[0], run)
    analysis_folder(run / "diversity")
    standalone = analysis_folder(tmp_path / "structure", kind="structure")
    out = tmp_path / "site"
    build_gallery([run, standalone], out)
    info = json.loads((out / "gallery.json").read_text())
    assert info["analyses"] == ["structure", "run/diversity"]
    assert 'href="../../analyses/run-diversity/index.html"' in (out / "runs" / "run" / "index.html").read_text()
    page = (out / "analyses" / "structure" / "index.html").read_text()
    assert "analysis: structure" in page
    assert "<tr><th>mean_distance</th><td>0.4375</td></tr>" in page
    assert "<tr><th>per_encoding.cppn</th><td>0.25</td></tr>" in page
    assert "<td>cppn</td><td>0.25</td>" in page  # the report's table, rendered
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    for figure in ("distances.png", "examples/example_0.png"):
        assert f'<img src="{figure}"' in page
        assert (out / "analyses" / "structure" / figure).read_bytes() == (standalone / figure).read_bytes()
    assert (out / "analyses" / "structure" / "distances.csv").read_text() == "a,b,distance\n0,1,0.5\n"


def test_images_missing_from_the_folder_come_from_the_archive(tmp_path):
    run = synthetic_run(tmp_path / "run", classes=12, side=256)
    shutil.rmtree(run / "images")
    (run / "summary.json").unlink()
    build_gallery([run], tmp_path / "site")
    cells = archive_cells(run)
    for k in (0, 7):
        shown = np.asarray(Image.open(tmp_path / "site" / "runs" / "run" / "img" / f"{k}.png"))
        assert np.array_equal(shown, cells["images"][k].transpose(1, 2, 0))
    # Without confidence.png the plot is drawn from metrics.csv.
    assert Image.open(tmp_path / "site" / "runs" / "run" / "confidence.png").size[0] > 500


def test_bad_input_is_refused_with_the_problem_named(synthetic, tmp_path):
    with pytest.raises(GalleryError, match="nowhere: no such folder"):
        build_gallery([tmp_path / "nowhere"], tmp_path / "a")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(GalleryError, match="notes.txt is not a folder"):
        build_gallery([tmp_path / "notes.txt"], tmp_path / "a")
    (tmp_path / "plain").mkdir()
    with pytest.raises(GalleryError, match="plain is not a run folder"):
        build_gallery([tmp_path / "plain"], tmp_path / "a")
    broken = tmp_path / "broken"
    shutil.copytree(synthetic, broken)
    (broken / "archive.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="archive.npz is not a readable archive"):
        build_gallery([broken], tmp_path / "a")
    (tmp_path / "bad_sweep").mkdir()
    (tmp_path / "bad_sweep" / "sweep.json").write_text("{not json")
    with pytest.raises(GalleryError, match="cannot read sweep .*sweep.json"):
        build_gallery([tmp_path / "bad_sweep"], tmp_path / "a")
    assert not (tmp_path / "a").exists()  # nothing written when the input is bad


def test_the_output_folder_follows_the_run_folder_rules(tmp_path):
    run = synthetic_run(tmp_path / "run", classes=5)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep")
    with pytest.raises(RunFolderError, match="busy is not empty"):
        build_gallery([run], tmp_path / "busy")
    site = tmp_path / "site"
    build_gallery([run], site)
    with pytest.raises(RunFolderError, match="holds another gallery"):
        build_gallery([run], site)
    (site / "classes" / "stale.html").write_text("old")
    build_gallery([run], site, overwrite=True)
    assert not (site / "classes" / "stale.html").exists()
    (site / "mine.txt").write_text("keep")
    with pytest.raises(RunFolderError, match="holds mine.txt, which fooling gallery did not write"):
        build_gallery([run], site, overwrite=True)
    assert (site / "mine.txt").read_text() == "keep" and (site / "index.html").is_file()


def test_cli_writes_the_gallery_and_reports_errors_in_one_line(tmp_path, capsys):
    run = synthetic_run(tmp_path / "run", classes=5)
    assert main(["gallery", str(run), "--out", str(tmp_path / "site")]) == 0
    assert "site/index.html" in capsys.readouterr().out and (tmp_path / "site" / "gallery.js").is_file()
    assert main(["gallery", str(tmp_path / "missing"), "--out", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"fooling gallery: error: {tmp_path / 'missing'}: no such folder"


def test_genome_svg_places_nodes_by_depth_and_colours_edges_by_sign():
    genome = {"num_outputs": 1, "activations": ["input"] * 4 + ["sine", "gaussian", "sigmoid"],
              "edges": [[0, 5, 1.5], [5, 6, -2.0], [6, 4, 0.5], [1, 4, -0.25]]}
    assert node_depths(7, 1, genome["edges"]) == [0, 0, 0, 0, 3, 1, 2]
    svg = genome_svg(genome)
    nodes = re.findall(r'<g class="node (\w+)" data-node="(\d+)" data-activation="(\w+)">', svg)
    assert nodes == [("input", str(i), "input") for i in range(4)] + [
        ("output", "4", "sine"), ("hidden", "5", "gaussian"), ("hidden", "6", "sigmoid")]
    edges = re.findall(r'<g class="edge (\w+)" data-src="(\d+)" data-dst="(\d+)" data-weight="([^"]+)">', svg)
    assert [(int(s), int(d), float(w), c) for c, s, d, w in edges] == [
        (0, 5, 1.5, "pos"), (5, 6, -2.0, "neg"), (6, 4, 0.5, "pos"), (1, 4, -0.25, "neg")]
    assert ">-2.00</text>" in svg and ">gau</text>" in svg and ">out</text>" in svg
    colour = genome_svg({**genome, "num_outputs": 3, "activations": ["input"] * 4 + ["sine"] * 3, "edges": []})
    assert [">H</text>", ">L</text>", ">S</text>"] == re.findall(r">[HLS]</text>", colour)


def test_markdown_renders_the_reports_blocks_and_escapes_everything_else():
    text = ("# Title\n\nSome **bold** and `code` <b>raw</b>.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- x\n- y\n\n"
            "1. first\n\n```\n<pre> & code\n```\n[ok](figures/a.png) [bad](javascript:alert(1))\n| lone\n")
    out = render_markdown(text)
    assert "<h2>Title</h2>" in out
    assert "<p>Some <strong>bold</strong> and <code>code</code> &lt;b&gt;raw&lt;/b&gt;.</p>" in out
    assert ("<table><thead><tr><th>a</th><th>b</th></tr></thead>"
            "<tbody><tr><td>1</td><td>2</td></tr></tbody></table>") in out
    assert "<ul><li>x</li><li>y</li></ul>" in out and "<ol><li>first</li></ol>" in out
    assert "<pre>&lt;pre&gt; &amp; code</pre>" in out
    assert '<a href="figures/a.png">ok</a>' in out and "[bad](javascript:alert(1))" in out
    assert "<p>| lone</p>" in out
