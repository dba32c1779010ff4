"""``--model torchvision:NAME`` and ``--model timm:NAME``.

Neither library can be installed working here (the package index has only the CUDA build of torchvision, which
does not load against this CPU torch, and timm needs torchvision), so these tests inject small stand-in modules
into sys.modules in their place. The stand-ins expose exactly the API subset the loaders use
(classifiers/library.py): torchvision.models.list_models / get_model_weights / get_model and the weights' url,
meta["categories"] and transforms() (crop_size, mean, std); timm.is_model / create_model, the model's
pretrained_cfg and num_classes, timm.data.infer_imagenet_subset and ImageNetInfo(...).label_descriptions(). They
check the loaders against the libraries' documented API, not against the real libraries."""

from __future__ import annotations

import hashlib
import json
import sys
import types
import urllib.error

import numpy as np
import pytest
import torch
from torch import nn

from fooling_ext.classifiers import InputSpec, load_classifier
from fooling_ext.cli import main
from fooling_ext.search import resume

CATEGORIES = ["tench", "goldfish", "great white shark"]
DESCRIPTIONS = ["tench, Tinca tinca", "goldfish, Carassius auratus", "great white shark, white shark"]


class Tiny(nn.Module):
    """A 3-class network on RGB images of any size."""

    def __init__(self, num_classes=3):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, num_classes)
        self.num_classes = num_classes

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def stand_in_torchvision(*, weights_cached: bool = True) -> types.ModuleType:
    """torchvision as far as the loader uses it: a classification model 'tinynet' with DEFAULT weights."""

    class Preset:  # torchvision.transforms._presets.ImageClassification's attributes
        crop_size = [16]
        resize_size = [18]
        mean = [0.485, 0.456, 0.406]
        std = [0.229, 0.224, 0.225]

    class Weights:
        url = "https://download.pytorch.org/models/tinynet-0123abcd.pth"
        meta = {"categories": CATEGORIES}

        def transforms(self):
            return Preset()

        def __str__(self):
            return "TinyNet_Weights.IMAGENET1K_V1"

    models = types.ModuleType("torchvision.models")

    def list_models(module=None):
        assert module is models, "the loader lists the classification models only"
        return ["tinynet"]

    def get_model_weights(name):
        return types.SimpleNamespace(DEFAULT=Weights())

    def get_model(name, weights=None):
        assert weights == "DEFAULT"
        if not weights_cached:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        return Tiny()

    models.list_models, models.get_model_weights, models.get_model = list_models, get_model_weights, get_model
    torchvision = types.ModuleType("torchvision")
    torchvision.models = models
    return torchvision


def stand_in_timm(*, weights_cached: bool = True, num_classes: int = 3) -> tuple[types.ModuleType, types.ModuleType]:
    """timm and timm.data as far as the loader uses them: a model 'tiny_timm' whose 3 (or other) classes are
    an ImageNet subset the data module knows (3 classes) or not."""
    timm = types.ModuleType("timm")
    data = types.ModuleType("timm.data")

    def create_model(name, pretrained=False):
        assert pretrained is True
        if not weights_cached:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")
        model = Tiny(num_classes)
        model.pretrained_cfg = {
            "tag": "in1k",
            "input_size": (3, 12, 12),
            "mean": (0.5, 0.5, 0.5),
            "std": (0.25, 0.25, 0.25),
            "num_classes": num_classes,
        }
        return model

    class ImageNetInfo:
        def __init__(self, subset):
            assert subset == "tiny-subset"

        def label_descriptions(self):
            return list(DESCRIPTIONS)

    timm.is_model = lambda name: name == "tiny_timm"
    timm.create_model = create_model
    timm.data = data
    data.infer_imagenet_subset = lambda model: "tiny-subset" if model.num_classes == 3 else None
    data.ImageNetInfo = ImageNetInfo
    return timm, data


@pytest.fixture
def torchvision(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    module = stand_in_torchvision()
    monkeypatch.setitem(sys.modules, "torchvision", module)
    monkeypatch.setitem(sys.modules, "torchvision.models", module.models)
    return module


@pytest.fixture
def timm(monkeypatch):
    module, data = stand_in_timm()
    monkeypatch.setitem(sys.modules, "timm", module)
    monkeypatch.setitem(sys.modules, "timm.data", data)
    return module


def test_torchvision_model_takes_its_spec_and_class_names_from_the_weights(torchvision):
    clf = load_classifier("torchvision:tinynet")
    assert clf.spec == InputSpec(3, 16, 16, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    assert clf.class_names == CATEGORIES and clf.name == "torchvision:tinynet" and clf.source == "torchvision:tinynet"
    assert clf.description == (
        "tinynet from torchvision with its default pretrained weights (TinyNet_Weights.IMAGENET1K_V1)"
    )
    images = torch.rand(2, 3, 16, 16)
    inputs = (images - torch.tensor(clf.spec.mean).view(1, 3, 1, 1)) / torch.tensor(clf.spec.std).view(1, 3, 1, 1)
    torch.testing.assert_close(clf.probabilities(images), torch.softmax(Tiny()(inputs), dim=1))
    assert not any(p.requires_grad for p in clf.model.parameters())


def test_timm_model_takes_its_spec_from_pretrained_cfg_and_names_from_imagenet_info(timm):
    clf = load_classifier("timm:tiny_timm")
    assert clf.spec == InputSpec(3, 12, 12, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert clf.class_names == DESCRIPTIONS and clf.source == "timm:tiny_timm"
    assert clf.description == "tiny_timm from timm with its pretrained weights (in1k)"


def test_timm_model_of_no_known_subset_numbers_its_classes(monkeypatch):
    module, data = stand_in_timm(num_classes=4)
    monkeypatch.setitem(sys.modules, "timm", module)
    monkeypatch.setitem(sys.modules, "timm.data", data)
    assert load_classifier("timm:tiny_timm").class_names == ["0", "1", "2", "3"]


@pytest.mark.parametrize("library, module_names", [("torchvision", ["torchvision"]), ("timm", ["timm", "timm.data"])])
def test_a_missing_library_names_the_extra(monkeypatch, library, module_names):
    for name in module_names:
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(
        ImportError,
        match=rf"^{library} models need the optional extra: pip install "
        rf'"fooling-ext\[{library}\]" \(missing module: {library}\)$',
    ):
        load_classifier(f"{library}:anything")


def test_unknown_names_are_one_line(torchvision, timm):
    with pytest.raises(
        ValueError,
        match=r"^torchvision has no classification model called 'nonet' \(there are 1, "
        r"listed by torchvision.models.list_models\(module=torchvision.models\)\)$",
    ):
        load_classifier("torchvision:nonet")
    with pytest.raises(ValueError, match=r"^timm has no model called 'nonet' \(timm.list_models\(\) lists them\)$"):
        load_classifier("timm:nonet")
    with pytest.raises(ValueError, match=r"^'timm:' names no model: write timm:NAME"):
        load_classifier("timm:")


def test_missing_weights_say_where_the_library_looked(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    module = stand_in_torchvision(weights_cached=False)
    monkeypatch.setitem(sys.modules, "torchvision", module)
    with pytest.raises(FileNotFoundError) as caught:
        load_classifier("torchvision:tinynet")
    assert str(caught.value) == (
        f"torchvision:tinynet: its weights are not in torchvision's cache "
        f"({tmp_path / 'hub' / 'checkpoints' / 'tinynet-0123abcd.pth'}) and could not be "
        "downloaded: URLError: <urlopen error [Errno -3] Temporary failure in name "
        "resolution>"
    )
    timm_module, data = stand_in_timm(weights_cached=False)
    monkeypatch.setitem(sys.modules, "timm", timm_module)
    monkeypatch.setitem(sys.modules, "timm.data", data)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # where huggingface_hub is absent: its variables
    with pytest.raises(FileNotFoundError) as caught:
        load_classifier("timm:tiny_timm")
    assert str(caught.value) == (
        f"timm:tiny_timm: its pretrained weights could not be loaded: timm looks for them "
        f"in the Hugging Face cache ({tmp_path / 'hf'}) and torch's "
        f"({tmp_path / 'hub' / 'checkpoints'}) and downloads what is missing: OSError: We "
        "couldn't connect to 'https://huggingface.co' to load the files"
    )


def test_the_command_line_names_a_missing_library_unknown_model_or_missing_weights(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "timm", None)
    assert main(["evolve", "--model", "timm:x", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == (
        "fooling evolve: error: timm models need the optional extra: pip "
        'install "fooling-ext[timm]" (missing module: timm)'
    )
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setitem(sys.modules, "torchvision", stand_in_torchvision(weights_cached=False))
    assert main(["evolve", "--model", "torchvision:nonet", "--out", str(tmp_path / "run")]) == 2
    assert "error: torchvision has no classification model called 'nonet'" in capsys.readouterr().err
    assert main(["evolve", "--model", "torchvision:tinynet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fooling evolve: error: torchvision:tinynet: its weights are not in torchvision's cache (")
    assert len(err.splitlines()) == 1 and not (tmp_path / "run").exists()


def digest(folder) -> str:
    with np.load(folder / "archive.npz") as z:
        return hashlib.sha256(b"".join(z[k].tobytes() for k in sorted(z.files) if k != "meta")).hexdigest()


def test_a_run_against_a_torchvision_and_a_timm_model_resumes_from_its_record(torchvision, timm, tmp_path):
    """The two name their classes differently: the class map "index" pairs them by position. The renders take the
    first model's input size, 16 x 16, and reach the timm model resized to its 12 x 12."""
    (tmp_path / "map.json").write_text(json.dumps({"timm:tiny_timm": "index"}))
    argv = [
        "evolve",
        "--model",
        "torchvision:tinynet",
        "--model",
        "timm:tiny_timm",
        "--class-map",
        tmp_path / "map.json",
        "--combine",
        "mean",
        "--batch",
        "6",
        "--seed",
        "1",
        "--backend",
        "cpu",
        "--no-progress",
        "--no-fast-inference",
        "--checkpoint-every",
        "1",
    ]
    assert main([str(a) for a in argv + ["--out", tmp_path / "straight", "--generations", "5"]]) == 0
    assert main([str(a) for a in argv + ["--out", tmp_path / "run", "--generations", "3"]]) == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["run"]["models"] == ["torchvision:tinynet", "timm:tiny_timm"] and cfg["run"]["image_size"] == [16, 16]
    assert cfg["classifier"]["class_names"] == CATEGORIES
    timm_record = cfg["classifier"]["models"][1]
    assert timm_record["spec"]["resize"] is True and timm_record["class_map"] == "index"
    # From the record alone: library models are names, not files, so a folder may name them.
    continued = resume(tmp_path / "run", generations=5, progress=False)
    assert continued.generation == 5 and digest(tmp_path / "run") == digest(tmp_path / "straight")


def test_fooling_analyze_loads_a_library_model_a_run_records(torchvision, tmp_path):
    from fooling_ext.analyses import load_run, run_classifier
    from fooling_ext.search import EvolveConfig, evolve

    evolve(
        EvolveConfig(model="torchvision:tinynet", generations=2, batch=6, backend="cpu", fast_inference=False),
        tmp_path / "run",
        progress=False,
    )
    clf = run_classifier(load_run(tmp_path / "run"), device="cpu")
    assert clf.source == "torchvision:tinynet" and clf.class_names == CATEGORIES and clf.spec.height == 16
