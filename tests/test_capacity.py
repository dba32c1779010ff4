"""Genome capacity and the add-connection rule in the run: the command-line options, the per-generation
capacity columns of metrics.csv and their totals in report.txt / summary.json, metrics written before those
columns existed, and a CPPN run recorded before the add-connection choice, which resumes with the rule it used."""

from __future__ import annotations

import copy
import csv
import dataclasses
import json

import pytest
import torch

from fooling_ext.classifiers import load_classifier
from fooling_ext.cli import main
from fooling_ext.gallery.sources import read_metrics
from fooling_ext.runs import RunFolder
from fooling_ext.runs.report import capacity_totals, load_report
from fooling_ext.search import EvolveConfig, evolve
from fooling_ext.search.config import resume_settings, upgrade_recorded_config
from fooling_ext.search.evolve import METRIC_FIELDS
from fooling_ext.sweep.folder import run_progress

CAPACITY_COLUMNS = ("blocked_add_edge", "blocked_add_node", "max_nodes", "max_edges")


@pytest.fixture(scope="module")
def lenet():
    return load_classifier("mnist")


def small(**kw) -> EvolveConfig:
    base = dict(model="mnist", encoding="cppn", generations=6, batch=24, seed=3, backend="cpu", checkpoint_every=3)
    return EvolveConfig(**{**base, **kw})


def test_capacity_columns_totals_and_warning(tmp_path, lenet):
    # 6 nodes and 5 edges: one growth step from the start genome (5 nodes, 4 edges) fills them.
    out = tmp_path / "run"
    result = evolve(small(max_nodes=6, max_edges=5), out, classifier=lenet, progress=False)
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == METRIC_FIELDS
    assert rows[0]["blocked_add_edge"] == rows[0]["blocked_add_node"] == "0"  # the start population: no mutation
    assert int(rows[0]["max_nodes"]) == 5 and int(rows[0]["max_edges"]) == 4
    blocked_edge = sum(int(r["blocked_add_edge"]) for r in rows)
    blocked_node = sum(int(r["blocked_add_node"]) for r in rows)
    assert blocked_edge > 0 and blocked_node > 0
    for r in rows:  # the largest elite stays within capacity, and per generation at most one block per child
        assert int(r["max_nodes"]) <= 6 and int(r["max_edges"]) <= 5
        assert int(r["blocked_add_edge"]) <= 24 and int(r["blocked_add_node"]) <= 24
    # The largest elite's sizes are those of the archive's genomes.
    occupied = result.archive.occupied
    assert int(rows[-1]["max_nodes"]) == int(result.archive.genomes["num_nodes"][occupied].max())
    assert int(rows[-1]["max_edges"]) == int(result.archive.genomes["num_edges"][occupied].max())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["capacity"] == {
        "max_nodes": 6,
        "max_edges": 5,
        "blocked_add_edge": blocked_edge,
        "blocked_add_node": blocked_node,
        "largest_elite_nodes": max(int(r["max_nodes"]) for r in rows),
        "largest_elite_edges": max(int(r["max_edges"]) for r in rows),
    }
    report = (out / "report.txt").read_text()
    assert f"WARNING: capacity blocked {blocked_edge} add-connection and {blocked_node} add-node" in report
    assert "WARNING: capacity blocked" in load_report(out)  # `fooling report` too
    # The paper's start at the default capacity: nothing blocked, no warning; the capacity line is there.
    evolve(small(), tmp_path / "roomy", classifier=lenet, progress=False)
    report = (tmp_path / "roomy" / "report.txt").read_text()
    assert "genome capacity: 64 nodes, 256 edges" in report and "WARNING" not in report
    # Readers of metrics.csv: the gallery's, and the sweep's progress (evaluations second to last).
    assert read_metrics(out / "metrics.csv")[-1]["blocked_add_edge"] == float(rows[-1]["blocked_add_edge"])
    assert run_progress(out) == (6, 6 * 24)


def test_the_direct_encoding_writes_zeros_in_the_capacity_columns(lenet):
    result = evolve(small(encoding="direct", generations=2), classifier=lenet, progress=False)
    assert all(m[k] == 0 for m in result.metrics for k in CAPACITY_COLUMNS)


def test_metrics_written_before_the_capacity_columns_still_read(tmp_path):
    old_fields = [f for f in METRIC_FIELDS if f not in CAPACITY_COLUMNS]
    path = tmp_path / "metrics.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=old_fields)
        writer.writeheader()
        for g in range(3):
            writer.writerow(
                {f: g if f == "generation" else (10 * (g + 1) if f == "evaluations" else 0.5) for f in old_fields}
            )
    rows = read_metrics(path)
    assert len(rows) == 3 and "max_nodes" not in rows[0]
    assert capacity_totals(rows) is None
    assert run_progress(tmp_path) == (3, 30)


def _as_previous_version_wrote(config: dict) -> dict:
    """A recorded configuration as fooling_ext wrote it before add_edge existed."""
    config = copy.deepcopy(config)
    del config["encoding"]["mutation"]["add_edge"]
    config["run"]["cppn_mutation"].pop("add_edge", None)
    return config


def test_upgrade_names_the_rejection_rule_for_runs_recorded_before_the_choice(tmp_path, lenet):
    result = evolve(small(generations=1), classifier=lenet, progress=False)
    new = result.config
    assert new["encoding"]["mutation"]["add_edge"] == "original" and new["run"]["cppn_mutation"] == {}
    assert upgrade_recorded_config(new) == new  # this version's records are left as they are
    old = _as_previous_version_wrote(new)
    upgraded = upgrade_recorded_config(old)
    assert upgraded["encoding"]["mutation"]["add_edge"] == "rejection"
    assert upgraded["run"]["cppn_mutation"] == {"add_edge": "rejection"}
    assert "add_edge" not in old["encoding"]["mutation"]  # the argument is not modified
    # Resuming: the recorded rule unless the configuration names one.
    assert resume_settings(small(), old).cppn_mutation == {"add_edge": "rejection"}
    assert resume_settings(small(), new).cppn_mutation == {}
    named = small(cppn_mutation={"add_edge": "original"})
    assert resume_settings(named, old).cppn_mutation == {"add_edge": "original"}
    direct = evolve(small(encoding="direct", generations=1), classifier=lenet, progress=False).config
    assert upgrade_recorded_config(direct) == direct


def test_a_cppn_run_recorded_before_the_choice_resumes_with_the_rejection_rule(tmp_path, lenet):
    rejection = small(cppn_mutation={"add_edge": "rejection"})
    straight = evolve(rejection, tmp_path / "a", classifier=lenet, progress=False)
    original = evolve(small(), classifier=lenet, progress=False)
    assert not torch.equal(straight.archive.genomes["edge_src"], original.archive.genomes["edge_src"])
    # A run stopped after 3 generations, its checkpoint and config.json as the previous version wrote them
    # (no add_edge, no capacity columns in the metrics), resumed with the default settings.
    evolve(dataclasses.replace(rejection, generations=3), tmp_path / "b", classifier=lenet, progress=False)
    folder = RunFolder(tmp_path / "b")
    state = folder.load_checkpoint()
    state["config"] = _as_previous_version_wrote(state["config"])
    state["metrics"] = [{k: v for k, v in m.items() if k not in CAPACITY_COLUMNS} for m in state["metrics"]]
    folder.save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")})
    folder.write_config(_as_previous_version_wrote(folder.read_config()))
    resumed = evolve(small(), tmp_path / "b", classifier=lenet, resume=True, progress=False)
    for key, value in straight.archive.state_dict().items():
        assert torch.equal(value, resumed.archive.state_dict()[key]), key
    assert resumed.config["encoding"]["mutation"]["add_edge"] == "rejection"
    with open(tmp_path / "b" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == METRIC_FIELDS and len(rows) == 6
    assert [r["max_nodes"] for r in rows[:3]] == ["0"] * 3  # not recorded then
    assert rows[3:] == [{k: str(v) for k, v in m.items()} for m in resumed.metrics[3:]]
    assert [int(r["max_nodes"]) for r in rows[3:]] == [m["max_nodes"] for m in straight.metrics[3:]]


def test_cli_capacity_options(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "evolve",
                "--generations",
                "2",
                "--batch",
                "10",
                "--backend",
                "cpu",
                "--out",
                str(out),
                "--no-progress",
                "--max-nodes",
                "9",
                "--max-edges",
                "12",
                "--add-edge",
                "rejection",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "genome capacity: 9 nodes, 12 edges" in captured.out
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["run"]["max_nodes"], cfg["run"]["max_edges"]) == (9, 12)
    assert (cfg["encoding"]["max_nodes"], cfg["encoding"]["max_edges"]) == (9, 12)
    assert cfg["encoding"]["mutation"]["add_edge"] == "rejection"
    # Resumed without --add-edge: the run's own rule.
    assert (
        main(["evolve", "--generations", "3", "--backend", "cpu", "--out", str(out), "--no-progress", "--resume"]) == 0
    )
    assert json.loads((out / "config.json").read_text())["encoding"]["mutation"]["add_edge"] == "rejection"
    assert main(["evolve", "--generations", "4", "--out", str(out), "--add-edge", "original", "--resume"]) == 2
    capsys.readouterr()
    direct = [
        "evolve",
        "--encoding",
        "direct",
        "--generations",
        "1",
        "--backend",
        "cpu",
        "--out",
        str(tmp_path / "d"),
        "--no-progress",
    ]
    assert main(direct + ["--max-nodes", "9"]) == 2
    assert capsys.readouterr().err.strip() == (
        "fooling evolve: error: --max-nodes applies to --encoding cppn only, not to --encoding direct"
    )
    assert main(direct + ["--max-edges", "9", "--add-edge", "original"]) == 2
    assert "--max-edges applies to --encoding cppn only" in capsys.readouterr().err
    cppn = ["evolve", "--generations", "1", "--backend", "cpu", "--out", str(tmp_path / "c"), "--no-progress"]
    assert main(cppn + ["--max-nodes", "5000"]) == 2
    assert "--max-nodes must be a whole number in [5, 4096], got 5000" in capsys.readouterr().err
    assert main(cppn + ["--max-edges", "70000"]) == 2
    assert "--max-edges must be a whole number in [4, 65536], got 70000" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):
        main(cppn + ["--max-nodes", "4"])
    assert "argument --max-nodes: expected a whole number >= 5, got '4'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()
