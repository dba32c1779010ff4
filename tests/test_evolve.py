"""MAP-Elites end to end on the shipped LeNet: outputs, determinism, resume, and bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from fooling_ext.classifiers import ImageScorer, InputSpec, load_classifier
from fooling_ext.cli import main
from fooling_ext.runs import RunFolder, RunFolderError
from fooling_ext.runs.report import load_report
from fooling_ext.search import EvolveConfig, evolve, paper_batch, render_size
from fooling_ext.search.encodings import DirectEncoding


@pytest.fixture(scope="module")
def lenet():
    return load_classifier("mnist")


def small(**kw) -> EvolveConfig:
    base = dict(model="mnist", encoding="cppn", generations=8, batch=24, seed=3, backend="cpu", checkpoint_every=3)
    base.update(kw)
    return EvolveConfig(**base)


def archive_state(result):
    return result.archive.state_dict()


def assert_same_archive(a, b):
    sa, sb = archive_state(a), archive_state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_run_folder_has_everything(tmp_path, lenet):
    out = tmp_path / "run"
    result = evolve(small(), out, classifier=lenet, progress=False)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["run"]["seed"] == 3 and cfg["encoding"]["encoding"] == "cppn"
    assert cfg["classifier"]["class_names"] == [str(i) for i in range(10)]
    assert cfg["encoding"]["mutation"]["p_add_node"] == 0.5
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("generation,best,median,mean,n99,n9999")
    assert len(rows) == 1 + 8
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(8))
    with np.load(out / "archive.npz") as z:
        assert z["images"].shape == (10, 1, 28, 28) and z["images"].dtype == np.uint8
        np.testing.assert_allclose(z["confidence"], result.archive.confidence.numpy())
    pngs = sorted(p.name for p in (out / "images").glob("*.png"))
    assert len(pngs) == 10 and pngs[0] == "class_000_0.png"
    from PIL import Image

    assert Image.open(out / "grid.png").size == (10 * (128 + 6) + 6, 128 + 30 + 2 * 6)  # tiles, captions, gaps
    assert (out / "confidence.png").stat().st_size > 1000
    report = (out / "report.txt").read_text()
    assert report.splitlines()[0].split() == ["class", "name", "confidence", "generation", "elite", "parent"]
    assert len(report.splitlines()) == 1 + 10 + 2 + 1  # header, classes, blank, summary, genome capacity
    assert load_report(out).splitlines()[1:] == report.rstrip("\n").splitlines()
    # Metrics agree with the archive they describe.
    last = result.metrics[-1]
    conf = result.archive.confidence.numpy()
    assert last["median"] == pytest.approx(float(np.median(conf)))
    assert last["n99"] == int((conf >= 0.99).sum())
    assert last["evaluations"] == 8 * 24


def test_same_seed_same_archive_and_other_seed_differs(lenet):
    a = evolve(small(), classifier=lenet, progress=False)
    b = evolve(small(), classifier=lenet, progress=False)
    c = evolve(small(seed=4), classifier=lenet, progress=False)
    assert_same_archive(a, b)
    assert not torch.equal(a.archive.images, c.archive.images)


@pytest.mark.parametrize("encoding", ["cppn", "direct"])
def test_resume_ends_in_the_same_archive(tmp_path, lenet, encoding):
    straight = evolve(small(encoding=encoding, generations=10), tmp_path / "a", classifier=lenet, progress=False)
    # A run stopped after 4 generations, then continued to 10.
    evolve(small(encoding=encoding, generations=4), tmp_path / "b", classifier=lenet, progress=False)
    resumed = evolve(small(encoding=encoding, generations=10), tmp_path / "b", classifier=lenet, resume=True,
                     progress=False)
    assert_same_archive(straight, resumed)
    assert [m["generation"] for m in resumed.metrics] == list(range(10))
    rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 11


def test_a_run_recorded_with_the_old_name_of_the_direct_mutation_settings_resumes(tmp_path, lenet):
    config = small(encoding="direct", generations=6, direct_mutation={"rate": 0.2})
    straight = evolve(config, tmp_path / "a", classifier=lenet, progress=False)
    evolve(dataclasses.replace(config, generations=3), tmp_path / "b", classifier=lenet, progress=False)
    folder = RunFolder(tmp_path / "b")
    state = folder.load_checkpoint()
    state["config"]["run"]["pixel_mutation"] = state["config"]["run"].pop("direct_mutation")  # as 0.1.0 wrote it
    folder.save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")})
    resumed = evolve(config, tmp_path / "b", classifier=lenet, resume=True, progress=False)
    assert_same_archive(straight, resumed)
    changed = dataclasses.replace(config, direct_mutation={"rate": 0.3})
    with pytest.raises(RunFolderError, match=r"run.direct_mutation.rate: 0.2 -> 0.3"):
        evolve(changed, tmp_path / "b", classifier=lenet, resume=True, progress=False)


def test_interrupt_keeps_finished_generations_and_resumes(tmp_path, lenet):
    straight = evolve(small(generations=9), classifier=lenet, progress=False)

    def stop_after_five(row):
        if row["generation"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evolve(small(generations=9), tmp_path / "run", classifier=lenet, progress=False, on_generation=stop_after_five)
    state = RunFolder(tmp_path / "run").load_checkpoint()
    assert state["generation"] == 5  # the five generations that finished were kept (checkpoint_every = 3)
    resumed = evolve(small(generations=9), tmp_path / "run", classifier=lenet, resume=True, progress=False)
    assert_same_archive(straight, resumed)


def test_checkpoints_are_written_on_schedule_and_at_the_end_once(tmp_path, lenet, monkeypatch):
    saved = []
    save = RunFolder.save_checkpoint

    def recording_save(self, state):
        saved.append(state["generation"])
        return save(self, state)

    monkeypatch.setattr(RunFolder, "save_checkpoint", recording_save)
    evolve(small(generations=6), tmp_path / "a", classifier=lenet, progress=False)
    assert saved == [3, 6]  # the last scheduled checkpoint is the final state: not written again
    saved.clear()
    evolve(small(generations=7), tmp_path / "b", classifier=lenet, progress=False)
    assert saved == [3, 6, 7]


def test_folder_holding_a_run_is_refused_unless_resume_or_overwrite(tmp_path, lenet):
    out = tmp_path / "run"
    evolve(small(generations=2), out, classifier=lenet, progress=False)
    with pytest.raises(RunFolderError, match="holds another run; pass resume=True .* or overwrite=True to replace it"):
        evolve(small(generations=2), out, classifier=lenet, progress=False)
    result = evolve(small(generations=3, seed=9), out, classifier=lenet, overwrite=True, progress=False)
    assert json.loads((out / "config.json").read_text())["run"]["seed"] == 9
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 3
    assert result.generation == 3
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="is not empty"):
        evolve(small(generations=1), other, classifier=lenet, progress=False)


def test_corrupt_checkpoint_is_a_clear_error_and_nothing_is_overwritten(tmp_path, lenet):
    out = tmp_path / "run"
    evolve(small(generations=3), out, classifier=lenet, progress=False)
    ckpt = out / "checkpoint.pt"
    truncated = ckpt.read_bytes()[: ckpt.stat().st_size // 2]
    ckpt.write_bytes(truncated)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(RunFolderError, match="checkpoint .* is truncated or damaged"):
        evolve(small(generations=6), out, classifier=lenet, resume=True, progress=False)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert before == after
    ckpt.write_bytes(b"garbage")
    with pytest.raises(RunFolderError, match="corrupt or truncated"):
        evolve(small(generations=6), out, classifier=lenet, resume=True, progress=False)


def test_resume_with_a_different_configuration_names_the_keys(tmp_path, lenet):
    out = tmp_path / "run"
    evolve(small(generations=2), out, classifier=lenet, progress=False)
    with pytest.raises(RunFolderError, match=r"run\.seed: 3 -> 4"):
        evolve(small(generations=4, seed=4), out, classifier=lenet, resume=True, progress=False)
    with pytest.raises(RunFolderError, match=r"run\.batch: 24 -> 30"):
        evolve(small(generations=4, batch=30), out, classifier=lenet, resume=True, progress=False)
    with pytest.raises(RunFolderError, match="nothing to resume"):
        evolve(small(generations=4), tmp_path / "empty", classifier=lenet, resume=True, progress=False)


def test_resume_against_a_model_with_other_classes_is_refused(tmp_path, lenet):
    out = tmp_path / "run"
    evolve(small(generations=2), out, classifier=lenet, progress=False)
    renamed = load_classifier("mnist", class_names=[f"digit {i}" for i in range(10)])
    with pytest.raises(RunFolderError, match="classifier.class_names"):
        evolve(small(generations=4), out, classifier=renamed, resume=True, progress=False)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(generations=0), "generations must be a positive integer"),
        (dict(generations=-3), "generations must be a positive integer"),
        (dict(batch=0), "batch must be a positive integer"),
        (dict(encoding="pixels"), "encoding must be one of"),
        (dict(insertion="best"), "insertion must be one of"),
        (dict(checkpoint_every=0), "checkpoint_every must be a whole number > 0"),
        (dict(seed=-1), r"seed must be a whole number in \[0, 2\^63\)"),
        (dict(backend="tpu"), "backend must be one of"),
    ],
)
def test_bad_settings_are_value_errors(lenet, change, message):
    with pytest.raises(ValueError, match=message):
        evolve(small(**change), classifier=lenet, progress=False)


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["evolve", "--generations", "2", "--batch", "10", "--backend", "cpu", "--out", str(out),
                 "--no-progress"]) == 0
    assert "classes: 10" in capsys.readouterr().out
    assert main(["evolve", "--generations", "2", "--backend", "cpu", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"fooling evolve: error: {out} holds another run; pass --resume to continue it or "
                           "--overwrite to replace it")
    with pytest.raises(SystemExit, match="2"):  # argparse checks the number itself
        main(["evolve", "--generations", "0", "--backend", "cpu", "--out", str(tmp_path / "x")])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "fooling evolve: error: argument --generations: expected a whole number >= 1, got '0'")
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[0] == "class"
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_direct_mutation_rate_halves_on_schedule():
    enc = DirectEncoding(1, 28, 28, halve_every=1000)
    assert [enc.rate(g) for g in (0, 999, 1000, 2500)] == [0.1, 0.1, 0.05, 0.025]
    assert DirectEncoding(1, 28, 28).rate(5000) == 0.1


def test_top_insertion_through_the_loop(lenet):
    result = evolve(small(insertion="top", generations=4), classifier=lenet, progress=False)
    arch = result.archive
    occupied = torch.nonzero(arch.occupied).flatten()
    # Every elite in "top" mode is the image's top class: re-scoring each elite gives its cell as argmax.
    probs = lenet.probabilities(arch.images[occupied].float() / 255.0)
    assert torch.equal(probs.argmax(1), occupied)


class PlainScorer:
    """Only what the search needs of a classifier (the ImageScorer protocol), around a bare model."""

    def __init__(self, model: torch.nn.Module, spec: InputSpec, name: str = "plain"):
        self.model, self.spec, self.name = model, spec, name
        self.description = "a bare model"
        self.num_classes = 10
        self.class_names = [str(k) for k in range(10)]
        self.device = torch.device("cpu")

    def to(self, device):
        assert torch.device(device) == self.device
        return self

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self.model(images), dim=1)


def test_any_image_scorer_drives_the_search_as_a_classifier_does(lenet):
    plain = PlainScorer(lenet.model, lenet.spec)
    assert isinstance(plain, ImageScorer) and isinstance(lenet, ImageScorer)
    by_plain = evolve(small(generations=5), classifier=plain, progress=False)
    by_classifier = evolve(small(generations=5), classifier=lenet, progress=False)
    assert_same_archive(by_plain, by_classifier)
    assert by_plain.config["inference"] == {"chosen": None}
    assert by_plain.config["classifier"]["description"] == "a bare model"


class Colour(torch.nn.Module):
    """A linear model on 3 x 8 x 8 images, standing in for a colour network."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(3 * 8 * 8, 10)

    def forward(self, images):
        return self.linear(images.flatten(1))


@pytest.mark.parametrize("name, encoding, batch", [("imagenet", "cppn", 400), ("imagenet", "direct", 200),
                                                   ("mnist", "cppn", 200), ("mine", "cppn", 200)])
def test_the_papers_children_per_generation_are_the_python_default_too(name, encoding, batch):
    scorer = PlainScorer(Colour(), InputSpec(3, 8, 8), name=name)
    assert paper_batch(scorer, encoding) == batch
    config = EvolveConfig(model=name, encoding=encoding, generations=1, seed=1, backend="cpu", image_size=(8, 8))
    assert config.batch is None
    result = evolve(config, classifier=scorer, progress=False)
    assert result.config["run"]["batch"] == batch and result.metrics[-1]["evaluations"] == batch
    assert config.batch is None  # the caller's configuration is left as it was


def test_the_paper_renders_imagenet_at_256_and_other_models_at_their_input_size():
    assert render_size(PlainScorer(Colour(), InputSpec(3, 224, 224), name="imagenet")) == (256, 256)
    assert render_size(PlainScorer(Colour(), InputSpec(3, 32, 24), name="cifar")) == (32, 24)
