"""fooling analyze: diversity, repetition and structure on small synthetic runs whose answers are known."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fooling_ext.analyses import (
    AnalysisFolder,
    DiversityConfig,
    RepetitionConfig,
    StructureConfig,
    diversity,
    find_motif,
    read_analysis,
    remove_copies,
    repetition,
    shuffle_tiles,
    structure,
)
from fooling_ext.analyses.diversity import compare, conclusion, rms_distances
from fooling_ext.analyses.motifs import background_colour, random_blocks
from fooling_ext.analyses.repetition import conclusion as repetition_conclusion
from fooling_ext.analyses.structure import conclusion as structure_conclusion
from fooling_ext.analyses.tiles import occluded, tile_permutations
from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.spec import InputSpec
from fooling_ext.cli import main
from fooling_ext.runs.archive_file import write_archive


def write_run(
    path: Path,
    images: np.ndarray,
    *,
    model: str = "synthetic",
    encoding: str = "cppn",
    seed: int = 1,
    spec: InputSpec | None = None,
    confidence: np.ndarray | None = None,
) -> Path:
    """A finished run folder holding the given elites (uint8 [K, C, H, W]), one per class."""
    k, c, h, w = images.shape
    spec = spec or InputSpec(channels=c, height=h, width=w)
    names = [f"class{i}" for i in range(k)]
    path.mkdir(parents=True)
    config = {
        "run": {"model": model, "encoding": encoding, "seed": seed, "backend": "cpu"},
        "classifier": {"name": model, "class_names": names, "num_classes": k, "spec": dataclasses.asdict(spec)},
    }
    (path / "config.json").write_text(json.dumps(config))
    confidence = np.full(k, 0.99, dtype=np.float32) if confidence is None else confidence.astype(np.float32)
    write_archive(
        path / "archive.npz",
        {
            "images": images.astype(np.uint8),
            "confidence": confidence,
            "occupied": np.ones(k, dtype=bool),
            "generation": np.zeros(k, dtype=np.int64),
            "elite_id": np.arange(k),
            "parent_id": np.full(k, -1),
        },
        {"class_names": names, "insertion": "all"},
    )
    return path


def stripes(size: int = 32, period: int = 8, width: int = 2) -> np.ndarray:
    """float [1, size, size]: white vertical stripes `width` wide every `period` pixels on black."""
    image = np.zeros((1, size, size), dtype=np.float32)
    image[:, :, np.arange(size) % period < width] = 1.0
    return image


class Brightest(nn.Module):
    """Two classes; class 0's logit grows with the brightest pixel: one stripe is as good as four."""

    def forward(self, x):
        top = x.flatten(1).amax(dim=1)
        return torch.stack([12.0 * top - 6.0, torch.zeros_like(top)], dim=1)


class MeanBrightness(nn.Module):
    """Two classes; class 0's logit grows with the mean brightness: every stripe counts."""

    def forward(self, x):
        mean = x.flatten(1).mean(dim=1)
        return torch.stack([40.0 * mean - 5.0, torch.zeros_like(mean)], dim=1)


class TopLeftTile(nn.Module):
    """Two classes; looks only at the top-left quarter: class 0 when it is bright."""

    def forward(self, x):
        h, w = x.shape[-2:]
        mean = x[:, :, : h // 2, : w // 2].flatten(1).mean(dim=1)
        return torch.stack([20.0 * mean - 10.0, torch.zeros_like(mean)], dim=1)


class TwoLayer(nn.Module):
    """A small network ending in a linear layer, whose penultimate activations are known."""

    def __init__(self, classes: int, pixels: int):
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.Linear(pixels, 16)
        self.out = nn.Linear(16, classes)

    def penultimate_by_hand(self, x):
        return torch.relu(self.hidden(x.flatten(1)))

    def forward(self, x):
        return self.out(self.penultimate_by_hand(x))


def classifier(module: nn.Module, channels: int, size: int, classes: int = 2) -> Classifier:
    return Classifier(
        module, InputSpec(channels=channels, height=size, width=size), class_names=[f"class{i}" for i in range(classes)]
    )


# ------------------------------------------------------------------------------------------------ motifs
def test_a_striped_image_keeps_exactly_one_stripe():
    image = stripes()
    motif = find_motif(image)
    assert motif is not None and motif.kind == "stripes"
    assert motif.periods == pytest.approx([8.0])
    after, removed = remove_copies(image, motif)
    white_columns = np.flatnonzero(after[0].max(axis=0) > 0.5)
    assert len(white_columns) == 2 and white_columns[1] == white_columns[0] + 1  # one whole stripe
    assert (after[0][:, white_columns] == 1.0).all()
    assert removed.mean() == pytest.approx(0.75)


def test_a_lattice_of_dots_keeps_one_dot():
    image = np.zeros((3, 40, 40), dtype=np.float32)
    for y in range(0, 40, 10):
        for x in range(0, 40, 10):
            image[:, y + 3 : y + 6, x + 3 : x + 6] = 1.0
    motif = find_motif(image)
    assert motif.kind == "lattice" and sorted(motif.periods) == pytest.approx([10.0, 10.0])
    after, _ = remove_copies(image, motif)
    assert int((after[0] > 0.5).sum()) == 9  # one 3 x 3 dot of 16


def test_noise_smooth_images_and_single_blobs_repeat_nothing():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64]
    assert find_motif(rng.random((3, 64, 64))) is None
    assert find_motif(np.stack([x / 63.0] * 3)) is None
    assert find_motif(np.exp(-((x - 30.0) ** 2 + (y - 30.0) ** 2) / 50.0)[None]) is None
    assert find_motif(np.full((1, 32, 32), 0.3)) is None


def test_background_is_the_commonest_colour_and_control_blocks_cover_the_asked_area():
    image = stripes()
    assert background_colour(image) == pytest.approx([0.0])
    mask = random_blocks((32, 32), 768, 8, np.random.default_rng(0))
    assert mask.sum() == 768  # 12 of the 16 blocks of 8 x 8


# ------------------------------------------------------------------------------------------------ tiles
def test_shuffling_tiles_moves_whole_tiles_and_leaves_the_remainder():
    image = torch.arange(2 * 5 * 5, dtype=torch.float32).view(1, 2, 5, 5)
    out = shuffle_tiles(image, 2, np.array([3, 2, 1, 0]))
    assert torch.equal(out[..., :2, :2], image[..., 2:4, 2:4])
    assert torch.equal(out[..., 2:4, :2], image[..., :2, 2:4])
    assert torch.equal(out[..., 4, :], image[..., 4, :]) and torch.equal(out[..., :, 4], image[..., :, 4])
    orders = tile_permutations(4, 5, np.random.default_rng(0))
    assert all(sorted(order) == list(range(16)) and not np.array_equal(order, np.arange(16)) for order in orders)


def test_occlusion_copies_cover_the_image():
    copies, shape = occluded(torch.zeros(1, 10, 10), 4, 2)
    assert shape == (4, 4) and copies.shape == (16, 1, 10, 10)  # places 0, 2, 4, 6 along each side
    assert torch.equal(copies[-1, 0, 6:, 6:], torch.full((4, 4), 0.5)) and copies[-1, 0, :6].sum() == 0


# ------------------------------------------------------------------------------------------------ repetition
def test_repetition_one_copy_is_enough_for_a_max_model_not_for_a_mean_model(tmp_path):
    image = (stripes()[None] * 255).astype(np.uint8)
    images = np.concatenate([image, np.zeros_like(image)])  # class 1's elite is blank: no motif
    run = write_run(tmp_path / "run", images)
    config = RepetitionConfig(examples=2)
    kept = repetition(run, tmp_path / "max", config=config, classifier=classifier(Brightest(), 1, 32))
    assert kept["elites"] == 2 and kept["with_repetition"] == 1 and kept["stripes"] == 1
    assert kept["median_removed"] == pytest.approx(0.75)
    assert kept["median_drop"] == pytest.approx(0.0, abs=1e-6) and kept["still_ge99"] == 1.0
    lost = repetition(run, tmp_path / "mean", config=config, classifier=classifier(MeanBrightness(), 1, 32))
    # mean brightness 0.25 -> 0.0625: logit 5 -> -2.5
    assert lost["median_before"] == pytest.approx(torch.sigmoid(torch.tensor(5.0)).item(), abs=1e-5)
    assert lost["median_after"] == pytest.approx(torch.sigmoid(torch.tensor(-2.5)).item(), abs=1e-5)
    assert lost["still_ge99"] == 0.0
    folder = tmp_path / "max"
    for name in ("analysis.json", "report.md", "per_class.csv", "before_after.png", "examples/pairs.png"):
        assert (folder / name).is_file(), name
    data = read_analysis(folder)
    assert data["analysis"] == "repetition" and data["runs"] == [str(run)] and data["version"] == 1


# ------------------------------------------------------------------------------------------------ structure
def test_structure_with_a_model_that_looks_at_one_tile(tmp_path):
    size = 16
    uniform = np.full((1, size, size), 255, dtype=np.uint8)  # every tile alike: shuffling changes nothing
    run = write_run(tmp_path / "run", np.stack([uniform, np.zeros_like(uniform)]))
    natural = torch.zeros(1, 1, size, size)
    natural[:, :, : size // 2, : size // 2] = 1.0  # class 0's evidence in the top-left tile only
    config = StructureConfig(grids=(2, 4), permutations=6, occlusion=1, seed=3)
    summary = structure(
        run,
        tmp_path / "out",
        config=config,
        classifier=classifier(TopLeftTile(), 1, size),
        natural=(natural, np.array([0]), "one synthetic image"),
    )
    assert summary["grids"]["2x2"]["fooling_median_kept"] == pytest.approx(1.0)
    assert summary["grids"]["4x4"]["fooling_median_kept"] == pytest.approx(1.0)
    # Replay the seeded orders: with 2 x 2 tiles the bright tile stays top-left only when order[0] == 0.
    rng = np.random.default_rng(3)
    orders = {k: tile_permutations(k, 6, rng) for k in (2, 4)}
    full = torch.sigmoid(torch.tensor(10.0)).item()
    empty = torch.sigmoid(torch.tensor(-10.0)).item()
    expected = np.mean([full if order[0] == 0 else empty for order in orders[2]]) / full
    assert summary["grids"]["2x2"]["natural_median_kept"] == pytest.approx(expected, rel=1e-5)
    assert summary["natural_correct"] == 1
    for name in ("per_class.csv", "natural.csv", "kept.png", "examples/shuffled.png", "examples/occlusion.png"):
        assert (tmp_path / "out" / name).is_file(), name
    # Occluding the uniform elite anywhere in the top-left quarter lowers its confidence; elsewhere not at all.
    occlusion = summary["occlusion"][0]
    assert occlusion["kind"] == "elite" and occlusion["min"] < occlusion["confidence"]


# ------------------------------------------------------------------------------------------------ diversity
def test_compare_identical_runs_give_ratio_zero_and_different_runs_ratio_near_one():
    rng = np.random.default_rng(0)
    one = rng.random((20, 50)).astype(np.float32)
    same = compare([one, one.copy()], rms_distances)
    assert np.all(same["ratio"] == 0) and np.all(same["hits"] == 1) and same["identical"] == 1.0
    other = compare([one, rng.random((20, 50)).astype(np.float32)], rms_distances)
    assert np.median(other["ratio"]) == pytest.approx(1.0, abs=0.1)


def test_diversity_of_identical_and_of_different_runs(tmp_path):
    rng = np.random.default_rng(1)
    k, size = 16, 8
    base = rng.integers(0, 256, (k, 1, size, size), dtype=np.uint8)
    clf = classifier(TwoLayer(k, size * size), 1, size, classes=k)
    a = write_run(tmp_path / "a", base, seed=1)
    b = write_run(tmp_path / "b", base, seed=2)
    c = write_run(tmp_path / "c", rng.integers(0, 256, (k, 1, size, size), dtype=np.uint8), seed=3)
    alike = diversity([a, b], tmp_path / "alike", classifier=clf, config=DiversityConfig(grid_classes=3))
    assert alike["verdict"] == "does not hold"
    assert alike["pixel"]["median_ratio"] == 0.0 and alike["pixel"]["nearest_same"] == 1.0
    assert alike["feature"]["median_ratio"] == pytest.approx(0.0, abs=1e-6)
    apart = diversity([a, c], tmp_path / "apart", classifier=clf)
    assert apart["verdict"] == "holds" and apart["pixel"]["median_ratio"] > 0.8
    assert apart["pixel"]["nearest_same"] < 0.25  # chance: 1 in 16
    for name in ("analysis.json", "report.md", "per_class.csv", "histogram.png", "examples/classes_by_runs.png"):
        assert (tmp_path / "apart" / name).is_file(), name
    assert read_analysis(tmp_path / "apart")["runs"] == [str(a), str(c)]


def test_the_verdict_needs_distant_elites_and_few_own_nearest_neighbours():
    def verdict(ratio, nearest):
        summary = {
            "model": "m",
            "encoding": "e",
            "chance_nearest_same": 0.1,
            "feature": None,
            "pixel": {"median_ratio": ratio, "nearest_same": nearest},
        }
        return conclusion(summary)[0]

    assert verdict(0.9, 0.1) == "holds"
    assert verdict(0.9, 0.4) == "partly"  # far apart on the median, yet runs often agree on a class's pattern
    assert verdict(0.6, 0.1) == "partly"
    assert verdict(0.3, 0.1) == "does not hold"


def test_features_are_the_input_of_the_last_linear_layer_or_the_models_own():
    module = TwoLayer(3, 16)
    clf = classifier(module, 1, 4, classes=3)
    images = torch.rand(5, 1, 4, 4)
    assert torch.allclose(clf.features(images), module.penultimate_by_hand(images))

    class Own(TwoLayer):
        def penultimate(self, x):
            return x.flatten(1)[:, :2]

    assert torch.equal(classifier(Own(3, 16), 1, 4, classes=3).features(images), images.flatten(1)[:, :2])
    with pytest.raises(ValueError, match="no penultimate layer"):
        classifier(Brightest(), 1, 4).features(images)


def test_diversity_takes_a_sweeps_done_runs_grouped_by_encoding(tmp_path):
    rng = np.random.default_rng(2)
    entries = []
    for name, encoding, status in (
        ("c1", "cppn", "done"),
        ("c2", "cppn", "done"),
        ("d1", "direct", "done"),
        ("d2", "direct", "done"),
        ("d3", "direct", "running"),
    ):
        if status == "done":
            write_run(
                tmp_path / "sweep" / "runs" / name,
                rng.integers(0, 256, (4, 1, 8, 8), dtype=np.uint8),
                encoding=encoding,
            )
        entries.append(
            {
                "name": name,
                "folder": f"runs/{name}",
                "status": status,
                "model": "synthetic",
                "encoding": encoding,
                "seed": 1,
            }
        )
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps({"runs": entries}))
    clf = classifier(TwoLayer(4, 64), 1, 8, classes=4)
    result = diversity([tmp_path / "sweep"], tmp_path / "out", classifier=clf)
    assert set(result) == {"synthetic/cppn", "synthetic/direct"}
    assert result["synthetic/direct"]["runs"] == 2
    assert (tmp_path / "out" / "synthetic-direct" / "analysis.json").is_file()


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_input_names_the_problem(tmp_path):
    images = np.zeros((2, 1, 8, 8), dtype=np.uint8)
    clf = classifier(TwoLayer(2, 64), 1, 8)
    cppn = write_run(tmp_path / "cppn", images)
    direct = write_run(tmp_path / "direct", images, encoding="direct")
    with pytest.raises(ValueError, match="one model and encoding.*synthetic/cppn.*synthetic/direct"):
        diversity([cppn, direct], tmp_path / "x", classifier=clf)
    with pytest.raises(ValueError, match="at least two runs"):
        diversity([cppn], tmp_path / "x", classifier=clf)
    with pytest.raises(ValueError, match="given twice"):
        diversity([cppn, cppn], tmp_path / "x", classifier=clf)
    with pytest.raises(FileNotFoundError, match="no run folder"):
        repetition(tmp_path / "missing", tmp_path / "x", classifier=clf)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a run folder"):
        structure(tmp_path / "empty", tmp_path / "x", classifier=clf)
    with pytest.raises(FileNotFoundError, match="not there any more"):
        repetition(cppn, tmp_path / "x")  # the recorded model "synthetic" is no file


def test_an_analysis_folder_is_replaced_only_with_overwrite(tmp_path):
    run = write_run(tmp_path / "run", (stripes()[None] * 255).astype(np.uint8))
    clf = classifier(Brightest(), 1, 32, classes=2)
    images = np.concatenate([np.load(run / "archive.npz")["images"]] * 2)
    run2 = write_run(tmp_path / "run2", images)
    repetition(run2, tmp_path / "out", classifier=clf)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    with pytest.raises(ValueError, match="holds another analysis"):
        repetition(run2, tmp_path / "out", classifier=clf)
    repetition(run2, tmp_path / "out", classifier=clf, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == written
    assert AnalysisFolder(tmp_path / "out").holds_run()
    (tmp_path / "out" / "notes.txt").write_text("mine")  # a file no analysis writes: overwrite refuses the folder
    with pytest.raises(ValueError, match="out holds notes.txt, which fooling analyze did not write"):
        repetition(run2, tmp_path / "out", classifier=clf, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(written + ["notes.txt"])


# ------------------------------------------------------------------------------------------------ command line
def test_the_command_line_on_mnist_shaped_runs(tmp_path, capsys):
    rng = np.random.default_rng(4)
    spec = InputSpec(channels=1, height=28, width=28)
    digits = np.zeros((10, 1, 28, 28), dtype=np.uint8)
    digits[:, :, :, np.arange(28) % 7 < 2] = 255
    b = write_run(
        tmp_path / "b", rng.integers(0, 256, (10, 1, 28, 28), dtype=np.uint8), model="mnist", spec=spec, seed=2
    )
    confidence = np.linspace(0.1, 1.0, 10)  # digit 9 the most confident
    a = write_run(tmp_path / "a", digits, model="mnist", spec=spec, confidence=confidence)
    assert main(["analyze", "diversity", str(a), str(b), "--out", str(tmp_path / "d")]) == 0
    assert read_analysis(tmp_path / "d")["summary"]["feature"] is not None  # LeNet's penultimate layer
    assert main(["analyze", "repetition", str(a), "--out", str(tmp_path / "t"), "--top", "3"]) == 0
    assert (tmp_path / "t" / "per_class.csv").read_text().splitlines()[1].startswith("7,")  # 7, 8, 9
    assert main(["analyze", "repetition", str(a), "--out", str(tmp_path / "r")]) == 0
    assert read_analysis(tmp_path / "r")["summary"]["with_repetition"] == 10
    assert (
        main(
            [
                "analyze",
                "structure",
                str(a),
                "--out",
                str(tmp_path / "s"),
                "--permutations",
                "1",
                "--natural-per-class",
                "2",
                "--occlusion",
                "1",
            ]
        )
        == 0
    )
    summary = read_analysis(tmp_path / "s")["summary"]
    assert summary["natural_images"] == 20 and set(summary["grids"]) == {"2x2", "4x4", "8x8"}
    capsys.readouterr()
    direct = write_run(tmp_path / "direct", digits, model="mnist", spec=spec, encoding="direct")
    assert main(["analyze", "diversity", str(a), str(direct), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("fooling analyze: error:") and "differ" in error and len(error.splitlines()) == 1
    assert main(["analyze", "structure", str(a), "--out", str(tmp_path / "y"), "--grids", "2,x"]) == 2
    moved = write_run(tmp_path / "moved", digits, model=str(tmp_path / "gone" / "lenet.pt"), spec=spec)
    assert main(["analyze", "repetition", str(moved), "--out", str(tmp_path / "m1")]) == 2
    assert "not there any more; pass --model" in capsys.readouterr().err
    assert main(["analyze", "repetition", str(moved), "--out", str(tmp_path / "m2"), "--model", "mnist"]) == 0


# ------------------------------------------------------------------------------------------------ verdicts
def repetition_summary(before: float, after: float, still: float | None) -> dict:
    return {
        "model": "mnist",
        "encoding": "cppn",
        "elites": 10,
        "with_repetition": 4,
        "median_removed": 0.75,
        "median_before": before,
        "median_after": after,
        "median_control": 0.05,
        "still_ge99": still,
        "control_still_ge99": 0.0 if still is not None else None,
        "count_before_ge99": 4,
    }


def test_the_repetition_verdict_in_words():
    verdict, text = repetition_conclusion(repetition_summary(1.0, 0.984, 0.5))
    assert verdict == "holds"
    assert text == (
        "For mnist/cppn, 'removing the repeated copies lowers the confidence only a little' holds: keeping "
        "one copy of the motif of the 4 elites that repeat one (a median 75.0% of the image removed) "
        "takes their median confidence from 100.00% to 98.40%, where painting the same area at random "
        "places gives 5.00%; of the 4 >= 99% before, 50.0% stay >= 99% (0.0% with the control)."
    )
    assert repetition_conclusion(repetition_summary(1.0, 0.984, 0.25))[0] == "partly"  # most fall below 99%
    assert repetition_conclusion(repetition_summary(0.36, 0.004, None))[0] == "does not hold"
    assert repetition_conclusion({"model": "m", "encoding": "direct", "elites": 50, "with_repetition": 0}) == (
        "not measured",
        "For m/direct, 'removing the repeated copies lowers the confidence only a little' is not "
        "measured: none of the 50 elites repeats a motif, so there is nothing to remove.",
    )


def structure_summary(fooling: list[float], natural: list[float] | None) -> dict:
    grids = {
        f"{k}x{k}": {"fooling_median_kept": f, **({"natural_median_kept": n} if natural else {})}
        for k, f, n in zip((2, 4, 8), fooling, natural or [None] * 3)
    }
    return {"model": "imagenet", "encoding": "cppn", "grids": grids, "natural_correct": 15 if natural else 0}


def test_the_structure_verdict_in_words():
    assert structure_conclusion(structure_summary([0.173, 0.119, 0.075], [0.032, 0.044, 0.008]))[0] == "holds"
    assert (
        structure_conclusion(structure_summary([0.0017, 0.0061, 0.0002], [0.032, 0.044, 0.008]))[0] == "does not hold"
    )
    verdict, text = structure_conclusion(structure_summary([0.311, 0.073, 0.015], [0.887, 0.135, 0.002]))
    assert verdict == "partly"
    assert text == (
        "For imagenet/cppn, 'the fooling images hold no global structure the network uses' partly: with "
        "their tiles shuffled the elites keep a median 31.1% (2x2), 7.3% (4x4), 1.5% (8x8) of their "
        "confidence, natural images 88.7% (2x2), 13.5% (4x4), 0.2% (8x8); the elites keep more on the "
        "8x8 grid only."
    )
    assert structure_conclusion(structure_summary([0.5, 0.4, 0.3], None))[0] == "not compared"


def test_the_commands_print_the_verdict_write_it_in_report_md_and_show_progress_on_request(tmp_path, capsys):
    spec = InputSpec(channels=1, height=28, width=28)
    digits = np.zeros((10, 1, 28, 28), dtype=np.uint8)
    digits[:, :, :, np.arange(28) % 7 < 2] = 255
    run = write_run(tmp_path / "a", digits, model="mnist", spec=spec, confidence=np.linspace(0.1, 1.0, 10))
    for analysis, extra in (
        ("repetition", []),
        ("structure", ["--permutations", "1", "--natural-per-class", "2", "--occlusion", "1"]),
    ):
        out = tmp_path / analysis
        assert main(["analyze", analysis, str(run), "--out", str(out), "--no-progress", *extra]) == 0
        printed = capsys.readouterr()
        summary = read_analysis(out)["summary"]
        assert summary["verdict"] in ("holds", "partly", "does not hold")
        assert printed.out.splitlines() == [summary["conclusion"], f"analysis folder: {out} (report.md, analysis.json)"]
        assert printed.err == ""
        assert f"**{summary['conclusion']}**" in (out / "report.md").read_text().splitlines()[:4]
        assert main(["analyze", analysis, str(run), "--out", str(out), "--overwrite", *extra]) == 0
        bar = capsys.readouterr().err
        assert f"{analysis}: 100%" in bar and "img" in bar
