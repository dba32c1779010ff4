"""Train a small multilayer perceptron on MNIST, a network of another architecture than the shipped LeNet, to
measure how fooling images transfer (docs/transfer.md). Writes a torch.export program with a dynamic batch, which
``--model`` takes with its input described:

    python scripts/train_mnist_mlp.py --out mlp.pt2
    fooling analyze transfer RUN --model mlp.pt2 --model-channels 1 --model-size 28x28 --out ...

784 -> 256 -> 256 -> 10, ReLU, on images in [0, 1]; Adam with a one-cycle schedule as ``fooling train-mnist``
(batch 128, peak learning rate 0.003), on the MNIST copy in the package. Prints the test accuracy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fooling_ext.classifiers.datasets.mnist import load_mnist


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the .pt2 file to write")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_mnist()
    x_train = torch.from_numpy(data.x_train).float().div_(255.0)[:, None]
    y_train = torch.from_numpy(data.y_train).long()
    x_test = torch.from_numpy(data.x_test).float().div_(255.0)[:, None]
    y_test = torch.from_numpy(data.y_test).long()
    model = mlp()
    steps = -(-len(y_train) // 128)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.003, total_steps=args.epochs * steps)
    shuffle = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for batch in torch.randperm(len(y_train), generator=shuffle).split(128):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (x_test[:2],), dynamic_shapes=({0: batch},))
    torch.export.save(program, args.out)
    print(
        f"test accuracy {accuracy:.4f} on {len(y_test)} images after {time.perf_counter() - start:.0f} s; "
        f"wrote {args.out}"
    )


if __name__ == "__main__":
    main()
