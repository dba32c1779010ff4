"""A run killed with SIGKILL at random moments, many of them inside checkpoint writes, and resumed each time, ends
with the archive of the run that was never interrupted, byte for byte."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

KILLS = 20

# The run, in a process of its own. It prints each finished generation's number and, with "slow-writes", "write"
# when a finished temporary file is about to be renamed over its target, and then waits 150 ms: a kill then lands
# exactly where a non-atomic writer would leave a torn file.
CHILD = textwrap.dedent("""
    import sys, time
    import fooling_ext._files as files
    from fooling_ext.search import EvolveConfig, evolve

    out, mode = sys.argv[1], sys.argv[2]
    if mode == "slow-writes":
        replace = files.os.replace
        def slow_replace(src, dst):
            print("write", flush=True)
            time.sleep(0.15)
            replace(src, dst)
        files.os.replace = slow_replace
    config = EvolveConfig(model="mnist", encoding="cppn", generations=60, batch=10, seed=11, backend="cpu",
                          checkpoint_every=1)
    from pathlib import Path
    resume = (Path(out) / "checkpoint.pt").exists()  # killed before its first checkpoint: start again
    evolve(config, out, resume=resume, overwrite=not resume, progress=False,
           on_generation=lambda row: print(row["generation"], flush=True))
""")


def start(out, mode):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def temporaries(folder):
    return [p for p in folder.rglob(".*.tmp")] if folder.exists() else []


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_to_the_uninterrupted_archive(tmp_path):
    reference = start(tmp_path / "reference", "plain")
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err

    out = tmp_path / "killed"
    rng = random.Random(1234)
    kills = {"write": 0, "compute": 0}
    generations_seen = []
    while sum(kills.values()) < KILLS:
        child = start(out, "slow-writes")
        # Where this attempt dies: inside the n-th file write, or a moment after the n-th finished generation.
        where, n = rng.choice(("write", "compute")), rng.randint(1, 4)
        seen = 0
        for line in child.stdout:
            kind = "write" if line.strip() == "write" else "compute"
            if kind == "compute":
                generations_seen.append(int(line))
            if kind == where:
                seen += 1
                if seen == n:
                    break
        if child.poll() is not None:  # finished before the chosen moment
            break
        if where == "compute":
            time.sleep(rng.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills[where] += 1
        if where == "write":
            assert temporaries(out), "killed inside a write, but no temporary file was left"
    assert sum(kills.values()) == KILLS and min(kills.values()) >= 5, kills
    final = start(out, "plain")
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err

    assert temporaries(out) == []  # the killed writers' temporaries were removed when the folder was locked again
    assert (out / "archive.npz").read_bytes() == (tmp_path / "reference" / "archive.npz").read_bytes()
    ref_rows = (tmp_path / "reference" / "metrics.csv").read_text().splitlines()
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == len(ref_rows) == 61
    # Every column but the timings is the same per generation.
    header = rows[0].split(",")
    timed = {header.index("seconds")}
    strip = [[v for i, v in enumerate(r.split(",")) if i not in timed] for r in rows]
    ref_strip = [[v for i, v in enumerate(r.split(",")) if i not in timed] for r in ref_rows]
    assert strip == ref_strip
    assert max(generations_seen) < 59  # the kills came before the end: the last attempt had work left
