"""Image surgery for the structure analysis: tiles shuffled on a k x k grid, and occlusion maps (a grey patch
slid over the image, the class confidence recorded at each place)."""

from __future__ import annotations

import numpy as np
import torch

GREY = 0.5


def tile_permutations(k: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` random orders of the k * k tiles, none of them the identity (for k = 1 there is only that)."""
    if k < 1 or count < 1:
        raise ValueError(f"need k >= 1 and count >= 1, got k={k}, count={count}")
    identity = np.arange(k * k)
    orders: list[np.ndarray] = []
    while len(orders) < count:
        order = rng.permutation(k * k)
        if k == 1 or not np.array_equal(order, identity):
            orders.append(order)
    return orders


def shuffle_tiles(images: torch.Tensor, k: int, order: np.ndarray) -> torch.Tensor:
    """Images [N, C, H, W] with the tiles of a k x k grid put in `order` (tile i of the result is tile
    order[i] of the image, row by row). Tiles are H // k x W // k; rows and columns beyond k tiles (when k
    does not divide the size) stay where they are."""
    n, c, h, w = images.shape
    th, tw = h // k, w // k
    if th < 1 or tw < 1:
        raise ValueError(f"a {k} x {k} grid does not fit images of {h} x {w}")
    out = images.clone()
    region = images[:, :, : k * th, : k * tw].reshape(n, c, k, th, k, tw).permute(0, 1, 2, 4, 3, 5)
    region = region.reshape(n, c, k * k, th, tw)[:, :, torch.as_tensor(order, dtype=torch.long)]
    out[:, :, : k * th, : k * tw] = (
        region.reshape(n, c, k, k, th, tw).permute(0, 1, 2, 4, 3, 5).reshape(n, c, k * th, k * tw)
    )
    return out


def patch_places(size: int, patch: int, stride: int) -> list[int]:
    """Top (or left) edges of the patch along one side: every `stride` pixels, the last one flush with the edge."""
    places = list(range(0, max(1, size - patch + 1), stride))
    if places[-1] != size - patch and size - patch > 0:
        places.append(size - patch)
    return places


def occluded(image: torch.Tensor, patch: int, stride: int, fill: float = GREY) -> tuple[torch.Tensor, tuple[int, int]]:
    """Every copy of one image [C, H, W] with a `patch` x `patch` square of `fill` slid over it: the copies
    [P, C, H, W] (row by row) and the shape of the map (rows, columns)."""
    _, h, w = image.shape
    ys, xs = patch_places(h, patch, stride), patch_places(w, patch, stride)
    copies = image.unsqueeze(0).repeat(len(ys) * len(xs), 1, 1, 1)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            copies[i * len(xs) + j, :, y : y + patch, x : x + patch] = fill
    return copies, (len(ys), len(xs))
