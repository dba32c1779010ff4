"""The gallery in a real browser: Debian's chromium, headless, driven by Selenium through Debian's chromedriver
(nothing is downloaded). Galleries of a synthetic 1000-class run and of real MNIST runs are opened from disk;
the tests count tiles, sort, filter, threshold, switch runs, open class pages with their SVG genome, read the
browser console for errors, and check a screenshot is not blank."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from gallery_runs import analysis_folder, class_names, mnist_runs, synthetic_run
from PIL import Image

from fooling_ext.gallery import build_gallery
from fooling_ext.runs.archive_file import read_archive

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromedriver (/usr/bin/chromium, /usr/bin/chromedriver; "
    "apt-get install chromium chromium-driver)",
)
CLASSES = 1000


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the test extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--allow-file-access-from-files",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def synthetic_site(tmp_path_factory) -> tuple[Path, Path]:
    run = synthetic_run(tmp_path_factory.mktemp("synthetic") / "run", CLASSES, side=32)
    site = tmp_path_factory.mktemp("site") / "gallery"
    build_gallery([run], site)
    return run, site


@pytest.fixture(scope="module")
def mnist_site(tmp_path_factory) -> tuple[Path, Path]:
    evolve_dir, gradient_dir = mnist_runs(tmp_path_factory.mktemp("mnist"))
    analysis = analysis_folder(tmp_path_factory.mktemp("analysis") / "diversity")
    site = tmp_path_factory.mktemp("site") / "gallery"
    build_gallery([evolve_dir, gradient_dir, analysis], site)
    return evolve_dir, site


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def open_page(driver, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")  # get() returns once the page has loaded


def follow(driver, link) -> None:
    """Click a link and wait for the page it opens."""
    from selenium.webdriver.support.ui import WebDriverWait

    before = driver.current_url
    link.click()
    WebDriverWait(driver, 30).until(
        lambda d: d.current_url != before and d.execute_script("return document.readyState") == "complete"
    )


def order(driver) -> list[int]:
    return driver.execute_script("return [...document.querySelectorAll('#grid .tile')].map(t => +t.dataset.i)")


def visible(driver) -> list[int]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#grid .tile')].filter(t => !t.hidden).map(t => +t.dataset.i)"
    )


def set_value(driver, element_id: str, value: str) -> None:
    """Type into a field as a user does: select what is there, delete it, type the new value."""
    from selenium.webdriver.common.keys import Keys

    element = driver.find_element("id", element_id)
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    if value:
        element.send_keys(value)


def choose(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(value)


def assert_not_blank(driver) -> None:
    shot = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("L"), dtype=np.float64)
    assert shot.shape[0] > 300 and shot.std() > 20.0, shot.std()  # a blank (or one-colour) page has std ~0


def broken_images(driver) -> list[str]:
    """Images that finished loading with nothing to show (a wrong path)."""
    return driver.execute_script(
        "return [...document.images].filter(i => i.complete && i.naturalWidth === 0 && "
        "i.getAttribute('loading') !== 'lazy').map(i => i.src)"
    )


def test_a_1000_class_index_sorts_filters_and_thresholds(browser, synthetic_site):
    _run, site = synthetic_site
    open_page(browser, site / "index.html")
    data = json.loads(browser.execute_script("return document.getElementById('gallery-data').textContent"))
    conf = [c["r"][0][0] for c in data["classes"]]
    found = [c["r"][0][1] for c in data["classes"]]
    assert len(browser.find_elements("css selector", "#grid .tile")) == CLASSES
    assert browser.find_element("id", "count").text == f"{CLASSES} of {CLASSES} classes"
    assert order(browser) == list(range(CLASSES))
    # Lazy loading: the first screen's images are there, most of the thousand are not fetched yet.
    loaded = browser.execute_script(
        "return [...document.images].filter(i => i.complete && i.naturalWidth > 0)"
        ".map(i => i.closest('.tile').dataset.i)"
    )
    assert "0" in loaded and len(loaded) < CLASSES // 2
    assert_not_blank(browser)

    choose(browser, "sort", "confidence")
    assert order(browser) == sorted(range(CLASSES), key=lambda i: (-conf[i], i))
    choose(browser, "sort", "found")
    assert order(browser) == sorted(range(CLASSES), key=lambda i: (found[i] is None, found[i] or 0, i))

    set_value(browser, "filter", "zebra")
    zebras = [i for i, name in enumerate(class_names(CLASSES)) if "zebra" in name]
    assert sorted(visible(browser)) == zebras and len(zebras) == CLASSES // 8
    assert browser.find_element("id", "count").text == f"{len(zebras)} of {CLASSES} classes"
    set_value(browser, "threshold", "99.99")
    assert sorted(visible(browser)) == [i for i in zebras if conf[i] >= float("99.99") / 100]
    set_value(browser, "filter", "")
    assert sorted(visible(browser)) == [i for i in range(CLASSES) if conf[i] >= float("99.99") / 100]
    set_value(browser, "threshold", "0")
    choose(browser, "sort", "class")
    assert order(browser) == list(range(CLASSES))

    # Scrolled to the end, the last tiles' images load.
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script(
            "const i = document.querySelector('#grid .tile[data-i=\"998\"] img');"
            " return i.complete && i.naturalWidth > 0"
        )
    )
    assert console_errors(browser) == []


def test_a_class_page_shows_the_image_figures_and_svg_genome(browser, synthetic_site):
    run, site = synthetic_site
    cells = read_archive(run / "archive.npz", ("genome_num_nodes", "genome_num_edges", "confidence"))[1]
    open_page(browser, site / "index.html")
    set_value(browser, "filter", "otter 41")
    assert visible(browser) == [41, 417]  # "otter 41" and "otter 417"
    follow(browser, browser.find_element("css selector", '#grid .tile[data-i="41"]'))
    assert browser.find_element("css selector", "h1").text == "class 41: otter 41"
    image = browser.find_element("css selector", "img.big")
    assert browser.execute_script(
        "return [arguments[0].naturalWidth, arguments[0].getBoundingClientRect().width, "
        "getComputedStyle(arguments[0]).imageRendering]",
        image,
    ) == [32, 320, "pixelated"]
    assert len(browser.find_elements("css selector", "svg.genome g.node")) == int(cells["genome_num_nodes"][41])
    assert len(browser.find_elements("css selector", "svg.genome g.edge")) == int(cells["genome_num_edges"][41])
    box = browser.execute_script("return document.querySelector('svg.genome').getBoundingClientRect().height")
    assert box > 100
    lineage = browser.find_elements("css selector", "ol.lineage a")
    assert [a.text for a in lineage] == [f"{k}: {class_names(CLASSES)[k]}" for k in (40,)]
    follow(browser, lineage[0])
    assert browser.find_element("css selector", "h1").text == "class 40: zebra 40"
    follow(browser, browser.find_element("css selector", 'a[rel="next"]'))
    assert browser.find_element("css selector", "h1").text == "class 41: otter 41"
    assert broken_images(browser) == [] and console_errors(browser) == []
    assert_not_blank(browser)


def test_real_mnist_runs_in_the_browser(browser, mnist_site):
    evolve_dir, site = mnist_site
    cells = read_archive(evolve_dir / "archive.npz", ("genome_num_nodes",))[1]
    open_page(browser, site / "index.html")
    assert len(browser.find_elements("css selector", "#grid .tile")) == 10
    assert browser.execute_script("return [...document.images].filter(i => i.naturalWidth === 28).length") == 10
    assert_not_blank(browser)
    choose(browser, "run", "1")  # the gradient run: only digits 3 and 8
    texts = [t.text for t in browser.find_elements("css selector", "#grid .tile .noimg")]
    assert texts == ["not in this run"] * 8
    assert browser.find_element("css selector", "#sort option[value=found]").text == "steps"
    set_value(browser, "threshold", "1")
    assert sorted(visible(browser)) == [3, 8]
    follow(browser, browser.find_element("css selector", '#grid .tile[data-i="3"]'))
    runs = [s.get_attribute("data-run") for s in browser.find_elements("css selector", "section.cell")]
    assert runs == ["mnist_cppn", "mnist_gradient"]
    svgs = browser.find_elements("css selector", "svg.genome")
    assert len(svgs) == 1  # the gradient run has no genome
    assert len(svgs[0].find_elements("css selector", "g.node")) == int(cells["genome_num_nodes"][3])
    text = browser.find_element("css selector", "pre.genome-text").text
    assert re.match(r"cppn outputs=1 nodes=\d+ edges=\d+", text)
    assert broken_images(browser) == [] and console_errors(browser) == []
    follow(browser, browser.find_element("css selector", "section.cell h2 a"))  # the run's page
    assert browser.execute_script("return document.querySelector('img.plot').naturalWidth") > 500
    assert "median confidence" in browser.find_element("css selector", "table.figures").text
    assert broken_images(browser) == [] and console_errors(browser) == []
    assert_not_blank(browser)


def test_every_page_loads_its_images_and_links_only_to_pages_that_exist(browser, mnist_site):
    _evolve_dir, site = mnist_site
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 1 + 10 + 2 + 1  # index, classes, runs, the analysis
    for page in pages:
        open_page(browser, page)
        assert broken_images(browser) == [], page
        targets = browser.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)")
        files = [Path(unquote(urlparse(t).path)) for t in targets if t.startswith("file:")]
        assert files and [f for f in files if not f.is_file()] == [], page
        assert console_errors(browser) == [], page


def test_hostile_names_neither_stop_the_index_script_nor_make_a_link_that_runs_code(browser, tmp_path, monkeypatch):
    import gallery_runs

    names = [
        "<!--<script>",
        "</script><script>window.injected = 1</script>",
        "\x01[x](javascript:window.injected=2)",
        '"\' onmouseover="window.injected=3" x=\'',
        '<img src=x onerror="window.injected=4">',
        "zebra 5",
    ]
    monkeypatch.setattr(gallery_runs, "class_names", lambda n: names[:n])
    run = synthetic_run(tmp_path / "<!--<script>run", classes=len(names), name="<!--<script>")
    analysis = analysis_folder(tmp_path / "analysis")
    (analysis / "report.md").write_text(
        "| class | link |\n|---|---|\n"
        + "".join(
            f"| {n} | [a](\x01javascript:window.injected=5) [b](JaVa&#x09;ScRiPt:window.injected=6) |\n" for n in names
        )
    )
    site = tmp_path / "site"
    build_gallery([run, analysis], site)
    open_page(browser, site / "index.html")
    # The script ran: the filter works and the count follows it.
    set_value(browser, "filter", "zebra")
    assert visible(browser) == [5]
    assert browser.find_element("id", "count").text == f"1 of {len(names)} classes"
    assert [t.get_attribute("title") for t in browser.find_elements("css selector", "#grid .tile")] == [
        f"{k}: {n}" for k, n in enumerate(names)
    ]
    for page in [site / "index.html", *sorted((site / "classes").glob("*.html")), *sorted(site.glob("*/*/index.html"))]:
        open_page(browser, page)
        schemes = browser.execute_script(
            "return [...document.querySelectorAll('[href],[src]')].map(e => new URL(e.getAttribute('href') ?? "
            "e.getAttribute('src'), document.baseURI).protocol)"
        )
        assert schemes and set(schemes) <= {"file:", "http:", "https:"}, page
        handlers = browser.execute_script(
            "return [...document.querySelectorAll('*')].flatMap(e => "
            "[...e.attributes].map(a => a.name)).filter(n => n.startsWith('on'))"
        )
        assert handlers == [] and browser.execute_script("return window.injected === undefined"), page
        assert console_errors(browser) == [], page
