"""What a run folder guarantees: damaged files are errors that name them, resume never carries an invalid genome
or score forward, one process writes a folder at a time, temporary files are per writer."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch

from fooling_ext._files import arrays_checksum, atomic_write_bytes, read_npz, write_npz
from fooling_ext.classifiers import load_classifier
from fooling_ext.runs.archive_file import read_archive
from fooling_ext.runs.folder import CHECKPOINT_MAGIC, LOCK_NAME, RunFolder, RunFolderBusy, RunFolderError
from fooling_ext.runs.report import load_report
from fooling_ext.search import EvolveConfig, evolve


@pytest.fixture(scope="module")
def lenet():
    return load_classifier("mnist")


def small(**kw) -> EvolveConfig:
    base = dict(model="mnist", encoding="cppn", generations=4, batch=16, seed=5, backend="cpu", checkpoint_every=2)
    return EvolveConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def finished(tmp_path_factory, lenet):
    out = tmp_path_factory.mktemp("finished") / "run"
    evolve(small(), out, classifier=lenet, progress=False)
    return out


def copy_run(src, dst):
    dst.mkdir()
    for name in ("config.json", "checkpoint.pt", "archive.npz", "metrics.csv"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


# -------------------------------------------------------------------------------------------------------------
# Checksums and versions


def test_npz_files_carry_a_checksum_of_their_arrays_and_a_changed_array_is_found(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.int32).reshape(2, 3), "b": np.linspace(0, 1, 5, dtype=np.float32)}
    path = write_npz(tmp_path / "x.npz", {"format": "t", "version": 1}, arrays)
    meta, read = read_npz(path, ("a",), what="test file", format_name="t", version=1)
    assert meta["checksum"] == arrays_checksum(arrays) and np.array_equal(read["a"], arrays["a"])
    # Rewrite one array inside the zip (a valid zip, valid arrays, wrong content): the checksum tells.
    with zipfile.ZipFile(path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    buf = io.BytesIO()
    np.save(buf, np.linspace(0, 1, 5, dtype=np.float32) + np.float32(1e-7))
    entries["b.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match=r"x\.npz is damaged: its arrays do not match the checksum"):
        read_npz(path, ("a",), what="test file")
    assert arrays_checksum({"a": arrays["a"]}) != arrays_checksum({"a": arrays["a"].astype(np.int64)})


def test_the_same_archive_gives_the_same_bytes(tmp_path, lenet):
    a = evolve(small(generations=2), tmp_path / "a", classifier=lenet, progress=False)
    b = evolve(small(generations=2), tmp_path / "b", classifier=lenet, progress=False)
    assert (a.folder / "archive.npz").read_bytes() == (b.folder / "archive.npz").read_bytes()


def test_flipped_bytes_in_a_checkpoint_are_found_and_nothing_is_written(tmp_path, finished, lenet):
    run = copy_run(finished, tmp_path / "run")
    data = bytearray((run / "checkpoint.pt").read_bytes())
    assert data.startswith(CHECKPOINT_MAGIC)
    for offset in (len(data) // 3, len(data) // 2, len(data) - 10):  # same size, payload bytes changed
        damaged = bytearray(data)
        damaged[offset] ^= 0x5A
        (run / "checkpoint.pt").write_bytes(bytes(damaged))
        before = {p.name: p.read_bytes() for p in run.iterdir()}
        with pytest.raises(
            RunFolderError,
            match=r"checkpoint .*checkpoint\.pt is damaged: its content does not "
            r"match its checksum",
        ):
            evolve(small(generations=6), run, classifier=lenet, resume=True, progress=False)
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_checkpoint_of_version_1_still_resumes(tmp_path, finished, lenet):
    run = copy_run(finished, tmp_path / "run")
    state = RunFolder(run).load_checkpoint()
    buf = io.BytesIO()
    torch.save({**state, "version": 1}, buf)  # as versions before the header wrote it: a bare torch file
    (run / "checkpoint.pt").write_bytes(buf.getvalue())
    resumed = evolve(small(generations=6), run, classifier=lenet, resume=True, progress=False)
    straight = evolve(small(generations=6), tmp_path / "straight", classifier=lenet, progress=False)
    assert (resumed.folder / "archive.npz").read_bytes() == (straight.folder / "archive.npz").read_bytes()


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda s: s["archive"]["genome.edge_weight"].__setitem__((0, 0), float("nan")),
            r"the genome of class 0 \(0\) is invalid: edge_weight\[0\] is not finite",
        ),
        (
            lambda s: s["archive"]["genome.edge_dst"].__setitem__((1, 0), 2),
            r"the genome of class 1 \(1\) is invalid: edge_dst\[0\] = 2 points into an input",
        ),
        (lambda s: s["archive"]["genome.num_nodes"].__setitem__(2, 999), r"the genome of class 2 \(2\) is invalid"),
        (
            lambda s: s["archive"]["confidence"].__setitem__(3, 5.0),
            r"confidence of class 3 \(3\) is 5.0, not a probability in \[0, 1\]",
        ),
        (lambda s: s["archive"]["confidence"].__setitem__(4, float("nan")), r"confidence of class 4 \(4\) is nan"),
        (lambda s: s["archive"]["generation"].__setitem__(5, -4), r"generation of occupied class 5 is negative"),
    ],
)
def test_resume_never_carries_an_invalid_genome_or_score_forward(tmp_path, finished, lenet, damage, message):
    # A checkpoint whose checksum is right but whose content is wrong (written by a buggy or hostile tool).
    run = copy_run(finished, tmp_path / "run")
    folder = RunFolder(run)
    state = folder.load_checkpoint()
    assert bool(state["archive"]["occupied"].all())
    damage(state)
    folder.save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")})
    with pytest.raises(RunFolderError, match=message):
        evolve(small(generations=6), run, classifier=lenet, resume=True, progress=False)
    assert RunFolder(run).load_checkpoint()["generation"] == 4  # the checkpoint was not replaced


def test_a_cyclic_genome_in_a_checkpoint_is_refused(tmp_path, finished, lenet):
    run = copy_run(finished, tmp_path / "run")
    folder = RunFolder(run)
    state = folder.load_checkpoint()
    g = state["archive"]
    # Genome of class 6: one hidden node (5) fed by the output (4) and feeding it: 4 -> 5 -> 4.
    g["genome.num_nodes"][6] = 6
    g["genome.node_activation"][6, 5] = 0
    m = int(g["genome.num_edges"][6])
    g["genome.edge_src"][6, m : m + 2] = torch.tensor([4, 5], dtype=torch.int32)
    g["genome.edge_dst"][6, m : m + 2] = torch.tensor([5, 4], dtype=torch.int32)
    g["genome.edge_weight"][6, m : m + 2] = 1.0
    g["genome.num_edges"][6] = m + 2
    folder.save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")})
    with pytest.raises(RunFolderError, match=r"class 6 \(6\) is invalid: the edges form a cycle"):
        evolve(small(generations=6), run, classifier=lenet, resume=True, progress=False)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, m: a.__setitem__("confidence", a["confidence"][:-1]), r"confidence has 9 rows, the archive has 10"),
        (lambda a, m: a["confidence"].__setitem__(2, 5.0), r"confidence of class 2 \(2\) is 5.0"),
        (lambda a, m: a["confidence"].__setitem__(7, np.nan), r"confidence of class 7 \(7\) is nan"),
        (lambda a, m: m.__setitem__("class_names", m["class_names"] + ["extra"]), r"has 10 rows, the archive has 11"),
        (lambda a, m: m.__setitem__("class_names", "0123456789"), r"class_names must be a non-empty list"),
    ],
)
def test_an_inconsistent_archive_is_an_error_naming_the_file(tmp_path, finished, change, message):
    with np.load(finished / "archive.npz") as z:
        arrays = {k: z[k].copy() for k in z.files if k != "meta"}
        meta = json.loads(bytes(z["meta"]).decode())
    meta.pop("checksum")
    change(arrays, meta)
    run = tmp_path / "run"
    run.mkdir()
    write_npz(run / "archive.npz", meta, arrays)  # with a correct checksum of the wrong content
    with pytest.raises(ValueError, match=message):
        read_archive(run / "archive.npz")
    with pytest.raises(ValueError, match=rf"{run / 'archive.npz'}: .*{message}"):
        load_report(run)


def test_an_archive_of_version_2_without_its_checksum_is_damaged(tmp_path, finished):
    with zipfile.ZipFile(finished / "archive.npz") as z:
        entries = {name: z.read(name) for name in z.namelist()}
    meta = json.loads(np.load(io.BytesIO(entries["meta.npy"])).tobytes().decode())
    meta.pop("checksum")
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    entries["meta.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "archive.npz", "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match=r"is damaged: an archive of version 2 must carry a checksum"):
        read_archive(tmp_path / "archive.npz")


# -------------------------------------------------------------------------------------------------------------
# One writer per folder

HOLD = textwrap.dedent("""
    import sys, time
    from fooling_ext.runs.folder import RunFolder
    folder = RunFolder(sys.argv[1])
    folder.prepare(resume=False, overwrite=False)
    print("locked", flush=True)
    time.sleep(60)
""")


def hold_lock(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_with_the_holders_pid_and_a_dead_holders_lock_is_taken_over(tmp_path, lenet):
    out = tmp_path / "run"
    holder = hold_lock(out)
    try:
        with pytest.raises(
            RunFolderBusy,
            match=rf"{out} is in use by process {holder.pid}: one process writes a "
            r"run folder at a time",
        ):
            evolve(small(generations=2), out, classifier=lenet, progress=False)
        with pytest.raises(RunFolderBusy):
            evolve(small(generations=2), out, classifier=lenet, progress=False, overwrite=True)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # the refused run wrote nothing
    finally:
        holder.kill()
        holder.wait()
    # Killed: its lock file stays, with its pid, but the lock went with the process.
    assert (out / LOCK_NAME).read_text().split()[0] == str(holder.pid)
    result = evolve(small(generations=2), out, classifier=lenet, progress=False)
    assert len(result.metrics) == 2 and not (out / LOCK_NAME).exists()  # released when evolve returned


def test_a_folder_is_locked_while_evolve_writes_it_and_free_after(tmp_path, lenet):
    out = tmp_path / "run"
    seen = []

    def probe(row):
        probe_folder = subprocess.run(
            [
                sys.executable,
                "-c",
                textwrap.dedent("""
            import sys
            from fooling_ext.runs.folder import RunFolder, RunFolderBusy
            try:
                RunFolder(sys.argv[1]).lock()
                print("free")
            except RunFolderBusy as exc:
                print("busy")
        """),
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        seen.append(probe_folder.stdout.strip())

    evolve(small(generations=2), out, classifier=lenet, progress=False, on_generation=probe)
    assert seen == ["busy", "busy"]
    assert RunFolder(out).holds_lock() is False
    RunFolder(out).lock()  # free for this process now
    RunFolder(out).release()


def test_temporary_files_are_per_writer_and_a_killed_writers_are_removed(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    stale = [folder.path / ".checkpoint.pt.4242.1234.tmp", folder.path / ".archive.npz.77.88.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    keep = folder.path / ".notes.tmp"  # not one of ours: it stays
    keep.write_text("mine")
    folder.lock()
    try:
        assert [p.exists() for p in stale] == [False, False] and keep.exists()
    finally:
        folder.release()

    names = []
    original = os.replace

    def recording_replace(src, dst):
        names.append(os.path.basename(src))
        return original(src, dst)

    os.replace = recording_replace
    try:
        atomic_write_bytes(tmp_path / "x.bin", b"1")
    finally:
        os.replace = original
    assert names == [f".x.bin.{os.getpid()}.{__import__('threading').get_ident()}.tmp"]
