"""A run packed without its images and made again: the genomes render to the run's images bit for bit, the
unpacked folder continues as the original does, and a file that is damaged, tampered with or not a pack is
an error that names it (fooling_ext.search.pack, `fooling pack`, `fooling unpack`)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fooling_ext._files import read_npz, write_npz
from fooling_ext.classifiers import load_classifier
from fooling_ext.runs.folder import RunFolder, RunFolderError
from fooling_ext.runs.recorded import config_differences
from fooling_ext.search import EvolveConfig, evolve, resume
from fooling_ext.search.pack import PACK_FORMAT, images_digest, pack_run, read_pack, unpack_run


@pytest.fixture(scope="module")
def lenet():
    return load_classifier("mnist")


def small(**kw) -> EvolveConfig:
    base = dict(model="mnist", encoding="cppn", generations=6, batch=16, seed=3, backend="cpu", checkpoint_every=3)
    return EvolveConfig(**{**base, **kw})


@pytest.fixture(scope="module", params=["cppn", "direct"])
def run(request, tmp_path_factory, lenet):
    out = tmp_path_factory.mktemp(f"run-{request.param}") / "run"
    evolve(small(encoding=request.param), out, classifier=lenet, progress=False)
    return out


def archive_state(folder) -> dict[str, torch.Tensor]:
    return RunFolder(folder).load_checkpoint()["archive"]


def test_a_packed_run_unpacks_to_the_same_checkpoint_with_its_images_rendered_again(tmp_path, run):
    pack = pack_run(run, tmp_path / "run.npz")
    meta, arrays = read_pack(pack)
    assert "images" not in arrays and meta["generation"] == 6 and len(meta["metrics"]) == 6
    before = RunFolder(run).load_checkpoint()
    assert meta["images"]["sha256"] == images_digest(before["archive"]["images"].numpy())
    out = unpack_run(pack, tmp_path / "again")
    after = RunFolder(out).load_checkpoint()
    assert sorted(after["archive"]) == sorted(before["archive"])
    for key, value in before["archive"].items():
        assert torch.equal(after["archive"][key], value), key
    assert after["generation"] == before["generation"] and after["metrics"] == json.loads(json.dumps(before["metrics"]))
    assert (out / "metrics.csv").read_text() == (run / "metrics.csv").read_text()
    assert json.loads((out / "config.json").read_text()) == json.loads((run / "config.json").read_text())


def test_an_unpacked_run_continues_as_the_original_does(tmp_path, run, lenet):
    original = tmp_path / "original"
    original.mkdir()
    for name in ("config.json", "metrics.csv", "checkpoint.pt"):
        (original / name).write_bytes((run / name).read_bytes())
    unpacked = unpack_run(pack_run(run, tmp_path / "run.npz"), tmp_path / "unpacked")
    a = resume(original, generations=9, classifier=lenet, progress=False)
    b = resume(unpacked, generations=9, classifier=lenet, progress=False)
    for key, value in a.archive.state_dict().items():
        assert torch.equal(b.archive.state_dict()[key], value), key
    assert [r["median"] for r in a.metrics] == [r["median"] for r in b.metrics]
    assert (original / "images").is_dir() and sorted(p.name for p in (unpacked / "images").iterdir()) == sorted(
        p.name for p in (original / "images").iterdir()
    )


def test_the_pack_is_much_smaller_than_the_checkpoint(tmp_path, run):
    pack = pack_run(run, tmp_path / "run.npz")
    checkpoint = (run / "checkpoint.pt").stat().st_size
    encoding = json.loads((run / "config.json").read_text())["encoding"]["encoding"]
    # A pixel genome is its image (as floats), so only the CPPN pack is far smaller than the checkpoint.
    assert pack.stat().st_size < (checkpoint / 5 if encoding == "cppn" else checkpoint)


def rewrite(pack, out, change) -> None:
    meta, arrays = read_npz(pack, None, what="run pack")
    meta = {k: v for k, v in meta.items() if k != "checksum"}
    change(meta, arrays)
    write_npz(out, meta, arrays)


def test_genomes_that_render_other_images_are_refused_and_no_folder_is_left(tmp_path, lenet):
    run = tmp_path / "run"
    evolve(small(), run, classifier=lenet, progress=False)
    pack = pack_run(run, tmp_path / "run.npz")

    def nudge_a_weight(meta, arrays):
        cell = int(np.flatnonzero(arrays["occupied"])[0])
        arrays["genome_edge_weight"][cell, 0] += np.float32(0.5)

    rewrite(pack, tmp_path / "tampered.npz", nudge_a_weight)
    with pytest.raises(ValueError, match=r"tampered\.npz: its genomes render to other images than the run's"):
        unpack_run(tmp_path / "tampered.npz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, a: a.pop("confidence"), "lacks confidence"),
        (lambda m, a: m.pop("metrics"), "its meta has no metrics"),
        (lambda m, a: m["images"].update(shape=[3, 1, 28]), "images entry needs a shape"),
        (lambda m, a: m["images"].update(shape=[7, 1, 28, 28]), r"its images are \[7, 1, 28, 28\]"),
        (lambda m, a: a["confidence"].__setitem__(np.flatnonzero(a["occupied"])[0], np.nan), "confidence of class"),
        (lambda m, a: m["config"].pop("classifier"), "does not hold an evolve run's configuration"),
        (lambda m, a: m["config"]["encoding"].update(encoding="pixels"), "encoding must be one of"),
    ],
)
def test_a_pack_with_missing_or_wrong_content_is_refused_by_name(tmp_path, lenet, change, message):
    run = tmp_path / "run"
    evolve(small(generations=2), run, classifier=lenet, progress=False)
    pack = pack_run(run, tmp_path / "run.npz")
    rewrite(pack, tmp_path / "bad.npz", change)
    with pytest.raises((ValueError, RunFolderError), match=message):
        unpack_run(tmp_path / "bad.npz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_damaged_and_foreign_files_are_refused(tmp_path, run):
    pack = pack_run(run, tmp_path / "run.npz")
    (tmp_path / "cut.npz").write_bytes(pack.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut\.npz is not a readable run pack"):
        read_pack(tmp_path / "cut.npz")
    with pytest.raises(ValueError, match=r"archive\.npz is not a run pack \(format 'fooling_ext\.archive'\)"):
        read_pack(run / "archive.npz")
    with pytest.raises(FileNotFoundError, match="run pack not found"):
        read_pack(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="is a folder, not a run pack"):
        read_pack(tmp_path)
    assert read_pack(pack)[0]["format"] == PACK_FORMAT


def test_what_cannot_be_packed_is_named(tmp_path, run):
    with pytest.raises(RunFolderError, match="no run folder at"):
        pack_run(tmp_path / "nothing", tmp_path / "x.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="holds no checkpoint.pt"):
        pack_run(tmp_path / "empty", tmp_path / "x.npz")
    with pytest.raises(ValueError, match="is a folder: give the path of the file"):
        pack_run(run, tmp_path)


def test_unpacking_into_a_run_needs_overwrite_and_never_offers_resume(tmp_path, run):
    pack = pack_run(run, tmp_path / "run.npz")
    out = unpack_run(pack, tmp_path / "out")
    with pytest.raises(RunFolderError, match=r"holds another run; pass overwrite=True") as info:
        unpack_run(pack, out)
    assert "resume" not in str(info.value)
    assert unpack_run(pack, out, overwrite=True) == out
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="is not empty"):
        unpack_run(pack, tmp_path / "foreign")
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"


def test_the_command_line_packs_unpacks_with_outputs_and_names_errors(tmp_path, run):
    command = [sys.executable, "-m", "fooling_ext"]
    packed = subprocess.run(
        [*command, "pack", str(run), "--out", str(tmp_path / "r.npz")], capture_output=True, text=True
    )
    assert packed.returncode == 0, packed.stderr
    assert "generation 6" in packed.stdout
    unpacked = subprocess.run(
        [*command, "unpack", str(tmp_path / "r.npz"), "--out", str(tmp_path / "u"), "--backend", "cpu"],
        capture_output=True,
        text=True,
    )
    assert unpacked.returncode == 0, unpacked.stderr
    a, b = np.load(run / "archive.npz"), np.load(tmp_path / "u" / "archive.npz")
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files if k != "meta")
    meta_a, meta_b = json.loads(bytes(a["meta"])), json.loads(bytes(b["meta"]))
    assert config_differences(meta_a, meta_b, ignore=("config.inference",)) == []
    bad = subprocess.run(
        [*command, "unpack", str(run / "archive.npz"), "--out", str(tmp_path / "v")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "is not a run pack" in bad.stderr


def test_a_tuple_in_memory_and_the_list_config_json_records_are_the_same_setting():
    assert config_differences({"spec": {"mean": (0.5,)}}, {"spec": {"mean": [0.5]}}) == []
    assert config_differences({"spec": {"mean": (0.5,)}}, {"spec": {"mean": [0.25]}}) == ["spec.mean: (0.5,) -> [0.25]"]
    assert config_differences({"a": [(1, 2)]}, {"a": [[1, 2]]}) == []
