"""Caffe's LeNet for MNIST, the network the paper fools in its MNIST experiments.

Layers as in Caffe's ``examples/mnist/lenet_train_test.prototxt``: conv 20@5x5, max-pool 2, conv 50@5x5,
max-pool 2, fully connected 500, ReLU, fully connected to the classes. There is no non-linearity after the
convolutions; the max-pools are the only one before the hidden layer. The network returns logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

IMAGE_SIZE = 28


class LeNet(nn.Module):
    """LeNet on 1 x 28 x 28 images in [0, 1]; returns logits of shape [B, num_classes].

    ``num_classes`` is 10 for MNIST and 11 for the fooling-class experiment, which adds a class of fooling images.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"LeNet needs at least 2 classes, got num_classes={num_classes}")
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(1, 20, kernel_size=5),
            nn.MaxPool2d(2),
            nn.Conv2d(20, 50, kernel_size=5),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(50 * 4 * 4, 500),
            nn.ReLU(),
            nn.Linear(500, num_classes),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise like Caffe's ``xavier`` filler: weights uniform in +-sqrt(3 / fan_in), biases zero."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                bound = math.sqrt(3.0 / fan_in)
                nn.init.uniform_(module.weight, -bound, bound)
                if module.bias is not None:  # LeNet's layers all have one
                    nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))
