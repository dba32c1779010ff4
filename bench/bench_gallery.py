"""`fooling gallery` on a 1000-class run: how long the site takes to write, and its size on disk.

The run is synthetic but shaped like an ImageNet CPPN run as `fooling evolve` leaves it: 1000 classes, one
colour CPPN per class with 26-34 hidden nodes (bench/populations.py) rendered at 256 x 256, its PNGs, archive,
metrics, report, summary and confidence plot (tests/gallery_runs.py writes it with the package's own writers).
Each round writes the whole gallery into an empty folder: the index of 1000 tiles, 1000 class pages with their
SVG genomes, the run's page, and a copy of every image. Target: under 10 s on 2 CPU cores.

Run: python -m pytest bench/bench_gallery.py --benchmark-only
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from populations import benchmark_population

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from gallery_runs import synthetic_run

from fooling_ext.gallery import build_gallery, gallery_size

CLASSES, SIDE = 1000, 256


@pytest.fixture(scope="module")
def imagenet_sized_run(tmp_path_factory) -> Path:
    population = benchmark_population(CLASSES, 3, (26, 34), seed=1000)
    return synthetic_run(
        tmp_path_factory.mktemp("run") / "run",
        CLASSES,
        side=SIDE,
        population=population,
        name="imagenet-sized",
        plot=True,
    )


def test_gallery_of_1000_classes(benchmark, imagenet_sized_run, tmp_path):
    out = tmp_path / "gallery"

    def fresh():
        shutil.rmtree(out, ignore_errors=True)

    benchmark.pedantic(build_gallery, args=([imagenet_sized_run], out), setup=fresh, rounds=3, iterations=1)
    size = gallery_size(out)
    run_size = gallery_size(imagenet_sized_run)
    benchmark.extra_info.update(
        classes=CLASSES,
        side=SIDE,
        gallery_bytes=size,
        run_bytes=run_size,
        files=sum(1 for p in out.rglob("*") if p.is_file()),
    )
    assert len(list((out / "classes").glob("*.html"))) == CLASSES
