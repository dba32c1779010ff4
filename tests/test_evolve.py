"""MAP-Elites end to end on the shipped LeNet: outputs, determinism, resume, and bad input."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from fooling_ext.classifiers import Classifier, ImageScorer, InputSpec, load_classifier
from fooling_ext.classifiers.models import load_lenet
from fooling_ext.cli import main
from fooling_ext.runs import RunFolder, RunFolderError
from fooling_ext.runs.report import load_report
from fooling_ext.search import EvolveConfig, RunInterrupted, evolve, paper_batch, render_size, resume
from fooling_ext.search.config import upgrade_recorded_config
from fooling_ext.search.encodings import DirectEncoding


@pytest.fixture(scope="module")
def lenet():
    return load_classifier("mnist")


def small(**kw) -> EvolveConfig:
    # Plain PyTorch: fast inference picks its engine by timing, and ONNX Runtime's float32 sums differ from
    # PyTorch's in the last bits, so two separate runs compared here could score differently (tests/test_engines.py
    # covers the engines, and a resumed run keeping its engine).
    base = dict(
        model="mnist",
        encoding="cppn",
        generations=8,
        batch=24,
        seed=3,
        backend="cpu",
        checkpoint_every=3,
        fast_inference=False,
    )
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
    resumed = evolve(
        small(encoding=encoding, generations=10), tmp_path / "b", classifier=lenet, resume=True, progress=False
    )
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


def assert_outputs_show_the_checkpoint(folder, generation):
    """The readable outputs of a stopped run are those of the generations its checkpoint holds."""
    state = RunFolder(folder).load_checkpoint()
    assert state["generation"] == generation
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["generations"] == generation and summary["evaluations"] == state["evaluations"]
    with np.load(folder / "archive.npz") as z:
        np.testing.assert_array_equal(z["confidence"], state["archive"]["confidence"].numpy())
        np.testing.assert_array_equal(z["images"], state["archive"]["images"].numpy())
    occupied = int(state["archive"]["occupied"].sum())
    assert occupied > 0 and len(list((folder / "images").glob("*.png"))) == occupied
    assert (folder / "grid.png").exists() and (folder / "confidence.png").exists()
    lines = (folder / "report.txt").read_text().splitlines()
    rows = [line.split()[0] for line in lines if line.split() and line.split()[0].isdigit()]
    assert lines[0].startswith("class") and rows == [str(c) for c in range(10)]  # one row per class


def test_interrupt_keeps_finished_generations_writes_the_outputs_and_resumes(tmp_path, lenet):
    straight = evolve(small(generations=9), classifier=lenet, progress=False)

    def stop_after_five(row):
        if row["generation"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted) as stopped:
        evolve(small(generations=9), tmp_path / "run", classifier=lenet, progress=False, on_generation=stop_after_five)
    assert isinstance(stopped.value, KeyboardInterrupt)  # code that catches Ctrl-C still does
    assert (stopped.value.generation, stopped.value.generations) == (5, 9)
    # The five generations that finished were kept (checkpoint_every = 3), and the outputs show them.
    assert_outputs_show_the_checkpoint(tmp_path / "run", 5)
    resumed = resume(tmp_path / "run", classifier=lenet, progress=False)
    assert_same_archive(straight, resumed)


def test_ctrl_c_in_the_middle_of_a_generation_takes_effect_when_the_generation_is_recorded(
    tmp_path, lenet, monkeypatch, request
):
    # SIGINT arrives after the archive took generation 4's children but before its metrics row exists: the
    # interrupt waits for the row, so the checkpoint's generation, archive and metrics agree. The handlers are the
    # default ones here, as in a terminal (a shell's background job would have SIGINT ignored, and keep it so).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    request.addfinalizer(
        lambda: (signal.signal(signal.SIGINT, previous[0]), signal.signal(signal.SIGTERM, previous[1]))
    )
    search_evolve = sys.modules["fooling_ext.search.evolve"]
    metrics_of = search_evolve.generation_metrics

    def metrics_with_a_ctrl_c(archive, generation, *args):
        if generation == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return metrics_of(archive, generation, *args)

    monkeypatch.setattr(search_evolve, "generation_metrics", metrics_with_a_ctrl_c)
    with pytest.raises(RunInterrupted) as stopped:
        evolve(small(generations=9), tmp_path / "run", classifier=lenet, progress=False)
    assert stopped.value.generation == 5
    state = RunFolder(tmp_path / "run").load_checkpoint()
    assert state["generation"] == len(state["metrics"]) == 5
    assert_outputs_show_the_checkpoint(tmp_path / "run", 5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back as it was
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_cli_interrupt_prints_the_command_that_resumes_to_the_end(tmp_path, lenet, capsys, monkeypatch):
    search_evolve = sys.modules["fooling_ext.search.evolve"]  # the module (the package exports evolve() by its name)
    straight = evolve(small(generations=6), classifier=lenet, progress=False)
    step, calls = search_evolve.generation_step, []

    def interrupted_step(*args):
        calls.append(1)
        if len(calls) == 5:  # Ctrl-C inside the fifth generation
            raise KeyboardInterrupt
        return step(*args)

    monkeypatch.setattr(search_evolve, "generation_step", interrupted_step)
    out = tmp_path / "my run"
    argv = [
        "evolve",
        "--generations",
        "6",
        "--batch",
        "24",
        "--seed",
        "3",
        "--checkpoint-every",
        "3",
        "--backend",
        "cpu",
        "--no-progress",
        "--no-fast-inference",
        "--out",
        str(out),
    ]  # as small()
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fooling evolve: interrupted after 4 of 6 generations")
    command = err[0].split("continue with: ")[1]
    assert command == f"fooling evolve --out '{out}' --resume --generations 6"
    assert_outputs_show_the_checkpoint(out, 4)
    monkeypatch.setattr(search_evolve, "generation_step", step)
    words = shlex.split(command)
    assert words[0] == "fooling" and main(words[1:]) == 0
    resumed = RunFolder(out).load_checkpoint()["archive"]
    assert all(torch.equal(value, resumed[key]) for key, value in straight.archive.state_dict().items())


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_or_sigterm_stops_the_command_with_status_130_and_readable_outputs(tmp_path, stop):
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "fooling_ext",
        "evolve",
        "--generations",
        "1000000",
        "--batch",
        "8",
        "--checkpoint-every",
        "1000",
        "--backend",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    metrics = out / "metrics.csv"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 1 + 3:
            break
        time.sleep(0.1)
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.endswith(f"continue with: fooling evolve --out {out} --resume --generations 1000000"), last
    generation = RunFolder(out).load_checkpoint()["generation"]
    assert generation >= 3 and f"interrupted after {generation} of 1000000 generations" in last
    assert_outputs_show_the_checkpoint(out, generation)


def test_resume_reads_the_configuration_from_the_folder(tmp_path, lenet):
    straight = evolve(
        small(encoding="direct", generations=7, direct_mutation={"rate": 0.2}), classifier=lenet, progress=False
    )
    out = tmp_path / "run"
    evolve(small(encoding="direct", generations=4, direct_mutation={"rate": 0.2}), out, progress=False)
    assert EvolveConfig.from_run(out) == small(
        encoding="direct", generations=4, direct_mutation={"rate": 0.2}, batch=24, image_size=(28, 28)
    )
    (out / "config.json").unlink()  # the checkpoint records it too
    assert EvolveConfig.from_run(out).direct_mutation == {"rate": 0.2}
    resumed = resume(out, generations=7, checkpoint_every=2, progress=False)  # no model or classifier given
    assert_same_archive(straight, resumed)
    assert EvolveConfig.from_run(out).checkpoint_every == 2
    with pytest.raises(RunFolderError, match="nothing to resume"):
        resume(tmp_path / "absent", progress=False)


def test_a_model_file_that_moved_resumes_and_another_model_is_refused(tmp_path, lenet):
    first, moved, other = tmp_path / "first" / "lenet.pt", tmp_path / "moved" / "weights.pt", tmp_path / "other.pt"
    first.parent.mkdir()
    weights = load_lenet().state_dict()
    torch.save(weights, first)
    noise = torch.Generator().manual_seed(0)
    changed = {k: v + 0.05 * torch.randn(v.shape, generator=noise) for k, v in weights.items()}
    torch.save(changed, other)
    straight = evolve(small(generations=6), classifier=lenet, progress=False)
    out = tmp_path / "run"
    evolve(small(model=str(first), generations=3), out, progress=False)
    moved.parent.mkdir()
    first.rename(moved)
    with pytest.raises(FileNotFoundError, match=r"the run's model file .*lenet.pt' is not there \(moved\?\)"):
        resume(out, generations=6, progress=False)
    with pytest.raises(RunFolderError, match="is not the one the run was made with"):
        resume(out, generations=6, model=str(other), progress=False)
    resumed = resume(out, generations=6, model=str(moved), progress=False)
    assert_same_archive(straight, resumed)
    assert EvolveConfig.from_run(out).model == str(moved)  # the next resume finds it there


def test_settings_of_the_other_encoding_recorded_by_earlier_versions_read_as_unset():
    recorded = {"run": {"encoding": "direct", "coords": "pixel", "color": "hsv", "pixel_mutation": {"rate": 0.3}}}
    run = upgrade_recorded_config(recorded)["run"]
    assert run == {
        "encoding": "direct",
        "coords": "normalized",
        "color": "hls8",
        "quantize": False,
        "direct_mutation": {"rate": 0.3},
    }  # color: unset for the direct encoding, the default
    run = upgrade_recorded_config({"run": {"encoding": "cppn", "coords": "pixel", "halve_every": 5}})["run"]
    assert run == {"encoding": "cppn", "coords": "pixel", "halve_every": None, "color": "hsl", "quantize": False}


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
        (dict(generations=0), "generations must be a whole number >= 1, got 0"),
        (dict(generations=-3), "generations must be a whole number >= 1, got -3"),
        (dict(batch=0), "batch must be a whole number >= 1, got 0"),
        (dict(encoding="pixels"), "encoding must be one of"),
        (dict(insertion="best"), "insertion must be one of"),
        (dict(checkpoint_every=0), "checkpoint_every must be a whole number >= 1, got 0"),
        (dict(seed=-1), r"seed must be a whole number in \[0, 2\^63\)"),
        (dict(backend="tpu"), "backend must be one of"),
        (dict(halve_every=1000), "halve_every applies to the direct encoding only, not to cppn"),
        (dict(direct_mutation={"rate": 0.2}), "direct_mutation applies to the direct encoding only, not to cppn"),
        (dict(encoding="direct", coords="pixel"), "coords applies to the cppn encoding only, not to direct"),
        (dict(encoding="direct", color="hsv"), "color applies to the cppn encoding only"),
        (dict(encoding="direct", max_nodes=12), "max_nodes applies to the cppn encoding only"),
        (dict(encoding="direct", cppn_mutation={"p_weight": 0.2}), "cppn_mutation applies to the cppn encoding"),
    ],
)
def test_bad_settings_are_value_errors(lenet, change, message):
    with pytest.raises(ValueError, match=message):
        evolve(small(**change), classifier=lenet, progress=False)


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["evolve", "--generations", "2", "--batch", "10", "--backend", "cpu", "--out", str(out), "--no-progress"])
        == 0
    )
    assert "classes: 10" in capsys.readouterr().out
    assert main(["evolve", "--generations", "2", "--backend", "cpu", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"fooling evolve: error: {out} holds another run; pass --resume to continue it or --overwrite to replace it"
    )
    with pytest.raises(SystemExit, match="2"):  # argparse checks the number itself
        main(["evolve", "--generations", "0", "--backend", "cpu", "--out", str(tmp_path / "x")])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "fooling evolve: error: argument --generations: expected a whole number >= 1, got '0'"
    )
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


@pytest.mark.parametrize(
    "name, encoding, batch",
    [("imagenet", "cppn", 400), ("imagenet", "direct", 200), ("mnist", "cppn", 200), ("mine", "cppn", 200)],
)
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


def _as_recorded_before_quantize(folder: RunFolder) -> None:
    """Rewrite a run folder's config.json and checkpoint as 0.2.0 wrote them: no quantize keys."""
    config = folder.read_config()
    for section in ("run", "encoding"):
        del config[section]["quantize"]
    folder.write_config(config)
    state = folder.load_checkpoint()
    for section in ("run", "encoding"):
        del state["config"][section]["quantize"]
    folder.save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")})


def test_upgrade_fills_the_keys_added_since_with_the_behaviour_of_the_recorded_run():
    old = {
        "fooling_ext": "0.2.0",
        "run": {"encoding": "cppn", "color": "hsv", "pixel_mutation": {}},
        "encoding": {"encoding": "cppn", "channels": 3, "color": "hsv"},
    }
    new = upgrade_recorded_config(old)
    assert new["run"] == {"encoding": "cppn", "color": "hsv", "quantize": False, "direct_mutation": {}}
    assert new["encoding"] == {"encoding": "cppn", "channels": 3, "color": "hsv", "quantize": False}
    direct = upgrade_recorded_config({"run": {"encoding": "direct"}, "encoding": {"encoding": "direct"}})
    assert direct["encoding"] == {"encoding": "direct", "quantize": False}
    assert direct["run"]["color"] == "hls8" and direct["run"]["quantize"] is False  # color: unset for direct
    recorded = {"run": {"color": "hls8", "quantize": True}, "encoding": {"encoding": "cppn", "quantize": True}}
    assert upgrade_recorded_config(recorded) == {**recorded, "encoding": {**recorded["encoding"], "color": "hsl"}}
    assert "quantize" not in old["run"]  # the recorded dict is left as it was


def test_a_run_recorded_before_quantize_resumes_from_the_command_line_as_it_was_made(tmp_path, lenet):
    old = dict(color="hsl", quantize=False)  # what runs computed before the options existed
    straight = evolve(small(generations=6, **old), classifier=lenet, progress=False)
    evolve(small(generations=3, **old), tmp_path / "b", classifier=lenet, progress=False)
    folder = RunFolder(tmp_path / "b")
    _as_recorded_before_quantize(folder)
    command = [
        "evolve",
        "--model",
        "mnist",
        "--generations",
        "6",
        "--backend",
        "cpu",
        "--checkpoint-every",
        "3",
        "--no-progress",
        "--resume",
        "--out",
        str(tmp_path / "b"),
    ]
    assert main(["evolve", *command[1:], "--quantize"]) == 2  # not what the run was made with
    assert main(command) == 0  # --color and --quantize left out: the recorded run's (hsl, no quantisation)
    resumed = folder.load_checkpoint()
    assert resumed["generation"] == 6
    for key, value in straight.archive.state_dict().items():
        assert torch.equal(resumed["archive"][key], value), key
    run = folder.read_config()["run"]
    assert (run["color"], run["quantize"]) == ("hsl", False)
    assert "median confidence" in load_report(tmp_path / "b")


def test_quantize_changes_what_a_run_computes_and_is_recorded(tmp_path, lenet):
    for encoding in ("cppn", "direct"):
        plain = evolve(small(encoding=encoding, generations=3, quantize=False), classifier=lenet, progress=False)
        result = evolve(
            small(encoding=encoding, generations=3, quantize=True),
            tmp_path / encoding,
            classifier=lenet,
            progress=False,
        )
        assert not torch.equal(result.archive.confidence, plain.archive.confidence)
        config = RunFolder(tmp_path / encoding).read_config()
        assert config["run"]["quantize"] is True and config["encoding"]["quantize"] is True
    with pytest.raises(ValueError, match="quantize must be True or False"):
        small(quantize="yes").check()
    with pytest.raises(ValueError, match="color must be one of"):
        small(color="rgb").check()


def test_resume_with_fewer_generations_than_the_run_has_is_one_line_and_rewrites_nothing(tmp_path, lenet, capsys):
    out = tmp_path / "run"
    evolve(small(generations=6), out, classifier=lenet, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["evolve", "--out", str(out), "--resume", "--generations", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"fooling evolve: error: {out} already has 6 generations: --generations must be at least 6 "
        "(the number in all, not the number to add)"
    ]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert json.loads((out / "config.json").read_text())["run"]["generations"] == 6


def test_a_run_with_a_classifier_given_in_memory_records_it_and_resume_asks_for_it(tmp_path, lenet, capsys):
    wrapped = Classifier(lenet.model, InputSpec(1, 28, 28))  # an nn.Module in a Classifier: no name or file to load
    result = evolve(small(generations=3), tmp_path / "a", classifier=wrapped, progress=False)
    recorded = json.loads((tmp_path / "a" / "config.json").read_text())
    assert recorded["run"]["model"] == result.config["run"]["model"] == "custom"
    assert recorded["classifier"]["description"] == "a LeNet given in memory, in a Classifier"
    bare = PlainScorer(lenet.model, lenet.spec)
    bare.description = ""
    evolve(small(generations=3), tmp_path / "b", classifier=bare, progress=False)
    recorded = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (recorded["run"]["model"], recorded["classifier"]["description"]) == (
        "custom",
        "a LeNet given in memory, in a PlainScorer",
    )
    # Loaded from a name, the run records that name whatever config.model said.
    evolve(small(generations=3, model="imagenet"), tmp_path / "c", classifier=lenet, progress=False)
    assert json.loads((tmp_path / "c" / "config.json").read_text())["run"]["model"] == "mnist"

    with pytest.raises(ValueError, match=r"given in memory \(a LeNet given in memory, in a Classifier\).*classifier="):
        resume(tmp_path / "a", generations=5, progress=False)
    assert main(["evolve", "--out", str(tmp_path / "a"), "--resume", "--generations", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot load again" in err and "--model PATH, a file of the same model" in err
    straight = evolve(small(generations=5), classifier=lenet, progress=False)
    assert_same_archive(straight, resume(tmp_path / "a", generations=5, classifier=wrapped, progress=False))
