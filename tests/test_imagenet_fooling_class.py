"""The 1001-class experiment: the extended head, the fit of the new row, the data it is fitted on, and the
command end to end at small sizes (CPU)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fooling_ext.classifiers.datasets.photos import image_files, photo_views
from fooling_ext.experiments.imagenet_fooling_class.experiment import load_source_run, split_elites
from fooling_ext.experiments.imagenet_fooling_class.network import (
    FOOLING_CLASS,
    FoolingHead,
    RowFit,
    fit_fooling_row,
    fooling_probability,
    imagenet_with_fooling_class,
    penultimate_features,
    probabilities_of,
)


def imagenet_photos() -> list[Path]:
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs the ImageNet sample photos of foolbox: pip install --no-deps foolbox==3.3.4")
    return sorted(Path(list(spec.submodule_search_locations)[0], "data").glob("imagenet_*_*.jpg"))


def blobs(n: int, centre: float, seed: int) -> torch.Tensor:
    return centre + torch.randn((n, 16), generator=torch.Generator().manual_seed(seed))


def small_head() -> FoolingHead:
    original = nn.Linear(16, 4)
    with torch.no_grad():
        original.weight.copy_(torch.linspace(-1, 1, 64).view(4, 16))
        original.bias.copy_(torch.tensor([0.5, 0.0, -0.5, 1.0]))
    return FoolingHead(original)


def test_the_extended_head_computes_the_original_logits_exactly():
    head = small_head()
    head.load_row({"weight": torch.ones(1, 16), "bias": torch.tensor([2.0])})
    features = blobs(5, 0.0, 1)
    logits = head(features)
    assert logits.shape == (5, 5)
    assert torch.equal(logits[:, :4], head.original(features))
    torch.testing.assert_close(logits[:, 4], features.sum(1) + 2.0)
    assert not any(p.requires_grad for p in head.original.parameters())


def test_fitting_the_row_separates_positives_from_negatives_and_is_deterministic():
    head = small_head()
    positives, negatives = blobs(40, 1.0, 2), blobs(12, -1.0, 3)
    fit_fooling_row(head, positives, negatives)
    row = head.row_state()
    assert fooling_probability(head, blobs(20, 1.0, 4)).min() > 0.5  # unseen positives
    assert fooling_probability(head, blobs(20, -1.0, 5)).max() < 0.5  # unseen negatives
    fit_fooling_row(head, positives, negatives)
    assert torch.equal(head.row_state()["weight"], row["weight"])
    # p(fooling) is the 1001-way softmax's: sigmoid(w . f + b - logsumexp(original logits))
    f = blobs(3, 0.5, 6)
    direct = torch.sigmoid(f @ row["weight"][0] + row["bias"] - torch.logsumexp(head.original(f), dim=1))
    torch.testing.assert_close(fooling_probability(head, f), direct)


def test_a_stronger_penalty_gives_a_smaller_row():
    head = small_head()
    positives, negatives = blobs(40, 1.0, 2), blobs(12, -1.0, 3)
    fit_fooling_row(head, positives, negatives, RowFit(weight_decay=1e-4))
    loose = head.row_state()["weight"].norm()
    fit_fooling_row(head, positives, negatives, RowFit(weight_decay=1e-1))
    assert head.row_state()["weight"].norm() < loose


def test_fitting_needs_both_kinds_and_valid_options():
    head = small_head()
    with pytest.raises(ValueError, match="needs positive .* and negative"):
        fit_fooling_row(head, blobs(3, 1.0, 1), blobs(0, 0.0, 1))
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        fit_fooling_row(head, blobs(3, 1.0, 1), blobs(3, 0.0, 1), RowFit(weight_decay=-1.0))


def test_an_image_holding_several_cells_is_never_both_fitted_and_held_out():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(2, axis=1)
    elite_id = np.array([5, 5, 5, 7, 8, 8, 9, 11, 11, 12])  # 6 distinct images over 10 cells
    images = images.copy()
    for cell, elite in enumerate(elite_id):
        images[cell] = elite  # a cell shows its elite's image
    source = {"images": images, "elite_id": elite_id, "occupied": np.ones(10, dtype=bool)}
    fit, held = split_elites(source, 0.5, np.random.default_rng(0))
    fit_ids, held_ids = {int(i[0, 0, 0]) for i in fit}, {int(i[0, 0, 0]) for i in held}
    assert len(fit) == 3 and len(held) == 3 and not fit_ids & held_ids
    assert fit_ids | held_ids == {5, 7, 8, 9, 11, 12}


def test_photo_views_start_with_the_whole_photo(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    views = photo_views(tmp_path / "photo.png", 4, (32, 32), np.random.default_rng(1))
    assert views.shape == (4, 3, 32, 32) and views.dtype == np.uint8
    whole = np.asarray(Image.fromarray(pixels).resize((32, 32), Image.BILINEAR)).transpose(2, 0, 1)
    np.testing.assert_array_equal(views[0], whole)
    assert not (views[1:] == views[0]).all(axis=(1, 2, 3)).any()


def test_image_files_reads_an_imagenet_style_folder(tmp_path):
    for name in ("photos/n01440764/a.JPEG", "photos/n01443537/b.png", "photos/n01443537/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in image_files(tmp_path / "photos")] == ["a.JPEG", "b.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        image_files(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no folder of natural images"):
        image_files(tmp_path / "missing")


@pytest.mark.imagenet
def test_the_1001_class_network_keeps_the_1000_original_outputs_on_real_photos(imagenet_extra):
    """Fit the new class on colour CPPN renders and half of the real photos; on the other half the 1000
    original classes keep their ranking and their probabilities move by little, and the renders are 'fooling'."""
    from fooling_ext.classifiers import load_classifier
    from fooling_ext.core.cppn import CPPNPopulation
    from fooling_ext.core.mutation import mutate_cppn
    from fooling_ext.core.render import render
    from fooling_ext.search.evolve import classifier_for_renders

    photos = imagenet_photos()
    original = classifier_for_renders(load_classifier("imagenet"), 256, 256)
    clf, head = imagenet_with_fooling_class(original.spec)
    assert clf.num_classes == 1001 and clf.class_names[-1] == FOOLING_CLASS

    population = CPPNPopulation.initial(24, 3, seed=4)
    for generation in range(12):  # grow hidden nodes so the patterns are not just gradients
        mutate_cppn(population, seed=4, generation=generation)
    renders = (render(population, 256) * 255).round().to(torch.uint8).numpy()
    rng = np.random.default_rng(0)
    fit_photos, test_photos = photos[::2], photos[1::2]
    negatives = np.concatenate([photo_views(p, 2, (256, 256), rng) for p in fit_photos])
    fit_fooling_row(head, penultimate_features(clf, head, renders[:16]), penultimate_features(clf, head, negatives))

    test = np.stack([photo_views(p, 1, (256, 256), rng)[0] for p in test_photos])
    new, old = probabilities_of(clf, test), probabilities_of(original, test)
    assert (new[:, :1000].argmax(1) == old.argmax(1)).all()
    np.testing.assert_allclose(new[:, :1000], old, atol=0.05)
    assert new[:, -1].max() < 0.5
    # the 1000 logits themselves are the original network's: their softmax alone gives the old probabilities
    rescaled = new[:, :1000] / new[:, :1000].sum(1, keepdims=True)
    np.testing.assert_allclose(rescaled, old, atol=1e-5)
    held_renders = probabilities_of(clf, renders[16:])
    assert (held_renders.argmax(1) == 1000).mean() >= 0.75


def natural_folder(tmp_path: Path, count: int = 6) -> Path:
    """An ImageNet-style folder (one subfolder per class) of `count` of the sample photos."""
    natural = tmp_path / "natural"
    for photo in imagenet_photos()[:count]:
        (natural / f"class_{photo.stem.rsplit('_', 1)[1]}").mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, natural / f"class_{photo.stem.rsplit('_', 1)[1]}" / photo.name)
    return natural


def imagenet_source_run(tmp_path: Path):
    """A finished run against imagenet, reduced to the two files the command reads (its pictures take long to
    write): (the EvolveResult, its folder)."""
    from fooling_ext.runs import RunFolder
    from fooling_ext.search import EvolveConfig, evolve

    run = evolve(
        EvolveConfig(model="imagenet", generations=2, batch=5, seed=2, backend="cpu", insertion="top"), progress=False
    )
    source = RunFolder(tmp_path / "source")
    source.path.mkdir()
    source.write_config(run.config)
    run.archive.save_npz(source.archive_path, extra_meta={"config": run.config})
    return run, source.path


@pytest.mark.imagenet
def test_the_command_runs_end_to_end(imagenet_extra, tmp_path, capsys):
    from fooling_ext.cli import main

    natural = natural_folder(tmp_path)
    run, source = imagenet_source_run(tmp_path)
    out = tmp_path / "fooling"
    assert (
        main(
            [
                "imagenet-fooling-class",
                "--run",
                str(source),
                "--out",
                str(out),
                "--natural",
                str(natural),
                "--views",
                "2",
                "--folds",
                "3",
                "--generations",
                "1",
                "--batch",
                "4",
                "--backend",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "median confidence over the 1000 classes" in printed

    result = json.loads((out / "fooling_class.json").read_text())
    distinct = len(set(run.archive.elite_id[run.archive.occupied].tolist()))
    assert result["positives_fit"] + result["positives_held_out"] == distinct
    assert len(result["natural_photos"]) == 6 and result["natural_views"] == 2
    assert result["natural_top1_unchanged"] == 1.0
    evolution = result["evolution"]
    assert (evolution["generations"], evolution["batch"], evolution["seed"]) == (1, 4, 2)
    source_run = load_source_run(source)
    assert evolution["before_median"] == pytest.approx(float(np.median(source_run["confidence"])))
    with np.load(out / "after" / "archive.npz") as archive:
        after = np.where(archive["occupied"], archive["confidence"], 0.0)[:1000]
        occupied = int(archive["occupied"][:1000].sum())
        assert archive["confidence"].shape == (1001,)
    assert evolution["after_median"] == pytest.approx(float(np.median(after)))
    # top-class insertion, as the source run: a child whose top class is 'fooling' fills none of the 1000 cells
    assert evolution["after_distinct_elites"] == occupied <= 4
    assert json.loads((out / "after" / "config.json").read_text())["run"]["insertion"] == "top"  # as the source

    row = torch.load(out / "fooling_head.pt", weights_only=True)
    assert row["weight"].shape == (1, 1280) and row["bias"].shape == (1,)
    assert "fooling" in (out / "report.txt").read_text()
    assert not (out / ".fooling.lock").exists()  # the folder was locked while written, and given up after
    assert main(["imagenet-fooling-class", "--run", str(source), "--out", str(out), "--no-progress"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("holds another fooling-class experiment; pass --resume to continue it or --overwrite to replace it")
    )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["imagenet-fooling-class", "--run", str(source), "--out", str(tmp_path / "other")]) == 2
    assert capsys.readouterr().err.strip().endswith("is not empty; choose an empty folder or pass --overwrite")


@pytest.mark.imagenet
def test_a_stopped_experiment_resumes_to_the_uninterrupted_result(imagenet_extra, tmp_path, capsys, monkeypatch):
    """Stopped in its new run, the experiment keeps the fitted row and its figures; --resume fits nothing again
    and ends with the figures and the archive of an experiment that was never stopped."""
    from fooling_ext.cli import main
    from fooling_ext.experiments.imagenet_fooling_class import experiment
    from fooling_ext.search.evolve import RunInterrupted

    natural = natural_folder(tmp_path, 4)
    _, source = imagenet_source_run(tmp_path)
    common = ["--natural", str(natural), "--views", "2", "--folds", "2", "--batch", "4", "--backend", "cpu"]
    common += ["--no-fast-inference"]  # the engine choice is measured elsewhere; here it would only take time
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    argv = ["imagenet-fooling-class", "--run", str(source), *common, "--no-progress"]
    assert main([*argv, "--out", str(whole), "--generations", "3"]) == 0

    # Stopped as Ctrl-C or SIGTERM stops the new run: after generation 1 of 3, checkpoint written.
    real_evolve = experiment.evolve

    def stopped_after_one(config, out, **kwargs):
        real_evolve(dataclasses.replace(config, generations=1), out, **kwargs)
        raise RunInterrupted(Path(out), 1, config.generations)

    monkeypatch.setattr(experiment, "evolve", stopped_after_one)
    capsys.readouterr()
    assert main([*argv, "--out", str(stopped), "--generations", "3"]) == 130
    err = capsys.readouterr().err
    assert "interrupted after 1 of 3 generations" in err
    assert err.strip().endswith(f"continue with: fooling imagenet-fooling-class --out {stopped} --resume")
    assert not (stopped / "fooling_class.json").exists() and (stopped / "after" / "checkpoint.pt").exists()
    head_before = (stopped / "fooling_head.pt").read_bytes()
    monkeypatch.setattr(experiment, "evolve", real_evolve)

    def no_fit(*args, **kwargs):
        raise AssertionError("a resumed experiment fits nothing again")

    monkeypatch.setattr(experiment, "fit_fooling_row", no_fit)
    monkeypatch.chdir(tmp_path / "natural")  # the recorded paths are absolute: any working folder resumes
    assert main(["imagenet-fooling-class", "--out", str(stopped), "--resume", "--no-progress"]) == 0
    assert (stopped / "fooling_head.pt").read_bytes() == head_before

    def figures(folder: Path) -> dict:
        result = json.loads((folder / "fooling_class.json").read_text())
        del result["evolution"]["after_seconds"]
        return result

    resumed, uninterrupted = figures(stopped), figures(whole)
    assert resumed["evolution"]["generations"] == 3
    assert resumed == uninterrupted
    with np.load(stopped / "after" / "archive.npz") as a, np.load(whole / "after" / "archive.npz") as b:
        for key in ("confidence", "occupied", "elite_id", "images"):
            np.testing.assert_array_equal(a[key], b[key])

    # Only the new run's length and where it computes may change on resume; the rest is refused, naming its value.
    assert main(["imagenet-fooling-class", "--out", str(stopped), "--resume", "--views", "3"]) == 2
    assert "--views cannot be given with --resume: the experiment in" in capsys.readouterr().err
    assert main(["imagenet-fooling-class", "--out", str(stopped), "--resume", "--overwrite"]) == 2
    assert "--resume and --overwrite cannot be used together" in capsys.readouterr().err
    # more generations extend the new run
    assert (
        main(["imagenet-fooling-class", "--out", str(stopped), "--resume", "--generations", "4", "--no-progress"]) == 0
    )
    assert json.loads((stopped / "fooling_class.json").read_text())["evolution"]["generations"] == 4


def test_resume_refuses_a_damaged_or_changed_experiment(tmp_path, capsys):
    """What a resumed experiment reads is checked before anything runs: fit.json, the fitted row, the source run."""
    from fooling_ext.classifiers.spec import InputSpec
    from fooling_ext.cli import main
    from fooling_ext.experiments.imagenet_fooling_class.experiment import (
        FIT_FORMAT,
        HEAD_FORMAT,
        FoolingClassConfig,
        config_record,
    )

    out = tmp_path / "exp"
    out.mkdir()
    resume = ["imagenet-fooling-class", "--out", str(out), "--resume", "--no-progress"]
    assert main(resume) == 2
    assert capsys.readouterr().err.strip().endswith(f"nothing to resume: {out}/fit.json does not exist")

    (out / "fit.json").write_text('{"format": "fooling_ext.fooling_class_fit", "version": 1, "con')
    assert main(resume) == 2
    assert f"{out}/fit.json is damaged" in capsys.readouterr().err

    spec = dataclasses.asdict(InputSpec(channels=3, height=224, width=224))
    record = {
        "format": FIT_FORMAT,
        "version": 1,
        "config": config_record(FoolingClassConfig(runs=[tmp_path / "source"])),
        "result": {"spec": spec, "source_confidence_sha256": "0" * 64},
    }
    (out / "fit.json").write_text(json.dumps(record))
    (out / "fooling_head.pt").write_bytes(b"not a torch file")
    assert main(resume) == 2
    assert f"{out}/fooling_head.pt is damaged or not a fooling head" in capsys.readouterr().err

    row = {"weight": torch.full((1, 1280), float("nan")), "bias": torch.zeros(1)}
    torch.save({"format": HEAD_FORMAT, "spec": spec, **row}, out / "fooling_head.pt")
    assert main(resume) == 2
    assert "fooling_head.pt is damaged: its row must be finite floats" in capsys.readouterr().err

    torch.save(
        {"format": HEAD_FORMAT, "spec": spec, "weight": torch.zeros(1, 1280), "bias": torch.zeros(1)},
        out / "fooling_head.pt",
    )
    assert main(resume) == 2  # the source run is gone
    assert f"{tmp_path / 'source'} holds no finished run" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["fit.json", "fooling_head.pt"]  # nothing written, no lock left


def test_a_run_against_another_model_is_refused(tmp_path):
    from fooling_ext.runs import RunFolderError
    from fooling_ext.search import EvolveConfig, evolve

    evolve(EvolveConfig(generations=1, batch=4, backend="cpu"), tmp_path / "mnist", progress=False)
    with pytest.raises(ValueError, match="needs runs against the 1000-class imagenet model"):
        load_source_run(tmp_path / "mnist")
    with pytest.raises(RunFolderError, match="holds no finished run"):
        load_source_run(tmp_path)
