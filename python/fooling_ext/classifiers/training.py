"""Train the paper's MNIST LeNet, reproducibly, on the CPU in a couple of minutes.

``fooling train-mnist`` makes the weights that ship as ``fooling_ext/classifiers/models/mnist_lenet.pt``; the
fooling-class experiment calls :func:`train_lenet` with an extra class of fooling images. Training is deterministic
for a given seed, thread count, torch version and set of CPU code paths: the initial weights and the shuffling come
from the seed, and torch's deterministic algorithms are switched on for the duration. The CPU code paths are
chosen when torch is imported; :mod:`fooling_ext.classifiers.pinned_training` runs this training in a process
that pins them, as ``fooling train-mnist`` does by default.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fooling_ext.classifiers.datasets.mnist import MNIST_NUM_CLASSES, MnistData
from fooling_ext.classifiers.models.lenet import IMAGE_SIZE, LeNet

# The options of the shipped weights; `fooling train-mnist` with no options reproduces them.
DEFAULT_EPOCHS = 4
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 3e-3
DEFAULT_SEED = 0
DEFAULT_THREADS = 2
DEFAULT_OUT = "mnist_lenet.pt"

ExtraTrain = tuple[np.ndarray, np.ndarray]


def train_lenet(
    data: MnistData,
    *,
    num_classes: int = MNIST_NUM_CLASSES,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    seed: int = DEFAULT_SEED,
    threads: int | None = DEFAULT_THREADS,
    progress: bool = True,
    extra_train: ExtraTrain | None = None,
) -> tuple[LeNet, dict[str, Any]]:
    """Train a LeNet on MNIST (plus ``extra_train``) and measure it on the MNIST test set.

    Adam with a one-cycle learning-rate schedule peaking at ``lr``; the defaults reach about 99.3% test
    accuracy in four epochs. ``extra_train`` is ``(images, labels)`` appended to the training set: images uint8
    in 0..255 or floating in [0, 1], shaped [N, 28, 28] or [N, 1, 28, 28]; labels in 0..num_classes-1 (the
    fooling-class experiment labels its images ``num_classes - 1``). ``threads=None`` keeps torch's current
    thread count; runs are only bitwise reproducible for the same count.

    Returns the model in eval mode, on the CPU, and a metrics dict (test accuracy, per-epoch accuracy, wall
    time, options, versions).
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1 and lr > 0; got {epochs}, {batch_size}, {lr}")
    x_train = _as_image_tensor(data.x_train, "x_train")
    y_train = torch.as_tensor(data.y_train, dtype=torch.int64)
    if extra_train is not None:
        extra_images, extra_labels = extra_train
        extra_x = _as_image_tensor(extra_images, "extra_train images")
        extra_y = torch.as_tensor(np.asarray(extra_labels), dtype=torch.int64)
        if extra_y.shape != (len(extra_x),):
            raise ValueError(f"extra_train labels must have shape [{len(extra_x)}], got {list(extra_y.shape)}")
        x_train = torch.cat([x_train, extra_x])
        y_train = torch.cat([y_train, extra_y])
    if len(y_train) == 0:
        raise ValueError("no training images")
    if y_train.min() < 0 or y_train.max() >= num_classes:
        raise ValueError(f"training labels must lie in 0..{num_classes - 1}, found {y_train.min()}..{y_train.max()}")
    x_test = _as_image_tensor(data.x_test, "x_test")
    y_test = torch.as_tensor(data.y_test, dtype=torch.int64)

    steps_per_epoch = -(-len(y_train) // batch_size)
    epoch_accuracy = []
    start = time.perf_counter()
    with _deterministic(threads):
        torch.manual_seed(seed)
        shuffle = torch.Generator().manual_seed(seed)
        model = LeNet(num_classes)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
        with tqdm(total=epochs * steps_per_epoch, desc="train-mnist", unit="step", disable=not progress) as bar:
            for epoch in range(epochs):
                model.train()
                order = torch.randperm(len(y_train), generator=shuffle)
                for batch in order.split(batch_size):
                    loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    bar.update()
                    bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{loss.item():.4f}", refresh=False)
                epoch_accuracy.append(evaluate_accuracy(model, x_test, y_test))
                bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", test_accuracy=f"{epoch_accuracy[-1]:.4f}")
    seconds = time.perf_counter() - start

    metrics = {
        "test_accuracy": epoch_accuracy[-1],
        "epoch_test_accuracy": epoch_accuracy,
        "final_batch_loss": loss.item(),
        "train_seconds": round(seconds, 1),
        "num_train": len(y_train),
        "num_test": len(y_test),
        "num_classes": num_classes,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "threads": torch.get_num_threads() if threads is None else threads,
        "optimizer": "Adam, one-cycle learning rate",
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    return model.eval(), metrics


def evaluate_accuracy(
    model: torch.nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, *, batch_size: int = 1000
) -> float:
    """Fraction of images whose highest-scoring class is the label; images as for :func:`train_lenet`."""
    images = _as_image_tensor(x, "images")
    labels = torch.as_tensor(y, dtype=torch.int64)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape [{len(images)}] to match the images, got {list(labels.shape)}")
    if len(labels) == 0:
        raise ValueError("no images to evaluate")
    was_training = model.training
    model.eval()
    correct = 0
    with torch.inference_mode():
        for chunk, chunk_labels in zip(images.split(batch_size), labels.split(batch_size)):
            correct += int((model(chunk).argmax(dim=1) == chunk_labels).sum())
    model.train(was_training)
    return correct / len(labels)


def _as_image_tensor(images: np.ndarray | torch.Tensor, what: str) -> torch.Tensor:
    """[N, 1, 28, 28] float32 in [0, 1] from uint8 0..255 or floating [0, 1] images, with or without the channel."""
    tensor = torch.as_tensor(images) if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.ndim != 4 or tensor.shape[1:] != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"{what} must have shape [N, 28, 28] or [N, 1, 28, 28], got {list(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.float32).div_(255.0)
    if not tensor.is_floating_point():
        raise ValueError(f"{what} must be uint8 (0..255) or floating point in [0, 1], got {tensor.dtype}")
    tensor = tensor.to(torch.float32)
    if len(tensor) and (tensor.min() < 0 or tensor.max() > 1):
        raise ValueError(f"{what} must lie in [0, 1], found values in [{tensor.min():.4g}, {tensor.max():.4g}]")
    return tensor


@contextlib.contextmanager
def _deterministic(threads: int | None) -> Iterator[None]:
    """Fix the thread count and require deterministic kernels, restoring both afterwards."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
        torch.set_num_threads(previous_threads)
