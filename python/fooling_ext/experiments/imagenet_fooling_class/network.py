"""The 1001-class network: EfficientNet-Lite0 with one more row in its last layer for a "fooling image" class,
and the fit of that row alone (see :mod:`.experiment` for why only the row is learned).

The loss is the 1001-way softmax's own: with the original logits fixed, the probability of the new class is
``sigmoid(w . f + b - logsumexp(original logits))``, so fitting the row is a logistic regression with a known
offset, balanced between positives and negatives and with an L2 penalty on ``w``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.models.imagenet import DESCRIPTION, imagenet_class_names, load_efficientnet_lite0
from fooling_ext.core.checks import check_real, check_whole

FOOLING_CLASS = "fooling image"


class FoolingHead(nn.Module):
    """A trained linear layer plus one row: logits [B, K + 1].

    The first K logits are computed by the original layer itself (frozen), so they equal the original
    network's exactly; the last one is ``features @ weight.T + bias`` with the new row's parameters.
    """

    def __init__(self, original: nn.Linear):
        super().__init__()
        self.original = original
        for parameter in original.parameters():
            parameter.requires_grad_(False)
        self.weight = nn.Parameter(torch.zeros(1, original.in_features))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.original(features), F.linear(features, self.weight, self.bias)], dim=1)

    def fooling_logit_offset(self, features: torch.Tensor) -> torch.Tensor:
        """``-logsumexp`` of the original logits: p(fooling) = sigmoid(w . f + b + offset)."""
        return -torch.logsumexp(self.original(features).float(), dim=1)

    def row_state(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight.detach().cpu().clone(), "bias": self.bias.detach().cpu().clone()}

    def load_row(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.weight.copy_(state["weight"])
            self.bias.copy_(state["bias"])


def imagenet_with_fooling_class(spec, *, device: str | torch.device = "cpu", row: dict | None = None):
    """EfficientNet-Lite0 with a 1001st class, as a Classifier with input spec `spec`: (classifier, head).

    `row`: the new row's {"weight", "bias"} (default zeros). Every parameter is frozen.
    """
    model = load_efficientnet_lite0()
    head = FoolingHead(cast(nn.Linear, model._fc))  # torch types a submodule attribute as Tensor | Module
    model._fc = head
    if row is not None:
        head.load_row(row)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    description = f"{DESCRIPTION}; with a 1001st class '{FOOLING_CLASS}' (only that row of the last layer learned)"
    classifier = Classifier(
        model,
        spec,
        class_names=imagenet_class_names() + [FOOLING_CLASS],
        device=device,
        name="imagenet+fooling",
        description=description,
        channels_last=True,
    )
    return classifier, head


def penultimate_features(classifier, head: FoolingHead, images: np.ndarray, chunk: int = 64) -> torch.Tensor:
    """The features the head receives for uint8 `images` [N, 3, H, W] as the classifier scores them (resize,
    crops and normalisation included): [N, F], or [N * 10, F] grouped per image when it scores 10 crops."""
    captured: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach().float()))
    try:
        for start in range(0, len(images), chunk):
            classifier.probabilities(as_float(images[start : start + chunk]))
    finally:
        hook.remove()
    return torch.cat(captured)


def probabilities_of(classifier, images: np.ndarray, chunk: int = 64) -> np.ndarray:
    """The classifier's probabilities [N, K] of uint8 `images`, a chunk at a time (float images are large)."""
    chunks = [
        classifier.probabilities(as_float(images[start : start + chunk])).cpu().numpy()
        for start in range(0, len(images), chunk)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, classifier.num_classes), dtype=np.float32)


def as_float(images: np.ndarray) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0


# ---------------------------------------------------------------------------------------------------------------
# Fitting the new row


@dataclass
class RowFit:
    """Options of the fit of the new row."""

    weight_decay: float = 1e-3  # L2 penalty on w (not on b), relative to the mean loss
    max_iter: int = 200  # L-BFGS iterations

    def check(self) -> None:
        check_real("weight_decay", self.weight_decay, 0.0)
        check_whole("max_iter", self.max_iter, 1)


def fit_fooling_row(
    head: FoolingHead, positives: torch.Tensor, negatives: torch.Tensor, fit: RowFit | None = None
) -> dict[str, float]:
    """Fit the new row (in place) so that p(fooling) is high on `positives` and low on `negatives` (features
    [N, F]); positives and negatives weigh half each. Deterministic (full-batch L-BFGS from zero)."""
    fit = fit or RowFit()
    fit.check()
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError("fitting the fooling class needs positive (evolved) and negative (natural) images")
    with torch.no_grad():
        features = torch.cat([positives, negatives]).float()
        offset = head.fooling_logit_offset(features)
        target = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))]).to(features.device)
        sample_weight = torch.where(target > 0, 0.5 / len(positives), 0.5 / len(negatives))
    weight = torch.zeros(1, features.shape[1], device=features.device, requires_grad=True)
    bias = torch.zeros(1, device=features.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=fit.max_iter, line_search_fn="strong_wolfe")

    def loss_fn() -> torch.Tensor:
        logits = features @ weight[0] + bias + offset
        losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (sample_weight * losses).sum() + fit.weight_decay * weight.pow(2).sum()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    head.load_row({"weight": weight.detach(), "bias": bias.detach()})
    with torch.no_grad():
        return {"loss": float(loss_fn())}


def fooling_probability(head: FoolingHead, features: torch.Tensor) -> torch.Tensor:
    """p(fooling) under the 1001-way softmax, from penultimate features [N, F]."""
    with torch.no_grad():
        return torch.softmax(head(features.float()), dim=1)[:, -1]
