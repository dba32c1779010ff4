"""Fooling images by gradient ascent on the pixels (the paper's section on gradient ascent, after the
authors' caffe/ascent/find_fooling_image.py).

For each chosen class, start from the mean image plus N(0, 1) noise (on the 0..255 scale), then repeatedly
step along the gradient of that class's softmax probability with respect to the pixels, clip to the valid
range [0, 1], optionally decay towards the mean (L2 decay) and blur. The step size follows the original
"progress" policy: aim for a gain in probability of min(0.03, 0.1 * (1 - p)) per step, using the first-order
prediction of the gain. All classes climb at once in one batch; a class stops once it reaches the target
confidence.

Three numerical details differ from the original script, none of which changes the direction of a step:
the gradient is taken of log p (same direction as that of p, but it does not underflow when p is tiny);
components pushing a pixel out of [0, 1] are dropped before sizing the step; and while p is tiny the step
is capped at a predicted gain of `max_log_gain` nats of log p. The L2 decay defaults to 0: with the
script's 0.01 the decay balances the shrinking late steps and LeNet's confidences stall at 80-99%
(docs/gradient-ascent.md).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fooling_ext._files import atomic_write_text
from fooling_ext._version import __version__
from fooling_ext.classifiers.protocol import DifferentiableScorer, describe_classifier
from fooling_ext.core.checks import check_memory, check_real, check_whole
from fooling_ext.runs.folder import RunFolder
from fooling_ext.runs.images import save_class_images, save_grids, to_uint8
from fooling_ext.runs.notebook import class_grid_html
from fooling_ext.runs.plots import plot_metrics
from fooling_ext.runs.report import confidence_stats, format_confidence, summary_line

START_MODES = ("mean_plus", "uniform", "zero")
LR_POLICIES = ("progress", "constant")


@dataclass
class GradientConfig:
    """The settings of :func:`gradient_ascent`: the classes, the steps and the confidence to stop at, the
    regularisation (decay, blur), the learning-rate policy and the start image; :meth:`check` raises ValueError
    naming a bad one."""

    classes: Sequence[int | str] | None = None  # None: every class
    steps: int = 300
    target: float | None = 0.9999  # stop a class once it reaches this confidence (None: run all steps)
    decay: float = 0.0  # L2 decay towards the mean image per step (the original script: 0.01)
    blur_radius: float = 0.0  # Gaussian blur sigma in pixels (0: off; the original needs >= 0.3)
    blur_every: int = 1
    lr_policy: str = "progress"
    lr: float = 0.01  # for lr_policy "constant"
    max_lr: float = 1e12
    early_progress: float = 0.03
    late_progress: float = 0.1
    max_log_gain: float = 1.0  # cap on the predicted gain in log p per step (while p < early_progress)
    start: str = "mean_plus"
    noise_std: float = 1.0 / 255.0  # N(0, 1) on the 0..255 scale, as the original
    seed: int = 0
    batch: int = 100  # classes climbed at once (bounds memory for large models)

    def check(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a whole number in [0, 2^63), got {self.seed!r}")
        if self.classes is not None and (
            isinstance(self.classes, (str, bytes)) or not isinstance(self.classes, Sequence)
        ):
            raise ValueError(f"classes must be a list of class indices or names, got {self.classes!r}")
        for name in ("steps", "blur_every", "batch"):
            check_whole(name, getattr(self, name), 1)
        if self.target is not None:
            check_real("target", self.target, 0.0, 1.0, low_open=True)
        check_real("decay", self.decay, 0.0, 1.0, high_open=True)
        if check_real("blur_radius", self.blur_radius, 0.0) and self.blur_radius < 0.3:
            raise ValueError(f"blur_radius must be 0 (off) or >= 0.3, got {self.blur_radius}")
        for name in ("lr", "max_lr", "max_log_gain"):
            check_real(name, getattr(self, name), 0.0, low_open=True)
        for name in ("early_progress", "late_progress"):
            check_real(name, getattr(self, name), 0.0, 1.0, low_open=True)
        check_real("noise_std", self.noise_std, 0.0)
        if self.lr_policy not in LR_POLICIES:
            raise ValueError(f"lr_policy must be one of {LR_POLICIES}, got {self.lr_policy!r}")
        if self.start not in START_MODES:
            raise ValueError(f"start must be one of {START_MODES}, got {self.start!r}")


@dataclass
class GradientResult:
    """What :func:`gradient_ascent` returns: per chosen class, the image reached, its confidence and the step it
    stopped at, and the figures of every step."""

    classes: list[int]
    class_names: list[str]
    images: torch.Tensor  # [K, C, H, W] in [0, 1], on the CPU
    confidence: np.ndarray  # [K] the target class's probability for the returned image
    steps_taken: np.ndarray  # [K] step at which the target was reached (or the step count)
    history: list[dict[str, Any]] = field(default_factory=list)  # per step: median / mean / best / n99 / n9999

    def __repr__(self) -> str:
        """A few lines, not the images and the history."""
        steps = f", steps {int(self.steps_taken.min())} to {int(self.steps_taken.max())}" if len(self.classes) else ""
        return f"GradientResult({len(self.classes)} classes{steps}\n  {summary_line(self.confidence)})"

    def _repr_html_(self) -> str:
        """In a notebook: the image reached for each class, with its confidence."""
        return class_grid_html(
            to_uint8(self.images).numpy(),
            self.confidence,
            np.ones(len(self.classes), bool),
            self.class_names,
            indices=self.classes,
            title=summary_line(self.confidence),
        )


def resolve_classes(classes: Sequence[int | str] | None, class_names: Sequence[str]) -> list[int]:
    """Class indices from indices or names; unknown ones are a ValueError that lists what exists."""
    if classes is None:
        return list(range(len(class_names)))
    index = {name: i for i, name in enumerate(class_names)}
    out = []
    for c in classes:
        if isinstance(c, str) and c.strip().lstrip("-").isdigit():
            c = int(c)
        if isinstance(c, (int, np.integer)):
            if not 0 <= int(c) < len(class_names):
                raise ValueError(f"class index {c} out of range: the model has {len(class_names)} classes")
            out.append(int(c))
        elif c in index:
            out.append(index[c])
        else:
            sample = ", ".join(list(class_names)[:10])
            raise ValueError(f"unknown class name {c!r}; the model's classes are e.g. {sample}")
    if not out:
        raise ValueError("no classes chosen")
    seen: dict[int, Any] = {}
    for c, k in zip(classes, out):
        if k in seen:
            given = "" if seen[k] == c else f" (as {seen[k]!r} and {c!r})"
            raise ValueError(f"classes lists class {k} ({class_names[k]}) twice{given}")
        seen[k] = c
    return out


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur per channel (reflect padding), radius 3 sigma."""
    radius = max(1, int(3.0 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _mean_image(clf, shape: tuple[int, int, int], device) -> torch.Tensor:
    """The image the model's preprocessing maps to zero: per-channel mean on the [0, 1] scale."""
    spec = clf.spec
    mean = torch.as_tensor(spec.mean, dtype=torch.float32, device=device).reshape(-1, 1, 1)
    scale = float(getattr(spec, "scale", 1.0) or 1.0)
    return (mean / scale).expand(shape).clamp(0.0, 1.0)


def gradient_ascent(
    clf: DifferentiableScorer,
    config: GradientConfig | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    progress: bool = False,
) -> GradientResult:
    """Climb each chosen class's probability from noise; see the module docstring. `progress`: a progress bar
    on stderr over the steps of every batch of classes (a batch that stops early counts its remaining steps)."""
    config = config or GradientConfig()
    config.check()
    classes = resolve_classes(config.classes, clf.class_names)
    device = clf.device
    c = clf.spec.channels
    if image_size is not None and (not isinstance(image_size, (tuple, list)) or len(image_size) != 2):
        raise ValueError(f"image_size must be (height, width), got {image_size!r}")
    h, w = (
        (check_whole("image_size", side, 1) for side in image_size) if image_size else (clf.spec.height, clf.spec.width)
    )
    # Each step holds the batch's images, their gradient and the next step's images, float32.
    n = min(config.batch, len(classes))
    check_memory(f"gradient ascent on {n} images of {c}x{h}x{w} at once", 3 * 4 * n * c * h * w, device)
    mean = _mean_image(clf, (c, h, w), device)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    history_sum: dict[int, list[float]] = {}
    images, steps_taken, confidence = [], [], []
    chunks = [classes[start : start + config.batch] for start in range(0, len(classes), config.batch)]
    bar = _progress_bar(len(chunks) * config.steps) if progress else None
    try:
        for index, chunk in enumerate(chunks):
            x, taken, conf = _climb(clf, chunk, mean, config, gen, history_sum, bar)
            images.append(x.cpu())
            steps_taken.extend(taken)
            confidence.append(conf)
            if bar is not None:
                bar.update((index + 1) * config.steps - bar.n)  # the steps a batch that stopped early skipped
                if config.target is not None:
                    reached = int((np.concatenate(confidence) >= config.target).sum())
                    bar.set_postfix_str(f">= target: {reached}/{len(classes)} classes")
    finally:
        if bar is not None:
            bar.close()
    images_t = torch.cat(images)
    confidence_all = np.concatenate(confidence)
    history = [{"generation": s, **confidence_stats(v)} for s, v in sorted(history_sum.items())]
    return GradientResult(
        classes, [clf.class_names[k] for k in classes], images_t, confidence_all, np.asarray(steps_taken), history
    )


def _progress_bar(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)


def _climb(
    clf,
    chunk: list[int],
    mean: torch.Tensor,
    cfg: GradientConfig,
    gen: torch.Generator,
    history: dict[int, list[float]],
    bar=None,
):
    device = mean.device
    n = len(chunk)
    shape = (n, *mean.shape)
    if cfg.start == "mean_plus":
        x = mean + cfg.noise_std * torch.randn(shape, generator=gen).to(device)
    elif cfg.start == "uniform":
        x = torch.rand(shape, generator=gen).to(device)
    else:
        x = mean.expand(shape).clone()
    target = torch.tensor(chunk, device=device)
    active = torch.ones(n, dtype=torch.bool, device=device)
    taken = [cfg.steps] * n
    for step in range(cfg.steps):
        x = x.clamp(0.0, 1.0).detach().requires_grad_(True)
        # The gradient of log p has the direction of the gradient of p (grad p = p grad log p) but does not
        # underflow to zero when p is tiny, so it is what we differentiate.
        log_p = clf.log_probabilities(x).gather(1, target[:, None]).squeeze(1)
        (grad,) = torch.autograd.grad(log_p.sum(), x, allow_unused=True)
        if grad is None:
            raise ValueError(
                f"{clf.name} is not differentiable with respect to its input (the model detaches it); "
                "gradient ascent needs a differentiable model"
            )
        # Confidence as evolution measures it (the no-grad path), so the stopping rule and the reported
        # value agree to the last bit with what `probabilities` says about the returned image.
        obj = clf.probabilities(x.detach()).gather(1, target[:, None]).squeeze(1)
        last_conf = obj
        history.setdefault(step, []).extend(obj.cpu().tolist())
        if bar is not None:
            bar.update(1)
        if cfg.target is not None:
            reached = active & (obj.double() >= cfg.target)  # float64, as reports compare
            for i in torch.nonzero(reached).flatten().tolist():
                taken[i] = step
            active &= ~reached
            if not bool(active.any()):
                break
        if step == cfg.steps - 1:
            break
        # Components that push a pixel already at 0 or 1 out of range cannot move it: leave them out, so the
        # step size is computed for the movement that can actually happen.
        grad = torch.where(((x <= 0.0) & (grad < 0)) | ((x >= 1.0) & (grad > 0)), torch.zeros_like(grad), grad)
        g2 = grad.flatten(1).pow(2).sum(1)
        if cfg.lr_policy == "progress":
            # The original's rule: a step lr * g along g = grad log p gains about lr * p * |g|^2 in p; choose lr
            # for the desired gain. Where p is tiny that first-order prediction means a huge step, so the
            # predicted gain in log p (lr * |g|^2) is also capped at max_log_gain nats per step.
            desired = torch.minimum(torch.full_like(obj, cfg.early_progress), cfg.late_progress * (1.0 - obj))
            safe_g2 = g2.clamp(min=1e-30)
            lr = torch.minimum(desired / (obj.clamp(min=1e-30) * safe_g2), cfg.max_log_gain / safe_g2)
            lr = torch.where(g2 > 0, lr, torch.zeros_like(lr)).clamp(max=cfg.max_lr)
        else:
            lr = torch.full_like(obj, cfg.lr)
        lr = torch.where(active, lr, torch.zeros_like(lr)).view(-1, 1, 1, 1)
        with torch.no_grad():
            step_x = x + lr * grad
            step_x = mean + (step_x - mean) * (1.0 - cfg.decay)
            if cfg.blur_radius > 0 and step % cfg.blur_every == 0:
                step_x = mean + gaussian_blur(step_x - mean, cfg.blur_radius)
            keep = active.view(-1, 1, 1, 1)
            x = torch.where(keep, step_x, x)
    return x.detach().clamp(0.0, 1.0), taken, last_conf.cpu().numpy().astype(np.float64)


class GradientFolder(RunFolder):
    """The folder of a gradient run (docs/run-folder.md). A gradient run is not resumable."""

    KIND = "gradient run"
    RESUME_HINT = ""


def write_gradient_run(folder: RunFolder, result: GradientResult, config: GradientConfig, clf) -> None:
    """The same outputs as an evolution run: config.json, images/, grid, report.txt, summary.json, plot."""
    cfg: dict[str, Any] = {
        "fooling_ext": __version__,
        "torch": str(torch.__version__),
        "method": "gradient",
        "gradient": dataclasses.asdict(config),
        "classifier": describe_classifier(clf),
    }
    cfg["gradient"]["classes"] = result.classes
    folder.write_config(cfg)
    imgs = to_uint8(result.images).numpy()
    occupied = np.ones(len(result.classes), dtype=bool)
    save_class_images(folder.images_dir, imgs, occupied, result.class_names, indices=result.classes)
    save_grids(folder.path, imgs, result.confidence, occupied, result.class_names, indices=result.classes)
    if result.history:
        plot_metrics(folder.path / "confidence.png", result.history, f"{clf.name} / gradient ascent", x_label="step")
    atomic_write_text(folder.path / "report.txt", gradient_table(result) + "\n")
    stats = confidence_stats(result.confidence)
    summary = {
        **{k: stats[k] for k in ("median", "mean", "n99", "n9999")},
        "classes": [
            {"class": k, "name": n, "confidence": float(c), "steps": int(s)}
            for k, n, c, s in zip(result.classes, result.class_names, result.confidence, result.steps_taken)
        ],
    }
    atomic_write_text(folder.path / "summary.json", json.dumps(summary, indent=2) + "\n")


def gradient_table(result: GradientResult) -> str:
    """Per-class table: class, name, confidence reached, steps taken."""
    width = max(10, min(40, max(len(n) for n in result.class_names)))
    lines = [f"{'class':>5}  {'name':<{width}}  {'confidence':>11}  {'steps':>6}"]
    for k, name, conf, steps in zip(result.classes, result.class_names, result.confidence, result.steps_taken):
        lines.append(f"{k:>5}  {name[:width]:<{width}}  {format_confidence(float(conf)):>11}  {int(steps):>6}")
    lines += ["", summary_line(result.confidence)]
    return "\n".join(lines)
