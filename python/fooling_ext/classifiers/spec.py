"""What a model expects of its input, for images given in [0, 1]: :class:`InputSpec`, and the specs of the
built-in models."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

from fooling_ext.classifiers.models import imagenet

OUTPUT_KINDS = ("logits", "probabilities")


@dataclass(frozen=True)
class InputSpec:
    """What a model expects, for images given in [0, 1] as [B, channels, height, width].

    The model receives ``(image * scale - mean) / std`` per channel. ``mean`` and ``std`` hold one value per
    channel (a single value is repeated). ``output`` says whether the model returns logits (softmax applied
    here) or probabilities (used as they are). With ``resize``, images of another size are resized to
    ``height x width`` (bilinear, antialiased); without it, another size is an error. With ``crops = c``, each
    ``height x width`` image is scored as the paper scored CaffeNet: the softmax averaged over 10 crops of
    ``c x c`` (4 corners and the centre, and their horizontal mirrors), so the model sees ``c x c`` inputs.
    """

    channels: int
    height: int
    width: int
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    scale: float = 1.0
    output: str = "logits"
    resize: bool = False
    crops: int | None = None

    def __post_init__(self) -> None:
        for field_name in ("channels", "height", "width"):
            value = getattr(self, field_name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"InputSpec.{field_name} must be a positive integer, got {value!r}")
            object.__setattr__(self, field_name, int(value))
        object.__setattr__(self, "mean", self._per_channel("mean", self.mean))
        object.__setattr__(self, "std", self._per_channel("std", self.std))
        if any(not value > 0 for value in self.std):
            raise ValueError(f"InputSpec.std must be positive, got {self.std}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"InputSpec.scale must be a positive number, got {self.scale!r}")
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"InputSpec.output must be one of {OUTPUT_KINDS}, got {self.output!r}")
        if self.crops is not None:
            if not isinstance(self.crops, numbers.Integral) or isinstance(self.crops, bool) or self.crops < 1:
                raise ValueError(f"InputSpec.crops must be a positive crop size or None, got {self.crops!r}")
            object.__setattr__(self, "crops", int(self.crops))
            if self.crops > min(self.height, self.width):
                raise ValueError(
                    f"InputSpec.crops={self.crops} does not fit in {self.height}x{self.width} images; "
                    "the crop size must not exceed the image size"
                )

    def _per_channel(self, field_name: str, values: float | Sequence[float]) -> tuple[float, ...]:
        values = (float(values),) if isinstance(values, (float, int, numbers.Real)) else tuple(values)
        if len(values) == 1:
            values = values * self.channels
        if len(values) != self.channels:
            raise ValueError(
                f"InputSpec.{field_name} needs 1 or {self.channels} values (one per channel), got {len(values)}"
            )
        values = tuple(float(value) for value in values)
        if not all(math.isfinite(value) for value in values):
            raise ValueError(f"InputSpec.{field_name} must be finite, got {values}")
        return values

    @property
    def model_input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of what the model itself receives: the crop size when cropping."""
        if self.crops is not None:
            return (self.channels, self.crops, self.crops)
        return (self.channels, self.height, self.width)

    def describe(self) -> str:
        """A short human-readable summary, used in error messages."""
        text = f"[B, {self.channels}, {self.height}, {self.width}]"
        if self.crops is not None:
            text += f" scored as 10 crops of {self.crops}x{self.crops}"
        return text


MNIST_SPEC = InputSpec(channels=1, height=28, width=28)
"""The input of the shipped MNIST LeNet: one channel of 28 x 28 pixels."""


def imagenet_spec(*, crops: int | None = None, size: int | None = None) -> InputSpec:
    """The ImageNet stand-in's input spec: 224 x 224 RGB, ``(x * 255 - 127) / 128``.

    ``crops`` and ``size`` give the paper's protocol: e.g. ``size=256, crops=224`` averages over 10 crops of 224
    from 256 x 256 images (the paper: CaffeNet, crops of 227 from 256).
    """
    side = size or imagenet.INPUT_SIZE
    return InputSpec(channels=3, height=side, width=side, mean=imagenet.MEAN, std=imagenet.STD, crops=crops)
