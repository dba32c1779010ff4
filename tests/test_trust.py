"""Files from others run no code: torch.export archives whose parts would unpickle, load native code, evaluate
expressions or call functions are refused; a run folder from elsewhere loads only a built-in model or a file
inside it that is not TorchScript; descriptions that loop, JSON nested too deeply and special files (FIFO,
device, folder) are one clear line. Each case checks that the malicious file's marker was never written."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from fooling_ext.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore:`torch.jit.script` is deprecated")

MODEL_FLAGS = ["--model-channels", "1", "--model-size", "28x28"]
EVOLVE = ["evolve", "--generations", "1", "--batch", "8", "--backend", "cpu", "--no-progress"]


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(28 * 28, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Marker:
    """Unpickled with the full unpickler, this creates the file `path`: proof that the pickle ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def pickled_marker(path: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save(Marker(path), buffer)
    return buffer.getvalue()


def rewrite(source: Path, target: Path, change) -> Path:
    """A copy of the zip `source` with `change(inner name, bytes)` applied to every member (None drops it);
    extra members come from change(None, None) as a dict of inner name -> bytes ("../x" is x beside the root)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        root = zin.namelist()[0].split("/", 1)[0]
        for name in zin.namelist():
            data = change(name.split("/", 1)[1], zin.read(name))
            if data is not None:
                zout.writestr(name, data)
        for inner, data in (change(None, None) or {}).items():
            zout.writestr(inner[3:] if inner.startswith("../") else f"{root}/{inner}", data)
    return target


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """good.pt2 (a real torch.export program with a dynamic batch), archives made malicious in several ways,
    a TorchScript copy, and a finished run made with good.pt2."""
    d = tmp_path_factory.mktemp("trust")
    torch.manual_seed(0)
    program = torch.export.export(
        Linear(), (torch.randn(2, 1, 28, 28),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, d / "good.pt2")
    torch.jit.script(Linear()).save(str(d / "script.pt"))
    marker = pickled_marker(d / "MARKER")

    def sample_inputs(inner, data):
        return marker if inner == "data/sample_inputs/model.pt" else data

    def pickled_weight(inner, data):
        if inner == "data/weights/model_weights_config.json":
            config = json.loads(data)
            config["config"]["fc.weight"]["use_pickle"] = True
            return json.dumps(config).encode()
        return marker if inner == "data/weights/weight_0" else data

    def opaque_constant(inner, data):
        if inner == "data/constants/model_constants_config.json":
            return json.dumps(
                {"config": {"c": {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True}}}
            ).encode()
        return {"data/constants/opaque_obj_0": marker} if inner is None else data

    def aoti(inner, data):
        return {"data/aotinductor/model/model.so": b"\x7fELF"} if inner is None else data

    def program_json(old: str, new: str):
        def change(inner, data):
            if inner == "models/model.json":
                assert old.encode() in data
                return data.replace(old.encode(), new.encode())
            return data

        return change

    variants = {
        "sample_inputs": sample_inputs,
        "pickled_weight": pickled_weight,
        "opaque_constant": opaque_constant,
        "aoti": aoti,
        "extra_root": lambda inner, data: {"../other/data/sample_inputs/model.pt": marker} if inner is None else data,
    }
    with zipfile.ZipFile(d / "good.pt2") as archive:
        graph = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("models/model.json"))))
    graph = graph["graph_module"]["graph"]
    symbol = next(s["as_expr"]["expr_str"] for s in graph["tensor_values"]["x"]["sizes"] if "as_expr" in s)
    import_call = f"__import__('os').system('touch {d / 'MARKER'}')"
    variants["expression"] = program_json(json.dumps(symbol)[1:-1], json.dumps(import_call)[1:-1])
    variants["load_library"] = program_json(f'"{graph["nodes"][0]["target"]}"', '"torch.ops.load_library"')
    for name, change in variants.items():
        rewrite(d / "good.pt2", d / f"{name}.pt2", change)
    assert main(EVOLVE + ["--model", str(d / "good.pt2"), *MODEL_FLAGS, "--out", str(d / "run")]) == 0
    return d


def run_cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def assert_refused(code, err, command, *expected):
    assert code == 2, err
    assert "Traceback" not in err and "Fallback to weights_only=False" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fooling {command}: error: "), err
    for text in expected:
        assert text in lines[0], lines[0]


VARIANTS = {
    "sample_inputs": "its part data/sample_inputs/model.pt is not plain tensor data (Unsupported global",
    "pickled_weight": "its part data/weights/weight_0 is not plain tensor data",
    "opaque_constant": "its constant opaque_obj_0 is a pickled Python object",
    "aoti": "it holds compiled AOTInductor code (data/aotinductor/model/model.so)",
    "expression": "holds a shape expression that is not arithmetic",
    "load_library": "calls 'torch.ops.load_library', which is not an operator",
    "extra_root": "several top folders",
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_malicious_export_archive_is_refused_by_evolve(d, capsys, variant):
    code, err = run_cli(EVOLVE + ["--model", d / f"{variant}.pt2", *MODEL_FLAGS, "--out", d / "o"], capsys)
    assert_refused(code, err, "evolve", f"{d / variant}.pt2: refused: ", VARIANTS[variant])
    assert not (d / "MARKER").exists()
    assert not (d / "o").exists()


def test_the_unchanged_archive_loads(d):
    from fooling_ext.classifiers import load_classifier
    from fooling_ext.classifiers.spec import InputSpec

    clf = load_classifier(d / "good.pt2", spec=InputSpec(channels=1, height=28, width=28))
    scores = clf(torch.zeros(3, 1, 28, 28))
    assert scores.shape == (3, 10)
    assert torch.allclose(scores.sum(1), torch.ones(3))


def test_gradient_refuses_a_malicious_archive(d, capsys):
    code, err = run_cli(
        [
            "gradient",
            "--model",
            d / "sample_inputs.pt2",
            *MODEL_FLAGS,
            "--classes",
            "1",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--out",
            d / "g",
        ],
        capsys,
    )
    assert_refused(code, err, "gradient", "sample_inputs.pt2: refused: ", "could run code")
    assert not (d / "MARKER").exists()
    assert not (d / "g").exists()


def foreign_run(d: Path, name: str, model: str | Path) -> Path:
    """A copy of the finished run whose config.json names `model`, as a run folder from elsewhere might."""
    folder = d / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(d / "run", folder)
    config = json.loads((folder / "config.json").read_text())
    config["run"]["model"] = str(model).replace("{folder}", str(folder))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_analyze_and_resume_refuse_a_malicious_archive_inside_the_run_folder(d, capsys):
    folder = foreign_run(d, "inside", "{folder}/model.pt2")
    shutil.copy(d / "sample_inputs.pt2", folder / "model.pt2")
    before = sorted(p.name for p in folder.iterdir())
    code, err = run_cli(["analyze", "repetition", folder, "--out", d / "a"], capsys)
    assert_refused(code, err, "analyze", f"{folder}/model.pt2: refused: ", "data/sample_inputs/model.pt")
    code, err = run_cli(["evolve", "--resume", "--generations", "2", "--no-progress", "--out", folder], capsys)
    assert_refused(code, err, "evolve", f"{folder}/model.pt2: refused: ", "data/sample_inputs/model.pt")
    assert not (d / "MARKER").exists()
    assert not (d / "a").exists()
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize(
    "model, expected",
    [
        pytest.param(
            "{d}/sample_inputs.pt2",
            "lies outside it; a folder from elsewhere does not choose which file is "
            "loaded: pass --model PATH to load it",
            id="archive-outside",
        ),
        pytest.param("{d}/good.pt2", "lies outside it", id="good-archive-outside"),
        pytest.param("{folder}/../good.pt2", "lies outside it", id="dotdot"),
        pytest.param(
            "{folder}/script.pt",
            "is a TorchScript module, which is code that runs as it loads; "
            "{folder} names it, and a folder from elsewhere runs no code: pass --model "
            "PATH to load it",
            id="torchscript-inside",
        ),
    ],
)
def test_a_run_folder_does_not_choose_what_is_loaded(d, capsys, model, expected):
    folder = foreign_run(d, "foreign", model.replace("{d}", str(d)))
    shutil.copy(d / "script.pt", folder / "script.pt")
    expected = expected.replace("{folder}", str(folder))
    code, err = run_cli(["analyze", "structure", folder, "--out", d / "a"], capsys)
    assert_refused(code, err, "analyze", expected)
    code, err = run_cli(["evolve", "--resume", "--generations", "2", "--no-progress", "--out", folder], capsys)
    assert_refused(code, err, "evolve", expected)
    assert not (d / "MARKER").exists()


def test_a_symlink_inside_the_folder_to_a_file_outside_is_outside(d, capsys):
    folder = foreign_run(d, "linked", "{folder}/model.pt2")
    (folder / "model.pt2").symlink_to(d / "good.pt2")
    code, err = run_cli(["evolve", "--resume", "--generations", "2", "--no-progress", "--out", folder], capsys)
    assert_refused(code, err, "evolve", "model.pt2, which lies outside it")


def test_model_states_the_users_intent_on_resume(d, capsys):
    """The user's own run, made with a file outside the folder: --resume alone is refused, --model resumes it."""
    folder = foreign_run(d, "mine", d / "good.pt2")
    code, err = run_cli(["evolve", "--resume", "--generations", "2", "--no-progress", "--out", folder], capsys)
    assert_refused(code, err, "evolve", "pass --model PATH")
    code, err = run_cli(
        ["evolve", "--resume", "--generations", "2", "--no-progress", "--model", d / "good.pt2", "--out", folder],
        capsys,
    )
    assert code == 0, err
    assert json.loads((folder / "summary.json").read_text())["generations"] == 2


def test_a_description_inside_the_folder_is_followed_only_inside_it(d, capsys, tmp_path):
    folder = foreign_run(d, "described", "{folder}/model.json")
    (folder / "model.json").write_text(json.dumps({"path": str(d / "script.pt")}))
    code, err = run_cli(["analyze", "structure", folder, "--out", tmp_path / "a"], capsys)
    assert_refused(code, err, "analyze", "script.pt, which lies outside it")


@pytest.mark.parametrize("length", [1, 2, 3])
def test_descriptions_that_form_a_cycle_are_refused(tmp_path, capsys, length):
    names = [tmp_path / f"m{i}.json" for i in range(length)]
    for i, path in enumerate(names):
        path.write_text(json.dumps({"path": names[(i + 1) % length].name}))
    code, err = run_cli(EVOLVE + ["--model", names[0], "--out", tmp_path / "o"], capsys)
    assert_refused(code, err, "evolve", "model descriptions form a cycle: ", *(f"{p} -> " for p in names))


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "option, name, expected",
    [
        ("--model-classes", "classes.json", "class names file {p}: the JSON is nested too deeply to read"),
        ("--model", "model.json", "{p}: the JSON is nested too deeply to read"),
    ],
)
def test_json_nested_too_deeply_is_refused(tmp_path, capsys, option, name, expected):
    path = tmp_path / name
    path.write_text(DEEP)
    code, err = run_cli(EVOLVE + [option, path, "--out", tmp_path / "o"], capsys)
    assert_refused(code, err, "evolve", expected.replace("{p}", str(path)))


def test_a_deep_config_json_and_sweep_spec_are_refused(d, tmp_path, capsys):
    folder = foreign_run(d, "deep", "mnist")
    (folder / "config.json").write_text(DEEP)
    code, err = run_cli(["analyze", "structure", folder, "--out", tmp_path / "a"], capsys)
    assert_refused(code, err, "analyze", f"cannot read {folder}/config.json: maximum recursion depth exceeded")
    spec = tmp_path / "spec.json"
    spec.write_text(DEEP)
    code, err = run_cli(["sweep", "--spec", spec, "--out", tmp_path / "s"], capsys)
    assert_refused(code, err, "sweep", f"{spec} is not valid JSON: maximum recursion depth exceeded")


@pytest.mark.parametrize(
    "option, kind",
    [
        ("--model", "a FIFO (named pipe), not a model file"),
        ("--model-classes", "a FIFO (named pipe), not a class names file"),
    ],
)
def test_a_fifo_is_refused_without_waiting(tmp_path, option, kind):
    """In a fresh process with a time limit: opening a FIFO would wait for a writer forever."""
    fifo = tmp_path / "pipe.pt2"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "fooling_ext", *EVOLVE, option, str(fifo), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"fooling evolve: error: {fifo} is {kind} (a regular file)"]


@pytest.mark.parametrize(
    "option, path, expected",
    [
        ("--model", "/dev/zero", "/dev/zero is a device, not a model file"),
        ("--model-classes", "/dev/zero", "/dev/zero is a device, not a class names file"),
        ("--model-classes", "{tmp}", "{tmp} is a folder, not a class names file"),
        ("--model", "{tmp}/folder.json", "{tmp}/folder.json is a folder"),
    ],
)
def test_devices_and_folders_are_refused(tmp_path, capsys, option, path, expected):
    (tmp_path / "folder.json").mkdir()
    path = path.replace("{tmp}", str(tmp_path))
    code, err = run_cli(EVOLVE + [option, path, "--out", tmp_path / "o"], capsys)
    assert_refused(code, err, "evolve", expected.replace("{tmp}", str(tmp_path)))


@pytest.mark.parametrize(
    "model, expected",
    [
        pytest.param("{d}/script.pt", "which lies outside it", id="outside"),
        pytest.param("{s}/net.pt", "is a TorchScript module, which is code that runs as it loads", id="torchscript"),
    ],
)
def test_a_recorded_sweep_does_not_choose_what_is_loaded(d, tmp_path, capsys, model, expected):
    """`fooling sweep --resume` without --spec takes its models from sweep.json; refused before Ray starts."""
    from fooling_ext.sweep.folder import SweepFolder
    from fooling_ext.sweep.run import run_sweep
    from fooling_ext.sweep.spec import SweepSpec

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    shutil.copy(d / "script.pt", sweep / "net.pt")
    model = model.replace("{d}", str(d)).replace("{s}", str(sweep))
    SweepFolder(sweep).write_state(SweepSpec(models=[model]).to_dict(), [])
    code, err = run_cli(["sweep", "--resume", "--out", sweep], capsys)
    assert_refused(code, err, "sweep", expected, "pass --spec or --models naming it to run it")
    assert not (sweep / "runs").exists()
    with pytest.raises(ValueError, match=f"{expected}.*: pass a spec that names it to run it"):
        run_sweep(None, sweep, resume=True)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("classes", 5, "'classes' must be a class names file or a list of names, got 5"),
        ("classes", ["a", None], "'classes' must be a class names file or a list of names, got ['a', None]"),
        ("mean", "abc", "'mean' must be a number or a list of numbers, got 'abc'"),
        ("channels", "1", "'channels' must be a whole number, got '1'"),
        ("name", ["x"], "'name' must be a string, got ['x']"),
    ],
)
def test_a_description_field_of_the_wrong_type_is_named(tmp_path, capsys, field, value, expected):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"path": "mnist", field: value}))
    code, err = run_cli(
        [
            "gradient",
            "--model",
            path,
            "--classes",
            "1",
            "--steps",
            "1",
            "--backend",
            "cpu",
            "--no-progress",
            "--out",
            tmp_path / "g",
        ],
        capsys,
    )
    assert_refused(code, err, "gradient", f"{path}: the model description's {expected}")
    assert not (tmp_path / "g").exists()
