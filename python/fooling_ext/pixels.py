"""The direct (pixel) encoding: a population of B images whose genes are the pixels themselves.

``PixelPopulation.genes`` is a float32 tensor [B, C, H, W] with every gene in [0, 1]; the image of a genome is
its genes (pixel = gene; the original code writes gene x 255 into an 8-bit image). The starting population
is uniform on [0, 1), drawn by the core from the counter-based generator, so a seed gives the same start on
the CPU and on the GPU. Mutation and selection live in :mod:`fooling_ext.mutation`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from fooling_ext import _core
from fooling_ext._backend import check_tensor, cuda_stream_handle, device_of, resolve_backend

FORMAT_NAME = "fooling_ext.pixel_population"
FORMAT_VERSION = 1


def check_int(name: str, value: object, low: int, high: int) -> int:
    """`value` as an int in [low, high); a ValueError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value < high:
        raise ValueError(f"{name} must be an int in [{low}, {high}), got {value!r}")
    return int(value)


class PixelPopulation:
    """B images of C x H x W genes in [0, 1], on one torch device."""

    def __init__(self, genes: torch.Tensor):
        check_tensor(genes, "genes", torch.float32, (None, None, None, None))
        if any(s == 0 for s in genes.shape[1:]):
            raise ValueError(f"genes must have C, H, W >= 1, got shape {list(genes.shape)}")
        self.genes = genes

    @classmethod
    def initial(
        cls,
        batch: int,
        channels: int,
        height: int,
        width: int,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> "PixelPopulation":
        """The paper's starting population: every gene uniform on [0, 1), drawn from `seed` with the same
        counter-based generator as mutation (genome b uses genome counter b), identical on every backend."""
        batch = check_int("batch", batch, 0, 2**32)
        channels = check_int("channels", channels, 1, 2**31)
        height = check_int("height", height, 1, 2**31)
        width = check_int("width", width, 1, 2**31)
        seed = check_int("seed", seed, 0, 2**64)
        genes_per_genome = channels * height * width
        if genes_per_genome >= 2**31:
            raise ValueError(f"a genome may hold at most 2^31 - 1 genes, got {channels} x {height} x {width}")
        dev = device_of(device)
        genes = torch.empty(batch, channels, height, width, dtype=torch.float32, device=dev)
        if dev.type == "cuda":
            resolve_backend("cuda")  # raises, saying why, when the CUDA backend cannot be used
            with torch.cuda.device(dev):
                _core.init_pixels_cuda(genes.data_ptr(), batch, genes_per_genome, seed, 0, cuda_stream_handle(dev))
        else:
            _core.init_pixels_cpu(genes.data_ptr(), batch, genes_per_genome, seed, 0)
        return cls(genes)

    # ----------------------------------------------------------------------------------------------
    # Shape and movement
    @property
    def batch(self) -> int:
        return self.genes.shape[0]

    def __len__(self) -> int:
        return self.batch

    @property
    def channels(self) -> int:
        return self.genes.shape[1]

    @property
    def height(self) -> int:
        return self.genes.shape[2]

    @property
    def width(self) -> int:
        return self.genes.shape[3]

    @property
    def genes_per_genome(self) -> int:
        return self.channels * self.height * self.width

    @property
    def device(self) -> torch.device:
        return self.genes.device

    def to(self, device: str | torch.device) -> "PixelPopulation":
        dev = device_of(device)
        return self if dev == self.device else PixelPopulation(self.genes.to(dev).contiguous())

    def clone(self) -> "PixelPopulation":
        return PixelPopulation(self.genes.clone())

    def select(
        self, index: torch.Tensor | Sequence[int], *, out: "PixelPopulation | None" = None, check: bool = True
    ) -> "PixelPopulation":
        """A new population made of the genomes at `index` (in that order; repeats allowed), copied by the
        core; see :func:`fooling_ext.mutation.select_parents`."""
        from fooling_ext.mutation import select_parents  # mutation builds on this module

        return select_parents(self, index, out=out, check=check)

    def images(self) -> torch.Tensor:
        """The population as images, float32 [B, C, H, W] in [0, 1]: the genes themselves (not a copy)."""
        return self.genes

    # ----------------------------------------------------------------------------------------------
    # Files
    def save(self, path: str | os.PathLike) -> Path:
        """Save as a NumPy .npz holding `genes` and a format name and version. Written atomically
        (temporary file, then rename)."""
        path = Path(path)
        meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), genes=self.genes.cpu().numpy()
            )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu") -> "PixelPopulation":
        """Load a population written by :meth:`save`; checks the format, dtype, shape and gene range."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no population file at {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                genes = z["genes"]
        except Exception as exc:  # zip, key and JSON errors all mean the same thing to the user
            raise ValueError(f"{path} is not a readable pixel population file: {exc}") from exc
        if meta.get("format") != FORMAT_NAME:
            raise ValueError(f"{path} is not a pixel population file (format {meta.get('format')!r})")
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path} has format version {meta.get('version')}, this build reads {FORMAT_VERSION}")
        if genes.dtype != np.float32 or genes.ndim != 4:
            raise ValueError(f"{path}: genes must be float32 [B, C, H, W], got {genes.dtype} {list(genes.shape)}")
        if genes.size and not (genes.min() >= 0.0 and genes.max() <= 1.0):
            raise ValueError(f"{path}: genes must lie in [0, 1]")
        return cls(torch.from_numpy(np.ascontiguousarray(genes))).to(device)

    def __repr__(self) -> str:
        return (
            f"PixelPopulation(batch={self.batch}, channels={self.channels}, height={self.height}, "
            f"width={self.width}, device={self.device})"
        )
