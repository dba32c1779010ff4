"""fooling analyze --min-confidence (and with --top): each analysis takes exactly the classes whose recorded
confidence passes, per run (diversity: in every run), says which in report.md and analysis.json, and stops with
one line naming the threshold and the best confidence when none passes. The runs are MNIST-shaped folders
whose recorded confidences are set by hand, scored by the shipped LeNet."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from fooling_ext.analyses import (
    DiversityConfig,
    RepetitionConfig,
    StructureConfig,
    TransferConfig,
    diversity,
    read_analysis,
    repetition,
    structure,
    transfer,
)
from fooling_ext.classifiers.spec import MNIST_SPEC
from fooling_ext.cli import main
from fooling_ext.runs.archive_file import read_archive, write_archive

# Recorded confidences per digit: two exactly at 0.9 as float32 (they pass 0.9), one just under it.
CONFIDENCE = (0.3, 0.9, 0.95, 0.899, 0.99, 0.5, 0.999, 0.9, 0.2, 0.97)


def striped_digits(seed: int) -> np.ndarray:
    """uint8 [10, 1, 28, 28]: vertical stripes, each digit's at its own offset (every elite repeats a motif)."""
    images = np.zeros((10, 1, 28, 28), dtype=np.uint8)
    for k in range(10):
        images[k, :, :, (np.arange(28) + k + seed) % 7 < 2] = 255
    return images


def mnist_run(path: Path, confidence=CONFIDENCE, *, seed: int = 1, empty: tuple[int, ...] = (), images=None) -> Path:
    """A finished run folder of the shipped LeNet's 10 digits with the recorded `confidence`; the cells in `empty`
    hold no elite (their recorded confidence stays, as an archive may leave it)."""
    names = [str(k) for k in range(10)]
    path.mkdir(parents=True)
    config = {
        "run": {"model": "mnist", "encoding": "cppn", "seed": seed, "backend": "cpu"},
        "classifier": {
            "name": "mnist",
            "class_names": names,
            "num_classes": 10,
            "spec": dataclasses.asdict(MNIST_SPEC),
        },
    }
    (path / "config.json").write_text(json.dumps(config))
    occupied = np.ones(10, dtype=bool)
    occupied[list(empty)] = False
    write_archive(
        path / "archive.npz",
        {
            "images": striped_digits(seed) if images is None else images,
            "confidence": np.asarray(confidence, dtype=np.float32),
            "occupied": occupied,
            "generation": np.zeros(10, dtype=np.int64),
            "elite_id": np.arange(10),
            "parent_id": np.full(10, -1),
        },
        {"class_names": names, "insertion": "all"},
    )
    return path


def passing(run: Path, threshold: float) -> set[int]:
    """The classes of the run's archive that hold an elite recorded >= threshold (float32, as recorded)."""
    _, arrays = read_archive(run / "archive.npz", ("confidence", "occupied"))
    return set(np.flatnonzero(arrays["occupied"] & (arrays["confidence"] >= np.float32(threshold))).tolist())


def most_confident(run: Path, classes: set[int], top: int) -> set[int]:
    _, arrays = read_archive(run / "archive.npz", ("confidence",))
    return set(sorted(classes, key=lambda k: -arrays["confidence"][k])[:top])


def classes_in(table: Path, column: str = "class") -> list[int]:
    return [int(row[column]) for row in csv.DictReader(table.open())]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two runs: the first as CONFIDENCE with digit 4 empty, the second with its own confidences."""
    d = tmp_path_factory.mktemp("subsets")
    second = (0.95, 0.2, 0.9, 0.999, 0.99, 0.91, 0.3, 0.97, 0.99, 0.4)
    return mnist_run(d / "a", empty=(4,)), mnist_run(d / "b", second, seed=2)


def test_the_run_sets_are_what_the_tests_expect(runs):
    a, b = runs
    assert passing(a, 0.9) == {1, 2, 6, 7, 9}  # 4 is empty, 3 (0.899) is under
    assert passing(b, 0.9) == {0, 2, 3, 4, 5, 7, 8}
    assert passing(a, 0.9) & passing(b, 0.9) == {2, 7}


def test_repetition_takes_exactly_the_elites_at_or_above_the_threshold(runs, tmp_path):
    a, _ = runs
    for threshold in (0.9, 0.95, 0.0):
        out = tmp_path / f"r{threshold}"
        summary = repetition(a, out, config=RepetitionConfig(min_confidence=threshold, examples=1))
        expected = passing(a, threshold)
        assert summary["elites"] == summary["with_repetition"] == len(expected)  # every elite is striped
        assert classes_in(out / "per_class.csv") == sorted(expected)
        analysed = f"classes >= {100 * threshold:g}% in the run: {len(expected)} of 10"
        assert summary["classes_analysed"] == analysed
        data = read_analysis(out)["summary"]
        assert data["classes_analysed"] == analysed and data["settings"]["min_confidence"] == threshold
        assert f"Classes analysed: {analysed}." in (out / "report.md").read_text().splitlines()
    whole = repetition(a, tmp_path / "all", config=RepetitionConfig(examples=1))
    assert whole["elites"] == 9 and whole["classes_analysed"] == "classes with an elite in the run: 9 of 10"


def test_structure_takes_the_threshold_first_then_the_top_of_those(runs, tmp_path):
    a, _ = runs
    base = StructureConfig(grids=(2,), permutations=1, occlusion=0, natural=False)
    out = tmp_path / "s"
    summary = structure(a, out, config=dataclasses.replace(base, min_confidence=0.9, top=2))
    expected = most_confident(a, passing(a, 0.9), 2)
    assert expected == {6, 9} and classes_in(out / "per_class.csv") == sorted(expected)
    assert summary["classes_analysed"] == "the 2 most confident of the 5 classes >= 90% in the run: 2 of 10"
    # A top larger than what passes takes all that pass.
    summary = structure(a, tmp_path / "s2", config=dataclasses.replace(base, min_confidence=0.95, top=5))
    assert classes_in(tmp_path / "s2" / "per_class.csv") == sorted(passing(a, 0.95)) == [2, 6, 9]
    assert summary["classes_analysed"] == "classes >= 95% in the run: 3 of 10"
    # --top alone: the 3 most confident of the run's 9 elites.
    summary = structure(a, tmp_path / "s3", config=dataclasses.replace(base, top=3))
    assert set(classes_in(tmp_path / "s3" / "per_class.csv")) == most_confident(a, passing(a, 0.0), 3) == {2, 6, 9}
    assert summary["classes_analysed"] == "the 3 most confident of the 9 classes with an elite in the run: 3 of 10"


def test_diversity_takes_the_classes_at_or_above_the_threshold_in_every_run(runs, tmp_path):
    a, b = runs
    c = mnist_run(tmp_path / "c", (0.95,) * 10, seed=3)
    summary = diversity([a, b, c], tmp_path / "d", config=DiversityConfig(min_confidence=0.9))
    expected = passing(a, 0.9) & passing(b, 0.9) & passing(c, 0.9)
    assert expected == {2, 7} and classes_in(tmp_path / "d" / "per_class.csv") == sorted(expected)
    assert summary["classes"] == 2 and summary["chance_nearest_same"] == 0.5
    assert summary["classes_analysed"] == "classes >= 90% in every run: 2 of 10"
    report = (tmp_path / "d" / "report.md").read_text().splitlines()
    assert "Classes analysed: classes >= 90% in every run: 2 of 10." in report
    # With --top: the classes of highest mean confidence over the runs among those passing in every run.
    _, ca = read_archive(a / "archive.npz", ("confidence",))
    _, cb = read_archive(b / "archive.npz", ("confidence",))
    mean = {k: (float(ca["confidence"][k]) + float(cb["confidence"][k])) / 2 for k in range(10) if k != 4}

    def top(classes, n):
        return set(sorted(classes, key=lambda k: -mean[k])[:n])

    both = passing(a, 0.5) & passing(b, 0.5)
    assert both == {2, 3, 5, 7} and top(both, 2) == {3, 7}
    summary = diversity([a, b], tmp_path / "d2", config=DiversityConfig(min_confidence=0.5, top=2))
    assert classes_in(tmp_path / "d2" / "per_class.csv") == sorted(top(both, 2))
    assert summary["classes_analysed"] == (
        "the 2 with the highest mean confidence of the 4 classes >= 50% in every run: 2 of 10"
    )
    # The threshold comes first: class 3 has the highest mean but is under 90% in the first run.
    assert top(mean, 2) == {3, 7} and float(ca["confidence"][3]) < 0.9
    diversity([a, b], tmp_path / "d3", config=DiversityConfig(min_confidence=0.9, top=2))
    assert classes_in(tmp_path / "d3" / "per_class.csv") == [2, 7]
    diversity([a, b], tmp_path / "d4", config=DiversityConfig(top=2))
    assert classes_in(tmp_path / "d4" / "per_class.csv") == [3, 7]


def test_transfer_takes_each_source_runs_own_classes(runs, tmp_path):
    a, b = runs
    summary = transfer([a, b], tmp_path / "t", models=["mnist"], config=TransferConfig(min_confidence=0.9, examples=1))
    rows = list(csv.DictReader((tmp_path / "t" / "elites.csv").open()))
    for run in (a, b):
        assert sorted(int(r["class"]) for r in rows if r["run"] == str(run)) == sorted(passing(run, 0.9))
    assert summary["elites"] == len(passing(a, 0.9)) + len(passing(b, 0.9)) == 12
    assert summary["classes_analysed"] == (
        f"{a}: classes >= 90% in the run: 5 of 10; {b}: classes >= 90% in the run: 7 of 10"
    )
    assert f"Classes analysed: {summary['classes_analysed']}." in (tmp_path / "t" / "report.md").read_text()
    one = transfer(a, tmp_path / "t1", models=["mnist"], config=TransferConfig(min_confidence=0.9, top=2, examples=0))
    assert one["classes_analysed"] == "the 2 most confident of the 5 classes >= 90% in the run: 2 of 10"
    assert sorted({int(r["class"]) for r in csv.DictReader((tmp_path / "t1" / "elites.csv").open())}) == [6, 9]


def test_no_class_passing_is_an_error_naming_the_threshold_and_the_best(runs, tmp_path):
    a, b = runs
    message = f"no class of {a} has an elite >= the minimum confidence 99.95%: its best is 99.90% (class 6, '6')"
    calls = (
        lambda out: repetition(a, out, config=RepetitionConfig(min_confidence=0.9995)),
        lambda out: structure(a, out, config=StructureConfig(min_confidence=0.9995, natural=False)),
        lambda out: transfer(a, out, models=["mnist"], config=TransferConfig(min_confidence=0.9995)),
    )
    for call in calls:
        with pytest.raises(ValueError) as error:
            call(tmp_path / "x")
        assert str(error.value) == message
        assert not (tmp_path / "x").exists()  # nothing written
    # Just under the threshold, the best is shown with the digits that put it under (not "90.00%").
    near = mnist_run(tmp_path / "near", (0.8999,) + (0.1,) * 9)
    with pytest.raises(ValueError, match=r"minimum confidence 90%: its best is 89.99% \(class 0, '0'\)$"):
        repetition(near, tmp_path / "x", config=RepetitionConfig(min_confidence=0.9))
    with pytest.raises(ValueError) as error:
        diversity([a, b], tmp_path / "x", config=DiversityConfig(min_confidence=0.99))
    assert str(error.value) == (
        "diversity needs at least two classes whose elite is >= the minimum confidence 99% in every run; none "
        "is, the next is class 2, '2' at 90.00% in its weakest run; each run's best: 99.90% (seed 1), 99.90% (seed 2)"
    )
    e = mnist_run(tmp_path / "e", (0.999,) * 10, seed=5)
    with pytest.raises(ValueError, match=r"; only class 6, '6' is, the next is class 9, '9' at 97.00% in its weakest"):
        diversity([a, e], tmp_path / "x", config=DiversityConfig(min_confidence=0.98))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), True, "0.9"])
def test_a_bad_threshold_is_refused_by_every_config(value):
    for config in (DiversityConfig, RepetitionConfig, StructureConfig, TransferConfig):
        with pytest.raises(ValueError, match=r"^min_confidence must be a finite number in \[0, 1\], got "):
            config(min_confidence=value).check()


def run_cli(argv, capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_line_flag(runs, tmp_path, capsys):
    a, b = runs
    out = tmp_path / "r"
    argv = ["analyze", "repetition", str(a), "--out", str(out), "--no-progress", "--examples", "0"]
    code, printed, _ = run_cli([*argv, "--min-confidence", "0.95", "--top", "2"], capsys)
    assert code == 0 and printed.splitlines()[-1] == f"analysis folder: {out} (report.md, analysis.json)"
    assert classes_in(out / "per_class.csv") == sorted(most_confident(a, passing(a, 0.95), 2)) == [6, 9]
    settings = read_analysis(out)["summary"]["settings"]
    assert (settings["min_confidence"], settings["top"]) == (0.95, 2)
    code, _, _ = run_cli(
        ["analyze", "diversity", str(a), str(b), "--out", str(tmp_path / "d"), "--no-progress", "--min-confidence=.9"],
        capsys,
    )
    assert code == 0 and classes_in(tmp_path / "d" / "per_class.csv") == [2, 7]
    for value in ("1.5", "nan", "-0.1", "ninety"):
        code, _, err = run_cli([*argv, "--overwrite", "--min-confidence", value], capsys)
        assert code == 2 and "Traceback" not in err
        assert err.strip().splitlines()[-1] == (
            f"fooling analyze repetition: error: argument --min-confidence: expected a finite number in [0, 1], "
            f"got '{value}'"
        )
    for analysis in ("structure", "transfer"):
        extra = ["--model", "mnist"] if analysis == "transfer" else ["--no-natural"]
        code, _, err = run_cli(
            ["analyze", analysis, str(a), "--out", str(tmp_path / analysis), "--min-confidence", "1", *extra], capsys
        )
        assert code == 2 and err.strip().splitlines() == [
            f"fooling analyze: error: no class of {a} has an elite >= the minimum confidence 100%: its best is "
            "99.90% (class 6, '6')"
        ]
        assert not (tmp_path / analysis).exists()


def test_help_says_diversity_takes_the_classes_passing_in_every_run(capsys):
    for analysis, words in (("diversity", "in every run"), ("repetition", "(the run's recorded confidence)")):
        with pytest.raises(SystemExit):
            main(["analyze", analysis, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"--min-confidence P only the classes whose elite is >= P {words}" in text
