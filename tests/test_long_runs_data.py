"""The long ImageNet runs kept in docs/data/imagenet-runs (docs/imagenet.md): each pack is readable, says what
the docs say of it, and its genomes still render to the run's images bit for bit, so that the analyses of
docs/analyses.md reproduce from the repository (`fooling unpack`) and the runs continue with --resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fooling_ext.search.pack import images_digest, read_pack, recorded_encoding, render_archive_images

DATA = Path(__file__).resolve().parents[1] / "docs" / "data"
# the three seeds at 600 generations, and the continuation of one of them toward the paper's 5,000
PACKS = sorted((DATA / "imagenet-runs").glob("*.npz"))


def test_the_long_runs_are_kept():
    """The three seeds docs/imagenet.md reports, each at least 600 generations with its median >= 50%, and a
    continued run (named -continued) further on than the seed it continues."""
    names = [p.name for p in PACKS]
    seeds = ["imagenet-cppn-s1.npz", "imagenet-cppn-s2.npz", "imagenet-cppn-s3.npz"]
    assert set(seeds) <= set(names)
    for name in seeds:
        meta, _ = read_pack(DATA / "imagenet-runs" / name)
        assert meta["generation"] >= 600 and meta["metrics"][-1]["median"] >= 0.5, name
    for name in [n for n in names if n not in seeds]:
        assert name.endswith("-continued.npz"), name
        meta, _ = read_pack(DATA / "imagenet-runs" / name)
        start, _ = read_pack(DATA / "imagenet-runs" / name.replace("-continued", ""))
        assert meta["generation"] > start["generation"]
        assert meta["metrics"][: start["generation"]] == start["metrics"]  # the same run, further on


@pytest.mark.parametrize("pack", PACKS, ids=[p.stem for p in PACKS])
def test_a_kept_run_is_what_the_docs_say_and_renders_to_its_images(pack):
    import torch

    meta, arrays = read_pack(pack)
    run = meta["config"]["run"]
    seed = int(pack.stem.removesuffix("-continued").rsplit("-s", 1)[1])
    assert (run["model"], run["encoding"], run["batch"], run["seed"]) == ("imagenet", "cppn", 400, seed)
    assert meta["generation"] == len(meta["metrics"]) == meta["metrics"][-1]["generation"] + 1
    confidence = np.where(arrays["occupied"], arrays["confidence"], 0.0).astype(np.float64)
    last = meta["metrics"][-1]
    assert float(np.median(confidence)) == last["median"]
    assert int((confidence >= 0.99).sum()) == last["n99"] and int(arrays["occupied"].sum()) == 1000
    encoding = recorded_encoding(meta["config"])
    genomes = {k.removeprefix("genome_"): torch.from_numpy(v) for k, v in arrays.items() if k.startswith("genome_")}
    images = render_archive_images(encoding, genomes, arrays["occupied"])
    assert images_digest(images) == meta["images"]["sha256"]


def test_the_kept_fooling_class_experiment_agrees_with_its_new_run():
    """docs/data/imagenet-fooling-class-s1: the fitted row, the figures, and the new run's pack, whose genomes render
    to its images and whose cells give the median the figures report."""
    import json

    import torch

    from fooling_ext.classifiers.spec import InputSpec
    from fooling_ext.experiments.imagenet_fooling_class.experiment import read_fit_record, read_head

    folder = DATA / "imagenet-fooling-class-s1"
    fit = read_fit_record(folder / "fit.json")
    row = read_head(folder / "fooling_head.pt", InputSpec(**fit["result"]["spec"]))
    assert row["weight"].shape == (1, 1280)
    result = json.loads((folder / "fooling_class.json").read_text())
    assert {k: v for k, v in result.items() if k != "evolution"} == fit["result"]
    meta, arrays = read_pack(folder / "after.npz")
    evolution = result["evolution"]
    assert meta["generation"] == evolution["generations"] == evolution["before_generations"] == 600
    confidence = np.where(arrays["occupied"], arrays["confidence"], 0.0)[:1000]
    assert float(np.median(confidence)) == pytest.approx(evolution["after_median"], abs=1e-7)
    assert int((confidence >= 0.99).sum()) == evolution["after_n99"]
    encoding = recorded_encoding(meta["config"])
    genomes = {k.removeprefix("genome_"): torch.from_numpy(v) for k, v in arrays.items() if k.startswith("genome_")}
    images = render_archive_images(encoding, genomes, arrays["occupied"])
    assert images_digest(images) == meta["images"]["sha256"]
