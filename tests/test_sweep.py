"""`fooling sweep` on a local Ray of 2 CPUs: a sweep computes the same archives as the same runs made one by one,
resumes without redoing finished runs, survives a worker killed mid-run, and refuses bad specifications with a
message naming the problem. The fooling-class experiment gives the same bytes with its runs on Ray."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fooling_ext.cli import main
from fooling_ext.runs import RunFolder, RunFolderError
from fooling_ext.search import EvolveConfig, evolve
from fooling_ext.sweep import (
    RayMap,
    RayUnavailableError,
    SweepFolder,
    SweepSpec,
    SweepSpecError,
    load_spec,
    run_sweep,
)
from fooling_ext.sweep.ray_runner import limit_threads
from fooling_ext.sweep.spec import parse_option_assignment

ray = pytest.importorskip("ray", reason='needs the [ray] extra: pip install "fooling-ext[ray]"')

# Four short MNIST runs: both encodings, two seeds, checkpoints every 5 generations.
SMALL = dict(
    models=["mnist"],
    encodings=["cppn", "direct"],
    seeds=[1, 2],
    options={"generations": 12, "batch": 40, "backend": "cpu", "checkpoint_every": 5},
)
TESTS_ON_PYTHONPATH = os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)
NAMES = ["mnist-cppn-seed1", "mnist-cppn-seed2", "mnist-direct-seed1", "mnist-direct-seed2"]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of 2 CPUs for the module; its workers import the package as this process does (installed, or
    through PYTHONPATH, which they inherit), and the tests' own task functions (tests/ray_tasks.py)."""
    with pytest.MonkeyPatch.context() as patch:  # the workers inherit the environment Ray starts with
        patch.setenv("PYTHONPATH", TESTS_ON_PYTHONPATH)
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024 * 1024, logging_level="WARNING")
    yield ray
    ray.shutdown()


@contextlib.contextmanager
def one_thread():
    """Torch and the core on one thread, as a sweep's task of one CPU runs: the classifier's sums are then in the
    same order as the workers', so their archives compare bit for bit on every CPU (with 2 threads some CPUs'
    convolutions differ in the last bit)."""
    from fooling_ext import _core

    torch_threads, core_threads = torch.get_num_threads(), _core.num_threads()
    limit_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        _core.set_num_threads(core_threads)


@pytest.fixture(scope="module")
def sweep(local_ray, tmp_path_factory):
    """The four runs as a sweep, and each made one by one with evolve, on one thread as the sweep's runs are."""
    base = tmp_path_factory.mktemp("sweep")
    result = run_sweep(SweepSpec(**SMALL), base / "sweep", progress=False)
    with one_thread():
        for point in SweepSpec(**SMALL).points():
            evolve(point.config(), base / "one_by_one" / point.name, progress=False)
    return result, base


def archive_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {key: z[key] for key in z.files}


def assert_same_archive(a: Path, b: Path) -> None:
    left, right = archive_arrays(a), archive_arrays(b)
    assert sorted(left) == sorted(right)
    for key in left:
        assert np.array_equal(left[key], right[key]), f"{key} differs between {a} and {b}"


# ---------------------------------------------------------------------------------------------------------------
# The grid


def test_a_toml_file_and_a_json_file_give_the_same_named_runs(tmp_path):
    (tmp_path / "s.toml").write_text(
        'models = ["mnist"]\nencodings = ["cppn", "direct"]\nseeds = "1-2"\n'
        '[options]\ngenerations = 12\nbatch = [40, 80]\n"direct_mutation.rate" = 0.05\nimage_size = [28, 28]\n'
        "[resources]\ncpus = 2\n"
    )
    (tmp_path / "s.json").write_text(
        json.dumps(
            {
                "models": "mnist",
                "encodings": ["cppn", "direct"],
                "seeds": [1, 2],
                "resources": {"cpus": 2},
                "options": {"generations": 12, "batch": [40, 80], "direct_mutation.rate": 0.05, "image_size": "28x28"},
            }
        )
    )
    toml, jsn = load_spec(tmp_path / "s.toml"), load_spec(tmp_path / "s.json")
    assert toml.to_dict() == jsn.to_dict()
    points = toml.points()
    assert [p.name for p in points[:4]] == [
        "mnist-cppn-seed1-batch40",
        "mnist-cppn-seed2-batch40",
        "mnist-cppn-seed1-batch80",
        "mnist-cppn-seed2-batch80",
    ]
    assert len(points) == 8 and points[-1].name == "mnist-direct-seed2-batch80"
    assert points[-1].group == "mnist-direct-batch80" and points[-1].folder == "runs/mnist-direct-seed2-batch80"
    assert points[-1].config() == EvolveConfig(
        model="mnist",
        encoding="direct",
        seed=2,
        generations=12,
        batch=80,
        image_size=(28, 28),
        direct_mutation={"rate": 0.05},
    )
    assert toml.resources == {"cpus": 2, "gpus": 0.0, "max_retries": 3}


def test_option_flags_parse_to_numbers_words_and_switches():
    assert parse_option_assignment("batch=100,200") == ("batch", [100, 200])
    assert parse_option_assignment("direct_mutation.rate=0.05") == ("direct_mutation.rate", [0.05])
    assert parse_option_assignment("fast_inference=true,false") == ("fast_inference", [True, False])
    assert parse_option_assignment("coords=pixel") == ("coords", ["pixel"])
    with pytest.raises(SweepSpecError, match="KEY=VALUE"):
        parse_option_assignment("batch")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            dict(models=["lenet5"]),
            "unknown model 'lenet5': expected one of mnist, imagenet, imagenet-lite1, imagenet-lite2, or a model file",
        ),
        (dict(encodings=["pixels"]), "unknown encoding 'pixels'; expected one of cppn, direct"),
        (dict(options={"generation": 5}), "unknown option 'generation'; expected one of generations, batch"),
        (dict(options={"seed": [1, 2]}), "'seed' is an axis of the grid: give it as seeds"),
        (
            dict(options={"direct_mutation.ratio": 0.1}),
            "unknown option 'direct_mutation.ratio'; direct_mutation has rate",
        ),
        (dict(options={"generations": 0}), "generations must be a whole number >= 1, got 0"),
        (dict(options={"batch": [50, 2.5]}), "options.batch must be an integer, got 2.5"),
        (dict(options={"coords": "polar"}), "options.coords must be one of normalized, pixel, got 'polar'"),
        (dict(options={"batch": []}), "options.batch must name at least one value"),
        (dict(seeds="one-two"), "seeds must look like 1-4 or 1,2,7, got 'one-two'"),
        (dict(seeds=[1, -1]), "seeds must be integers >= 0, got -1"),
        (dict(seeds=[3, 3]), "seeds lists 3 twice"),
        (dict(encodings=[]), "encodings must name at least one value"),
        (dict(resources={"cpus": 0}), "resources.cpus must be a finite number > 0, got 0"),
        (dict(resources={"gpu": 1}), "unknown key 'gpu' in resources; expected cpus, gpus, max_retries"),
        (dict(resources={"max_retries": -1}), "resources.max_retries must be a whole number >= 0, got -1"),
    ],
)
def test_bad_specifications_are_refused_with_a_message_naming_the_problem(spec, message):
    with pytest.raises(SweepSpecError) as info:
        SweepSpec.from_dict(spec)
    assert message in str(info.value)


def test_bad_specification_files_are_refused(tmp_path):
    with pytest.raises(SweepSpecError, match="no sweep specification at .*absent.toml"):
        load_spec(tmp_path / "absent.toml")
    (tmp_path / "bad.toml").write_text("models = [mnist\n")
    with pytest.raises(SweepSpecError, match="bad.toml is not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    (tmp_path / "s.yaml").write_text("models: [mnist]\n")
    with pytest.raises(SweepSpecError, match="a sweep specification is a .toml or .json file"):
        load_spec(tmp_path / "s.yaml")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(SweepSpecError, match="must hold a JSON object"):
        load_spec(tmp_path / "list.json")
    (tmp_path / "typo.json").write_text('{"model": ["mnist"]}')
    with pytest.raises(SweepSpecError, match="unknown key 'model' in .*typo.json; expected models, encodings"):
        load_spec(tmp_path / "typo.json")


def test_two_model_files_with_one_name_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "net.pt2").write_bytes(b"")
    with pytest.raises(SweepSpecError, match="two runs of the grid would both be named 'net-cppn-seed0'"):
        SweepSpec(models=[str(tmp_path / "a" / "net.pt2"), str(tmp_path / "b" / "net.pt2")]).check()


def test_the_command_reports_a_bad_specification_in_one_line(tmp_path, capsys):
    assert main(["sweep", "--out", str(tmp_path / "s"), "--encodings", "cppn,pixels", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        "fooling sweep: error: unknown encoding 'pixels'; expected one of cppn, direct"
    )
    assert main(["sweep", "--out", str(tmp_path / "s"), "--spec", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err.strip() == f"fooling sweep: error: no sweep specification at {tmp_path}/none.toml"
    assert not (tmp_path / "s").exists()


def test_without_ray_the_message_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    message = r'Ray is not installed; sweeps run on Ray: pip install "fooling-ext\[ray\]"'
    with pytest.raises(RayUnavailableError, match=message):
        run_sweep(SweepSpec(**SMALL), tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()
    assert main(["sweep", "--out", str(tmp_path / "s"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        'fooling sweep: error: Ray is not installed; sweeps run on Ray: pip install "fooling-ext[ray]"'
    )
    with pytest.raises(RayUnavailableError, match="fooling-ext"):
        RayMap()


def test_a_folder_holding_something_else_is_refused(tmp_path):
    run = tmp_path / "run"
    evolve(EvolveConfig(generations=2, batch=10, backend="cpu"), run, progress=False)
    with pytest.raises(
        RunFolderError,
        match="holds a run \\(written by fooling evolve\\), not a sweep: fooling sweep "
        "never writes into another command's folder",
    ):
        run_sweep(SweepSpec(**SMALL), run, overwrite=True, progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="is not empty; choose an empty folder or pass"):
        run_sweep(SweepSpec(**SMALL), tmp_path / "mine", progress=False)
    with pytest.raises(RunFolderError, match="nothing to resume: .*sweep.json does not exist"):
        run_sweep(None, run, resume=True, progress=False)
    with pytest.raises(SweepSpecError, match="a sweep needs a specification"):
        run_sweep(None, tmp_path / "new", progress=False)


# ---------------------------------------------------------------------------------------------------------------
# Sweeps on a local Ray


def test_a_sweep_gives_the_archives_of_the_same_runs_made_one_by_one(sweep):
    result, base = sweep
    folder = base / "sweep"
    for name in NAMES:
        assert_same_archive(folder / "runs" / name / "archive.npz", base / "one_by_one" / name / "archive.npz")
        assert (folder / "runs" / name / "report.txt").read_text() == (
            base / "one_by_one" / name / "report.txt"
        ).read_text()
    state = json.loads((folder / "sweep.json").read_text())
    assert (state["format"], state["version"]) == ("fooling_ext.sweep", 1)
    assert state["spec"] == SweepSpec(**SMALL).to_dict()
    assert [(r["name"], r["folder"], r["status"], r["attempts"]) for r in state["runs"]] == [
        (name, f"runs/{name}", "done", 1) for name in NAMES
    ]
    assert [(r["model"], r["encoding"], r["seed"]) for r in state["runs"]] == [
        ("mnist", "cppn", 1),
        ("mnist", "cppn", 2),
        ("mnist", "direct", 1),
        ("mnist", "direct", 2),
    ]
    assert result.failed == []


def test_the_summary_holds_each_runs_figures_and_per_class_medians_over_seeds(sweep):
    result, base = sweep
    folder = base / "sweep"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary == result.summary
    runs = {
        r["name"]: json.loads((base / "one_by_one" / r["name"] / "summary.json").read_text()) for r in summary["runs"]
    }
    for row in summary["runs"]:
        own = runs[row["name"]]
        assert (row["median"], row["classes_ge_99"], row["evaluations"]) == (own["median"], own["n99"], 12 * 40)
        assert row["seconds"] > 0 and row["folder"] == f"runs/{row['name']}"
    per_class = [r for r in summary["per_class"] if r["group"] == "mnist-direct"]
    assert [r["class"] for r in per_class] == list(range(10)) and {r["runs"] for r in per_class} == {2}
    for row in per_class:
        confidences = [runs[f"mnist-direct-seed{s}"]["classes"][row["class"]]["confidence"] for s in (1, 2)]
        assert row["median"] == pytest.approx(np.median(confidences))
        assert row["best"] == max(confidences)
        assert row["runs_ge_99"] == sum(c >= 0.99 for c in confidences)
    lines = (folder / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("name,folder,model,encoding,seed,generations,median") and len(lines) == 5
    assert len((folder / "summary_per_class.csv").read_text().splitlines()) == 1 + 2 * 10


def test_a_resumed_sweep_skips_finished_runs_and_continues_an_interrupted_one(sweep, tmp_path):
    _, base = sweep
    folder = tmp_path / "sweep"
    shutil.copytree(base / "sweep", folder)
    # mnist-direct-seed2 stopped at its generation-5 checkpoint: the same run, cut short
    partial = SweepSpec(**SMALL).points()[3].config()
    partial.generations = 5
    with one_thread():
        evolve(partial, folder / "runs" / "mnist-direct-seed2", overwrite=True, progress=False)
    RunFolder(folder / "runs" / "mnist-direct-seed2").release()  # this process is done with it: a worker resumes it
    before = {name: (folder / "runs" / name / "archive.npz").stat().st_mtime_ns for name in NAMES}
    result = run_sweep(None, folder, resume=True, progress=False)
    after = {name: (folder / "runs" / name / "archive.npz").stat().st_mtime_ns for name in NAMES}
    assert [name for name in NAMES if before[name] != after[name]] == ["mnist-direct-seed2"]
    assert_same_archive(
        folder / "runs/mnist-direct-seed2/archive.npz", base / "one_by_one/mnist-direct-seed2/archive.npz"
    )
    attempts = SweepFolder(folder).attempts("mnist-direct-seed2")
    assert [a["resumed"] for a in attempts] == [False, True]
    assert [r["attempts"] for r in result.runs] == [1, 1, 1, 2]
    with pytest.raises(RunFolderError, match="cannot resume with a different grid: seeds: \\[1, 2\\] -> \\[1, 2, 3\\]"):
        run_sweep(SweepSpec(**{**SMALL, "seeds": [1, 2, 3]}), folder, resume=True, progress=False)


def test_a_worker_killed_mid_run_is_replaced_and_the_run_resumes_to_the_same_archive(tmp_path):
    # The sweep's head is a command of its own, with its own local Ray: after a worker is killed, Ray 2.60's
    # driver can abort on a late reply for the retried task ("Tried to complete task that was not pending"),
    # which must not take this test process with it.
    spec = SweepSpec(
        models=["mnist"],
        encodings=["cppn"],
        seeds=[5],
        options={"generations": 150, "batch": 30, "backend": "cpu", "checkpoint_every": 10},
    )
    folder = SweepFolder(tmp_path / "sweep")
    run_dir = folder.run_path("mnist-cppn-seed5")
    command = [
        sys.executable,
        "-m",
        "fooling_ext",
        "sweep",
        "--out",
        str(folder.path),
        "--models",
        "mnist",
        "--encodings",
        "cppn",
        "--seeds",
        "5",
        "--option",
        "generations=150",
        "--option",
        "batch=30",
        "--option",
        "backend=cpu",
        "--option",
        "checkpoint_every=10",
        "--num-cpus",
        "1",
        "--no-progress",
    ]
    head = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed and head.poll() is None:
            attempts = folder.attempts("mnist-cppn-seed5") if folder.path.is_dir() else []
            if attempts and (run_dir / "checkpoint.pt").exists() and not (run_dir / "summary.json").exists():
                os.kill(attempts[0]["pid"], signal.SIGKILL)
                killed.append(attempts[0]["pid"])
            time.sleep(0.01)
        out, err = head.communicate(timeout=300)
    finally:
        if head.poll() is None:
            head.kill()
    assert killed, "the run finished before the worker could be killed"
    assert head.returncode == 0, err
    attempts = folder.attempts("mnist-cppn-seed5")
    assert [a["resumed"] for a in attempts] == [False, True] and attempts[1]["pid"] != killed[0]
    runs = json.loads((folder.path / "sweep.json").read_text())["runs"]
    assert [(r["status"], r["attempts"]) for r in runs] == [("done", 2)]
    with one_thread():
        evolve(spec.points()[0].config(), tmp_path / "one_by_one", progress=False)
    assert_same_archive(run_dir / "archive.npz", tmp_path / "one_by_one" / "archive.npz")


def test_the_fooling_class_experiment_gives_the_same_bytes_with_its_runs_on_ray(local_ray, tmp_path):
    from fooling_ext.classifiers.datasets.mnist import load_mnist
    from fooling_ext.experiments.mnist_fooling_class import RetrainConfig, run_retrain

    tiny = RetrainConfig(
        rounds=1,
        images_per_round=40,
        generations=3,
        measure_runs=1,
        measure_generations=4,
        epochs=1,
        train_limit=300,
        test_limit=200,
        threads=1,
        backend="cpu",
    )
    data = load_mnist()
    run_retrain(tiny, tmp_path / "local", progress=False, data=data)
    run_retrain(tiny, tmp_path / "ray", progress=False, data=data, map_runs=RayMap(cpus=1))
    for name in (
        "round_0/fooling_images.npz",
        "round_0/measure_images.npz",
        "round_1/fooling_images.npz",
        "round_1/measure_images.npz",
        "round_1/model.pt",
        "table.csv",
    ):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name


def test_a_task_that_raises_raises_its_own_error_as_it_would_in_this_process(local_ray):
    from ray_tasks import refuse_odd, square

    assert list(RayMap(cpus=1)(square, [(2,), (3,), (4,)])) == [4, 9, 16]
    with pytest.raises(ValueError) as raised:
        list(RayMap(cpus=1)(refuse_odd, [(2,), (3,)]))
    assert type(raised.value) is ValueError and str(raised.value) == "odd input 3"  # not Ray's wrapper and traceback


def test_a_runner_stopped_early_cancels_no_task(local_ray, monkeypatch):
    # ray.cancel crossing a finishing task's reply aborts the driver in Ray 2.60 (ray_runner's docstring): stopping
    # early, however it happens, must leave the tasks alone. zip stops reading the runner one result early, as
    # fooling retrain's bookkeeping did when this aborted it.
    from ray_tasks import square

    cancelled = []
    monkeypatch.setattr(ray, "cancel", lambda *args, **kwargs: cancelled.append(args))
    calls = [(i,) for i in range(4)]
    assert [r for _, r in zip(calls, RayMap(cpus=1)(square, calls))] == [0, 1, 4, 9]
    results = RayMap(cpus=1)(square, calls)
    assert next(results) == 0
    results.close()  # a consumer that stops after the first result
    assert cancelled == []


def test_a_worker_lost_more_often_than_allowed_is_one_line(tmp_path):
    # In a process of its own, with its own Ray: a worker that dies is Ray's business, not this test process's.
    script = (
        "import sys\n"
        "from fooling_ext.sweep import RayMap, RayWorkerLost\n"
        "from ray_tasks import lose_worker\n"
        "try:\n"
        "    list(RayMap(cpus=1, max_retries=1, num_cpus=1)(lose_worker, [(1,)]))\n"
        "except RayWorkerLost as exc:\n"
        "    print('lost:', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": TESTS_ON_PYTHONPATH}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    # Ray's raylet reports the dead worker on stdout first ("(raylet) A worker died ..."); the error is one line
    assert (
        done.stdout.splitlines()[-1] == "lost: a Ray task's worker was lost (WorkerCrashedError) more often than "
        "max_retries=1 allows"
    )


def test_a_stop_file_stops_only_the_runs_of_the_head_that_wrote_it(tmp_path):
    from fooling_ext.sweep.run import stop_requested

    stop = tmp_path / "stop"
    assert not stop_requested(str(stop), "a")  # no file: go on
    stop.write_text("a\n")
    assert stop_requested(str(stop), "a")
    assert not stop_requested(str(stop), "b")  # an earlier head's stop file
    assert not stop_requested(None, "a")


def test_the_command_joins_a_running_cluster_and_a_run_that_fails_leaves_the_others(local_ray, tmp_path, capsys):
    # Another process (this command) joins the module's Ray by its address, as it would a cluster's head.
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a model")
    out = tmp_path / "sweep"
    command = [
        sys.executable,
        "-m",
        "fooling_ext",
        "sweep",
        "--out",
        str(out),
        "--models",
        f"mnist,{junk}",
        "--address",
        ray.get_runtime_context().gcs_address,
        "--option",
        "generations=3",
        "--option",
        "batch=10",
        "--option",
        "backend=cpu",
        "--no-progress",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "mnist-cppn-seed0" in done.stdout and "1 of 2 runs failed; --resume runs them again" in done.stderr
    runs = {r["name"]: r for r in json.loads((out / "sweep.json").read_text())["runs"]}
    assert runs["mnist-cppn-seed0"]["status"] == "done"
    assert runs["junk-cppn-seed0"]["status"] == "failed" and "junk.pt2" in runs["junk-cppn-seed0"]["error"]
    assert [r["name"] for r in json.loads((out / "summary.json").read_text())["runs"]] == ["mnist-cppn-seed0"]
    attempt = SweepFolder(out).attempts("mnist-cppn-seed0")[0]
    assert attempt["node"] == ray.get_runtime_context().get_node_id()  # run by the cluster's node, not a new Ray
    assert main(["sweep", "--out", str(out), "--no-progress"]) == 2  # a sweep is there: --resume or --overwrite
    assert "holds another sweep; pass --resume to continue it" in capsys.readouterr().err


def test_an_interrupted_sweep_stops_its_runs_and_resumes_to_the_same_archives(sweep, tmp_path):
    _, base = sweep
    folder = SweepFolder(tmp_path / "sweep")

    def interrupt_at_the_first_checkpoint(progress):
        if any((folder.path / "runs" / name / "checkpoint.pt").exists() for name in NAMES):
            raise KeyboardInterrupt

    cancelled = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ray, "cancel", lambda *args, **kwargs: cancelled.append(args))
        with pytest.raises(KeyboardInterrupt):
            run_sweep(
                SweepSpec(**SMALL),
                folder.path,
                progress=False,
                on_progress=interrupt_at_the_first_checkpoint,
                poll_seconds=0.05,
            )
    assert cancelled == []  # the runs stopped on the stop file, at the end of a generation
    assert len(folder.stop_path.read_text().strip()) == 32  # the head's token
    statuses = [r["status"] for r in folder.read_state()["runs"]]
    assert "running" not in statuses and "pending" in statuses
    for name in NAMES:  # a stopped run's checkpoint agrees with its metrics (evolve's Ctrl-C guarantee)
        run = folder.run_path(name)
        if (run / "checkpoint.pt").exists():
            state = RunFolder(run).load_checkpoint(required=("generation", "metrics"))
            assert state["generation"] == len(state["metrics"])
    result = run_sweep(None, folder.path, resume=True, progress=False)
    assert [r["status"] for r in result.runs] == ["done"] * 4
    for name in NAMES:
        assert_same_archive(folder.run_path(name) / "archive.npz", base / "one_by_one" / name / "archive.npz")


def test_ctrl_c_on_the_command_stops_its_runs_at_the_end_of_a_generation(tmp_path):
    # As a terminal's Ctrl-C does: SIGINT to the head's whole process group (Ray's processes included).
    out = tmp_path / "sweep"
    command = [
        sys.executable,
        "-m",
        "fooling_ext",
        "sweep",
        "--out",
        str(out),
        "--models",
        "mnist",
        "--encodings",
        "cppn,direct",
        "--seeds",
        "1",
        "--option",
        "generations=100000",
        "--option",
        "batch=20",
        "--option",
        "backend=cpu",
        "--option",
        "checkpoint_every=5",
        "--num-cpus",
        "2",
        "--no-progress",
    ]
    head = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and head.poll() is None and len(list(out.glob("runs/*/checkpoint.pt"))) < 2:
            time.sleep(0.1)
        os.killpg(head.pid, signal.SIGINT)
        _, err = head.communicate(timeout=300)
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGKILL)
    assert head.returncode == 130 and "Traceback" not in err and "Check failed" not in err, err
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["pending", "pending"]
    for name in ("mnist-cppn-seed1", "mnist-direct-seed1"):
        run = out / "runs" / name
        state = RunFolder(run).load_checkpoint(required=("generation", "metrics"))
        rows = (run / "metrics.csv").read_text().splitlines()[1:]
        assert 0 < state["generation"] == len(state["metrics"]) == len(rows) < 100000  # stopped where it stood
        assert json.loads((run / "summary.json").read_text())["generations"] == state["generation"]
