"""The direct encoding: a population of B images whose genes are the pixels themselves.

``DirectPopulation.genes`` is a float32 tensor [B, C, H, W] with every gene in [0, 1]; the image of a genome is
its genes (pixel = gene; the original code writes gene x 255 into an 8-bit image). The starting population
is uniform on [0, 1), drawn by the core from the counter-based generator, so a seed gives the same start on
the CPU and on the GPU. Mutation lives in :mod:`fooling_ext.core.mutation`. (The core's kernels for these
genomes are named after what they work on: ``init_pixels``, ``mutate_pixels``, ``select_rows``.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fooling_ext._files import read_npz, write_npz
from fooling_ext.core.backend import launch, resolve_device
from fooling_ext.core.checks import check_int, check_tensor
from fooling_ext.core.cppn import GenomeError
from fooling_ext.core.population import Population

# The on-disk name of this file format, unchanged since its first version.
FORMAT_NAME = "fooling_ext.pixel_population"
FORMAT_VERSION = 1


class DirectPopulation(Population):
    """B images of C x H x W genes in [0, 1], on one torch device."""

    FIELDS = ("genes",)

    def __init__(self, genes: torch.Tensor):
        self.genes = genes
        self._fix_layout()

    def _with_tensors(self, tensors: Mapping[str, torch.Tensor]) -> DirectPopulation:
        return DirectPopulation(tensors["genes"])

    def _check_new_tensors(self) -> None:
        check_tensor(self.genes, "genes", torch.float32, (None, None, None, None))
        if any(s == 0 for s in self.genes.shape[1:]):
            raise ValueError(f"genes must have C, H, W >= 1, got shape {list(self.genes.shape)}")

    def settings(self) -> dict[str, Any]:
        return {"channels": self.channels, "height": self.height, "width": self.width}

    def _launch_select(self, index: torch.Tensor, out: DirectPopulation, read_flag: bool) -> int:
        first_bad: int = launch(
            "select_rows",
            self.device,
            self.genes.data_ptr(),
            self.batch,
            self.genes_per_genome,
            index.data_ptr(),
            index.shape[0],
            out.genes.data_ptr(),
            read_flag=read_flag,
        )
        return first_bad

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
    ) -> DirectPopulation:
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
        dev = resolve_device(device)
        genes = torch.empty(batch, channels, height, width, dtype=torch.float32, device=dev)
        launch("init_pixels", dev, genes.data_ptr(), batch, genes_per_genome, seed, 0)
        return cls(genes)

    # ----------------------------------------------------------------------------------------------
    # Shape
    @property
    def channels(self) -> int:
        return self._layout["genes"][1][1]

    @property
    def height(self) -> int:
        return self._layout["genes"][1][2]

    @property
    def width(self) -> int:
        return self._layout["genes"][1][3]

    @property
    def genes_per_genome(self) -> int:
        return self.channels * self.height * self.width

    def images(self) -> torch.Tensor:
        """The population as images, float32 [B, C, H, W] in [0, 1]: the genes themselves (not a copy)."""
        return self.genes

    def validate(self) -> DirectPopulation:
        """Raise ValueError naming the first genome with a gene that is not finite in [0, 1]; return self."""
        self.check_tensors()
        flat = self.genes.reshape(self.batch, -1)
        bad = torch.nonzero(~((flat >= 0.0) & (flat <= 1.0)).all(dim=1)).flatten()  # NaN fails both tests
        if bad.numel():
            raise GenomeError(
                int(bad[0]), "genes", f"genes must be finite and in [0, 1] ({bad.numel()} genomes are not)"
            )
        return self

    # ----------------------------------------------------------------------------------------------
    # Files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save as a NumPy .npz holding `genes` and a format name and version. Written atomically
        (temporary file, then rename)."""
        return write_npz(path, {"format": FORMAT_NAME, "version": FORMAT_VERSION}, {"genes": self.genes.cpu().numpy()})

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> DirectPopulation:
        """Load a population written by :meth:`save`; checks the format, dtype, shape and gene range."""
        _, arrays = read_npz(
            path, cls.FIELDS, what="direct population file", format_name=FORMAT_NAME, version=FORMAT_VERSION
        )
        genes = arrays["genes"]
        if genes.dtype != np.float32 or genes.ndim != 4:
            raise ValueError(f"{path}: genes must be float32 [B, C, H, W], got {genes.dtype} {list(genes.shape)}")
        if genes.size and not (genes.min() >= 0.0 and genes.max() <= 1.0):  # NaN fails both tests
            raise ValueError(f"{path}: genes must be finite and lie in [0, 1]")
        return cls(torch.from_numpy(np.ascontiguousarray(genes))).to(device)
