"""fooling gallery: the static site of runs, sweeps and analyses, read back as files (the browser tests are in
test_gallery_browser.py): every class present with the archive's figures, class pages with lineage and genome,
runs side by side, sweeps and analyses, and bad input refused with the problem named."""

from __future__ import annotations

import html
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from gallery_runs import analysis_folder, class_names, mnist_runs, sweep_folder, synthetic_run
from PIL import Image

from fooling_ext.cli import main
from fooling_ext.core.cppn_text import parse_genome
from fooling_ext.gallery import GalleryError, build_gallery, genome_svg, render_markdown
from fooling_ext.gallery.genome_svg import node_depths
from fooling_ext.gallery.markdown import safe_url
from fooling_ext.gallery.site import CAPTION, caption
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
    assert not set(raw) & set("<>&\u2028\u2029")  # escaped as \u003c...: the data cannot end its element
    return json.loads(raw)


def class_page(site: Path, k: int, name: str) -> str:
    return (site / "classes" / f"{k:04d}-{name.replace(' ', '_')}.html").read_text()


def archive_cells(run: Path) -> dict[str, np.ndarray]:
    fields = (
        "confidence",
        "occupied",
        "generation",
        "elite_id",
        "parent_id",
        "images",
        "genome_num_nodes",
        "genome_num_edges",
    )
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
        ("done", "seed1"),
        ("done", "seed2"),
        ("pending", "seed3"),
    ]
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
    assert "<tr><th>mean distance</th><td>0.4375</td></tr>" in page  # the summary's keys in words
    assert "<tr><th>per encoding: cppn</th><td>0.25</td></tr>" in page
    assert "_distance" not in page.split("<h2>Report</h2>")[0]
    assert "<li>runs/a (not in this gallery)</li>" in page
    assert "<td>cppn</td><td>0.25</td>" in page  # the report's table, rendered
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    for figure in ("distances.png", "examples/example_0.png"):
        assert f'<img src="{figure}" alt="{figure}">' in page
        assert (out / "analyses" / "structure" / figure).read_bytes() == (standalone / figure).read_bytes()
    assert (out / "analyses" / "structure" / "distances.csv").read_text() == "a,b,distance\n0,1,0.5\n"


def test_an_analysis_of_the_classes_above_a_threshold_shows_which_classes_it_took(mnist, tmp_path):
    from fooling_ext.analyses import RepetitionConfig, repetition

    run = tmp_path / "run"
    shutil.copytree(mnist[0], run)
    cells = archive_cells(run)
    recorded = cells["confidence"][cells["occupied"]]
    threshold = float(np.median(recorded))
    passing = int((recorded >= np.float32(threshold)).sum())
    assert 0 < passing < len(cells["occupied"])
    analysed = f"classes >= {100 * threshold:g}% in the run: {passing} of {len(cells['occupied'])}"
    summary = repetition(run, tmp_path / "repetition", config=RepetitionConfig(min_confidence=threshold, examples=2))
    assert summary["classes_analysed"] == analysed and summary["elites"] == passing
    out = tmp_path / "site"
    build_gallery([run, tmp_path / "repetition"], out)
    assert json.loads((out / "gallery.json").read_text())["analyses"] == ["repetition"]
    page = (out / "analyses" / "repetition" / "index.html").read_text()
    assert f"<tr><th>classes analysed</th><td>{html.escape(analysed)}</td></tr>" in page
    assert f"<tr><th>settings: min confidence</th><td>{threshold:.6g}</td></tr>" in page
    assert f"Classes analysed: {html.escape(analysed)}." in page.split("<h2>Report</h2>")[1]
    assert assert_no_markup_injected(out) >= 1


def test_a_transfer_analysis_shows_its_table_figures_and_examples_with_model_names_as_text(mnist, tmp_path):
    from fooling_ext.analyses import transfer

    run = tmp_path / "run"
    shutil.copytree(mnist[0], run)
    hostile = "<script>alert(1)</script> [x](javascript:alert(2)) &amp;"
    analysis = tmp_path / "transfer"
    summary = transfer(run, analysis, models={hostile: "mnist"})
    out = tmp_path / "site"
    build_gallery([run, analysis], out)
    assert json.loads((out / "gallery.json").read_text())["analyses"] == ["transfer"]
    page = (out / "analyses" / "transfer" / "index.html").read_text()
    assert "analysis: transfer" in page and f'<a href="../../runs/run/index.html">{run}</a>' in page
    drop = f"<tr><th>targets: {html.escape(hostile)}: median drop</th><td>0</td></tr>"
    assert drop in page and summary["targets"][hostile]["median_drop"] == 0.0
    assert f"<tr><th>targets: {html.escape(hostile)}: share target &gt;= 99%</th>" in page
    for figure in ("transfer.png", "examples/transfer_best.png", "examples/transfer_worst.png"):
        assert f'<img src="{figure}" alt="{figure}">' in page
        assert (out / "analyses" / "transfer" / figure).read_bytes() == (analysis / figure).read_bytes()
    for table in ("transfer.csv", "per_class.csv", "elites.csv"):
        assert f'<a href="{table}">{table}</a>' in page
    assert "<script>alert" not in page and 'href="javascript:' not in page
    assert assert_no_markup_injected(out) >= 3


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
    for name, text in (("config.json", "[]"), ("summary.json", "[1, 2]"), ("config.json", "[" * 100000)):
        odd = tmp_path / f"odd_{name}_{len(text)}"
        shutil.copytree(synthetic, odd)
        if name == "config.json":  # read where the archive does not carry the configuration
            (odd / "archive.npz").unlink()
        (odd / name).write_text(text)
        with pytest.raises(GalleryError, match=f"{re.escape(str(odd / name))}"):
            build_gallery([odd], tmp_path / "a")
    assert not (tmp_path / "a").exists()  # nothing written when the input is bad


def test_the_output_folder_follows_the_run_folder_rules(tmp_path):
    run = synthetic_run(tmp_path / "run", classes=5)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep")
    with pytest.raises(RunFolderError, match="busy is not empty"):
        build_gallery([run], tmp_path / "busy")
    with pytest.raises(RunFolderError, match="busy is not empty: it holds mine.txt, which a gallery does not write"):
        build_gallery([run], tmp_path / "busy", overwrite=True)
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep" and len(list((tmp_path / "busy").iterdir())) == 1
    site = tmp_path / "site"
    build_gallery([run], site)
    with pytest.raises(RunFolderError, match="site holds an earlier gallery; pass overwrite=True to replace it"):
        build_gallery([run], site)
    (site / "classes" / "stale.html").write_text("old")
    build_gallery([run], site, overwrite=True)
    assert not (site / "classes" / "stale.html").exists() and (site / "classes" / "0000-zebra_0.html").is_file()


def test_cli_writes_the_gallery_and_reports_errors_in_one_line(tmp_path, capsys):
    run = synthetic_run(tmp_path / "run", classes=5)
    site = tmp_path / "site"
    assert main(["gallery", str(run), "--out", str(site)]) == 0
    out = capsys.readouterr().out
    # The size reported is the whole site's, every file under the folder, and says so.
    total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    assert total > 2 * (site / "index.html").stat().st_size
    assert out.startswith(f"gallery: {site / 'index.html'} (the whole site: {total / 1e6:.1f} MB in {site}; ")
    # An earlier gallery there: the message names the option `fooling gallery` has.
    assert main(["gallery", str(run), "--out", str(site)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fooling gallery: error: {site} holds an earlier gallery; pass --overwrite to replace it"]
    assert main(["gallery", str(run), "--out", ""]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "fooling gallery: error: --out is empty: name a folder for the gallery"
    ]
    assert main(["gallery", str(tmp_path / "missing"), "--out", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"fooling gallery: error: {tmp_path / 'missing'}: no such folder"


def test_genome_svg_places_nodes_by_depth_and_colours_edges_by_sign():
    genome = {
        "num_outputs": 1,
        "activations": ["input"] * 4 + ["sine", "gaussian", "sigmoid"],
        "edges": [[0, 5, 1.5], [5, 6, -2.0], [6, 4, 0.5], [1, 4, -0.25]],
    }
    assert node_depths(7, 1, genome["edges"]) == [0, 0, 0, 0, 3, 1, 2]
    svg = genome_svg(genome)
    nodes = re.findall(r'<g class="node (\w+)" data-node="(\d+)" data-activation="(\w+)">', svg)
    assert nodes == [("input", str(i), "input") for i in range(4)] + [
        ("output", "4", "sine"),
        ("hidden", "5", "gaussian"),
        ("hidden", "6", "sigmoid"),
    ]
    edges = re.findall(r'<g class="edge (\w+)" data-src="(\d+)" data-dst="(\d+)" data-weight="([^"]+)">', svg)
    assert [(int(s), int(d), float(w), c) for c, s, d, w in edges] == [
        (0, 5, 1.5, "pos"),
        (5, 6, -2.0, "neg"),
        (6, 4, 0.5, "pos"),
        (1, 4, -0.25, "neg"),
    ]
    assert ">-2.00</text>" in svg and ">gau</text>" in svg and ">out</text>" in svg
    colour = genome_svg({**genome, "num_outputs": 3, "activations": ["input"] * 4 + ["sine"] * 3, "edges": []})
    assert [">H</text>", ">L</text>", ">S</text>"] == re.findall(r">[HLS]</text>", colour)


def test_markdown_renders_the_reports_blocks_and_escapes_everything_else():
    text = (
        "# Title\n\nSome **bold** and `code` <b>raw</b>.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- x\n- y\n\n"
        "1. first\n\n```\n<pre> & code\n```\n[ok](figures/a.png) [bad](javascript:alert(1))\n| lone\n"
    )
    out = render_markdown(text)
    assert "<h2>Title</h2>" in out
    assert "<p>Some <strong>bold</strong> and <code>code</code> &lt;b&gt;raw&lt;/b&gt;.</p>" in out
    assert (
        "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>"
    ) in out
    assert "<ul><li>x</li><li>y</li></ul>" in out and "<ol><li>first</li></ol>" in out
    assert "<pre>&lt;pre&gt; &amp; code</pre>" in out
    assert '<a href="figures/a.png">ok</a>' in out and "[bad](javascript:alert(1))" in out
    assert "<p>| lone</p>" in out


# ------------------------------------------------------------------------------------------------------------
# Hostile text: class names, run names, model names, sweep and analysis text, report.md

HOSTILE = [
    "<!--<script>",
    "</script><script>alert(1)</script>",
    "\"' onmouseover=alert(1) x='",
    "<img src=x onerror=alert(1)>",
    "&lt;b&gt; &amp; \u2028\u2029",
    "\x01[x](javascript:alert(1))",
    "[y](JaVaScRiPt:alert(1))",
    "</SCRIPT ><!-- -->",
    "tench, Tinca tinca",
]
URL_VECTORS = [
    "javascript:alert(1)",
    "\x01javascript:alert(1)",
    "\x00javascript:alert(1)",
    " javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "java&#x09;script:alert(1)",
    "java&Tab;script:alert(1)",
    "&#0000106avascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "DATA:image/png;base64,AA",
    "vbscript:msgbox(1)",
    "\x1fvbscript:msgbox(1)",
    "jav\x00ascript:alert(1)",
    "file:///etc/passwd",
    "javascript&colon;alert(1)",
]
SAFE_URLS = ["https://example.org/a?b=1", "HTTP://example.org", "figures/a.png", "#top", "../x.csv", "a%3Ab.png"]


class Markup(HTMLParser):
    """What a browser would make of a page: every URL attribute (decoded), event handler and script."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls, self.handlers, self.scripts = [], [], []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name, value))
            if name in ("href", "src", "action", "formaction", "xlink:href", "poster", "data", "srcset"):
                self.urls.append(value or "")
        if tag == "script":
            self.scripts.append(dict(attrs))


def url_scheme(url: str) -> str | None:
    """The scheme a browser reads: C0 controls and spaces stripped from the ends, tabs and newlines removed."""
    text = re.sub(r"[\t\n\r]", "", url.strip("".join(map(chr, range(0x21)))))
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", text)
    return m.group(1).lower() if m else None


def assert_no_markup_injected(site: Path) -> int:
    """Every page of the site: no event handler, no URL with a scheme other than http(s), no script but the
    index's two, and no "<" inside a script element (which could end it or open a comment). Returns the count."""
    pages = sorted(site.rglob("*.html"))
    for page in pages:
        text = page.read_text()
        markup = Markup()
        markup.feed(text)
        assert markup.handlers == [], page
        assert [u for u in markup.urls if url_scheme(u) not in (None, "http", "https")] == [], page
        expected = [{"id": "gallery-data", "type": "application/json"}, {"src": "gallery.js"}]
        assert markup.scripts == (expected if page == site / "index.html" else []), page
        for body in re.findall(r"<script[^>]*>(.*?)</script", text, re.S | re.I):
            assert "<" not in body, page
    return len(pages)


@pytest.mark.parametrize("url", URL_VECTORS)
def test_markdown_drops_every_url_a_browser_would_not_read_as_http_or_relative(url):
    assert not safe_url(url)
    for text in (f"[click]({url})", f"![pic]({url})"):
        out = render_markdown(text)
        assert "<a " not in out and "<img " not in out, out


@pytest.mark.parametrize("url", SAFE_URLS)
def test_markdown_keeps_http_relative_and_anchor_urls(url):
    assert safe_url(url)
    assert render_markdown(f"[ok]({url})") == f'<p><a href="{html.escape(url)}">ok</a></p>'


def test_hostile_text_in_every_page_is_shown_as_text(tmp_path, monkeypatch):
    import gallery_runs

    monkeypatch.setattr(gallery_runs, "class_names", lambda n: (HOSTILE * 2)[:n])
    run = synthetic_run(
        tmp_path / '"><svg onload=alert(1)> javascript:x',
        classes=len(HOSTILE),
        name="<!--<script>alert('model')</script>",
    )
    sweep = sweep_folder(tmp_path / "<!--<script>sweep", {"</script>": run, "\"'><img src=x onerror=y>": None})
    info = json.loads((sweep / "sweep.json").read_text())
    (sweep / "sweep.json").write_text(json.dumps({**info, "spec": {"<!--<script>": "</script>"}}))
    analysis = analysis_folder(tmp_path / "analysis")
    (analysis / "analysis.json").write_text(
        json.dumps(
            {
                "format": "fooling_ext.analysis",
                "analysis": "<script>kind</script>",
                "runs": HOSTILE,
                "summary": {"<!--<script>": "</script>", 'x" onclick="y': {"</script>": "javascript:alert(1)"}},
            }
        )
    )
    (analysis / "report.md").write_text(
        "# <!--<script> "
        + " ".join(HOSTILE)
        + "\n\n"
        + "\n".join(f"- [a]({u}) ![b]({u})" for u in URL_VECTORS)
        + "\n\n| class | link |\n|---|---|\n"
        + "".join(f"| {h} | [c](\x01javascript:1) |\n" for h in HOSTILE)
    )
    (analysis / "javascript:alert(1).png").write_bytes((analysis / "distances.png").read_bytes())
    (analysis / "javascript:alert(2).csv").write_text("a\n1\n")
    site = tmp_path / "site"
    build_gallery([run, sweep, analysis], site)
    assert assert_no_markup_injected(site) == 1 + len(HOSTILE) + 2 + 1 + 1  # index, classes, runs, sweep, analysis
    # The text itself is all there, unchanged, as text.
    assert [c["name"] for c in index_data(site)["classes"]] == HOSTILE
    assert index_data(site)["runs"][0]["name"] == run.name
    analysis_page = (site / "analyses" / "analysis" / "index.html").read_text()
    assert '<img src="javascript%3Aalert%281%29.png" alt="javascript:alert(1).png">' in analysis_page
    assert f"<li>{html.escape(HOSTILE[0])} (not in this gallery)</li>" in analysis_page
    for k, name in enumerate(HOSTILE):
        pages = list((site / "classes").glob(f"{k:04d}-*.html"))
        title = re.search(r'<h1 class="class-title">([^<]*)</h1>', pages[0].read_text()).group(1)
        assert len(pages) == 1 and html.unescape(title) == f"class {k}: {name}"
    run_page = next((site / "runs").glob("*svg*/index.html")).read_text()
    model = re.search(r"<tr><th>model</th><td>([^<]*)</td>", run_page).group(1)
    assert html.unescape(model) == "<!--<script>alert('model')</script>"


# ------------------------------------------------------------------------------------------------------------
# Links out of a run folder, the output folder on an input, --overwrite over foreign files


def test_a_link_out_of_a_run_folder_is_refused_and_nothing_is_written(tmp_path, capsys):
    run = synthetic_run(tmp_path / "run", classes=5)
    image = sorted((run / "images").iterdir())[2]
    image.unlink()
    image.symlink_to("/etc/passwd")
    assert main(["gallery", str(run), "--out", str(tmp_path / "site")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"fooling gallery: error: {image} leads to /etc/passwd, outside {run}: the gallery reads no file from "
        "outside the folders it is given"
    ]
    assert not (tmp_path / "site").exists()
    # A link that stays inside the run folder is followed.
    (run / "spare.png").write_bytes(
        (run / "images" / sorted(p.name for p in (run / "images").iterdir())[0]).read_bytes()
    )
    image.unlink()
    image.symlink_to(run / "spare.png")
    build_gallery([run], tmp_path / "site")
    assert (tmp_path / "site" / "runs" / "run" / "img" / "2.png").read_bytes() == (run / "spare.png").read_bytes()


@pytest.mark.parametrize("where", ["report.txt", "images folder", "report.md", "analysis folder", "sweep run"])
def test_every_kind_of_link_out_of_a_folder_is_refused(tmp_path, where):
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "notes.txt").write_text("private")
    run = synthetic_run(tmp_path / "run", classes=5)
    given = run
    if where == "report.txt":
        (run / "report.txt").unlink()
        link = run / "report.txt"
        link.symlink_to(secret / "notes.txt")
    elif where == "images folder":
        shutil.copytree(run / "images", secret / "images")
        shutil.rmtree(run / "images")
        (run / "images").symlink_to(secret / "images")
        link = run / "images" / "class_"  # whichever image is read first
    elif where == "report.md":
        analysis = analysis_folder(run / "diversity")
        (analysis / "report.md").unlink()
        link = analysis / "report.md"
        link.symlink_to(secret / "notes.txt")
    elif where == "analysis folder":
        analysis_folder(secret / "diversity")
        link = run / "diversity"
        link.symlink_to(secret / "diversity")
    else:
        shutil.copytree(run, secret / "run")
        given = sweep_folder(tmp_path / "sweep", {"a": run})
        info = json.loads((given / "sweep.json").read_text())
        info["runs"][0]["folder"] = "../elsewhere/run"
        (given / "sweep.json").write_text(json.dumps(info))
        link = given / "../elsewhere/run"
    with pytest.raises(GalleryError, match=f"^{re.escape(str(link))}.* leads to .*elsewhere.*, outside "):
        build_gallery([given], tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_the_gallery_never_lands_on_its_inputs(tmp_path, capsys):
    run = synthetic_run(tmp_path / "src" / "run", classes=5)
    sweep = sweep_folder(tmp_path / "sweep", {"seed1": run})
    (tmp_path / "alias").symlink_to(sweep)

    def snapshot() -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}

    before = snapshot()
    for inputs, out in (
        ([sweep], sweep),
        ([sweep], tmp_path / "alias"),
        ([sweep], tmp_path),
        ([run], run),
        ([run, sweep], tmp_path / "src"),
    ):
        assert main(["gallery", *map(str, inputs), "--out", str(out), "--overwrite"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"fooling gallery: error: {out} is (or holds) the folder "), err
        assert err[0].endswith("that the gallery shows: write the gallery into a folder of its own")
    assert snapshot() == before
    with pytest.raises(GalleryError, match="output folder's name is empty"):
        build_gallery([run], "")
    # Inside a sweep, in a folder of its own, is fine.
    build_gallery([sweep], sweep / "gallery")
    assert (sweep / "gallery" / "index.html").is_file()
    assert {k: v for k, v in snapshot().items() if not k.startswith(str(sweep / "gallery"))} == before


def test_overwrite_removes_only_a_gallery_and_refuses_a_folder_holding_anything_else(tmp_path, capsys):
    run = synthetic_run(tmp_path / "run", classes=5)
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("config.json", "photo.jpg", "notes.md"):
        (mine / name).write_text(name)
    assert main(["gallery", str(run), "--out", str(mine), "--overwrite"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"fooling gallery: error: {mine} is not empty: it holds config.json, which a gallery does not write; "
        "choose an empty folder (--overwrite replaces only a gallery)"
    ]
    assert sorted(p.name for p in mine.iterdir()) == ["config.json", "notes.md", "photo.jpg"]
    site = tmp_path / "site"
    build_gallery([run], site)
    for foreign in ("runs/run/notes.txt", "classes/photos", "gallery.json.bak", "analyses/x/report.md"):
        path = site / foreign
        path.parent.mkdir(parents=True, exist_ok=True)
        if foreign == "classes/photos":
            path.mkdir()
        else:
            path.write_text("keep")
        with pytest.raises(RunFolderError, match=f"site holds a gallery and also {foreign}, which a gallery"):
            build_gallery([run], site, overwrite=True)
        assert path.exists() and (site / "index.html").is_file()
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    (site / "classes" / "0001-otter_1.html").unlink()
    (site / "classes" / "0001-otter_1.html").symlink_to("/etc/passwd")  # a link is never the gallery's own
    with pytest.raises(RunFolderError, match="also classes/0001-otter_1.html, which"):
        build_gallery([run], site, overwrite=True)
    (site / "classes" / "0001-otter_1.html").unlink()
    (site / "classes" / "stale.html").write_text("old")
    build_gallery([run], site, overwrite=True)
    assert not (site / "classes" / "stale.html").exists() and (site / "classes" / "0001-otter_1.html").is_file()


# ------------------------------------------------------------------------------------------------------------
# What the pages say


def test_the_run_page_shows_each_figure_once(mnist, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(mnist[0], run)
    build_gallery([run], tmp_path / "site")
    page = (tmp_path / "site" / "runs" / "run" / "index.html").read_text()
    labels = re.findall(r"<tr><th>([^<]+)</th>", page)
    assert len(labels) == len(set(labels)) and labels.count("model") == 1 and labels.count("generations") == 1
    assert "<tr><th>generations</th><td>20</td></tr>" in page and "<tr><th>model</th><td>mnist</td></tr>" in page
    # A run stopped early: the summary's figure and the setting differ, and both are shown, labelled apart.
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "generations": 7}))
    build_gallery([run], tmp_path / "site", overwrite=True)
    page = (tmp_path / "site" / "runs" / "run" / "index.html").read_text()
    assert "<tr><th>generations</th><td>7</td></tr>" in page
    assert "<tr><th>generations (setting)</th><td>20</td></tr>" in page


def test_an_analysis_links_the_runs_it_names_that_the_gallery_shows(mnist, tmp_path):
    run = tmp_path / "runs" / "seed1"
    shutil.copytree(mnist[0], run)
    analysis = analysis_folder(run / "diversity")
    info = json.loads((analysis / "analysis.json").read_text())
    (analysis / "analysis.json").write_text(json.dumps({**info, "runs": [str(run), "runs/seed1", "runs/seed2"]}))
    build_gallery([run], tmp_path / "site")
    page = (tmp_path / "site" / "analyses" / "seed1-diversity" / "index.html").read_text()
    items = re.findall(r"<li>(.*?)</li>", re.search(r'<ul class="analysis-runs">(.*?)</ul>', page).group(1))
    assert items == [
        f'<a href="../../runs/seed1/index.html">{run}</a>',
        '<a href="../../runs/seed1/index.html">runs/seed1</a>',
        "runs/seed2 (not in this gallery)",
    ]


def test_captions_are_cut_at_a_word_boundary_with_an_ellipsis(tmp_path, monkeypatch):
    import gallery_runs

    names = [
        "tench, Tinca tinca",
        "great white shark, white shark, man-eater, man-eating shark, Carcharodon",
        "loggerhead, loggerhead turtle, Caretta caretta",
        "Supercalifragilisticexpialidocious-and-then-some",
        "hen",
    ]
    assert caption("2: " + names[1]) == "2: great white shark, white\u2026"
    assert caption("1: " + names[0]) == "1: tench, Tinca tinca"
    assert caption("123: loggerhead, loggerhead turtle, Caretta") == "123: loggerhead, loggerhead\u2026"
    monkeypatch.setattr(gallery_runs, "class_names", lambda n: names[:n])
    run = synthetic_run(tmp_path / "run", classes=len(names))
    build_gallery([run], tmp_path / "site")
    page = (tmp_path / "site" / "index.html").read_text()
    labels = re.findall(r'title="([^"]+)">.*?<span class="label">([^<]+)</span>', page, re.S)
    assert [html.unescape(t) for t, _ in labels] == [f"{k}: {n}" for k, n in enumerate(names)]
    shown = [html.unescape(c) for _, c in labels]
    assert shown == [
        "0: tench, Tinca tinca",
        "1: great white shark, white\u2026",
        "2: loggerhead, loggerhead\u2026",
        "3: Supercalifragilisticexpialid\u2026",
        "4: hen",
    ]
    for full, cut in zip([f"{k}: {n}" for k, n in enumerate(names)], shown):
        words = cut.rstrip("\u2026").split()
        assert len(cut) <= CAPTION and full.split()[: len(words) - 1] == words[:-1]
        assert full.split()[len(words) - 1].startswith(words[-1])
