"""The MAP-Elites archive: one cell per class, each holding the most confidently misclassified image found.

Stored as a struct of arrays on one device (as pyribs does): per cell the elite's genome (any encoding's
tensors, stacked), its image (uint8), its confidence, the generation it was found in, its id and its
parent's id. ``add`` scores a whole batch of children at once and reports, per child, whether it created a
cell, improved one, or was not added.

Insertion follows the original code by default: a child enters EVERY cell whose elite it beats, so one image
may hold several cells ("all"). The alternative ("top", as in pyribs' tutorials) lets a child compete only
for its top class.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fooling_ext.core.checks import check_memory, check_whole
from fooling_ext.core.cppn import GenomeError
from fooling_ext.runs.archive_file import check_archive, write_archive
from fooling_ext.runs.images import to_uint8
from fooling_ext.runs.notebook import class_grid_html
from fooling_ext.runs.report import summary_line
from fooling_ext.search.encodings import Encoding

INSERTION_MODES = ("all", "top")
"""How a child enters the archive: every cell whose elite it beats ("all", the paper's), or only its top
class's ("top")."""

NOT_ADDED, IMPROVED, NEW = 0, 1, 2
"""A child's status in :class:`AddResult`: it entered no cell, it improved an occupied cell, or it filled an
empty one (which counts when it did both)."""


@dataclass
class AddResult:
    """Outcome of one ``Archive.add``: per child status (NOT_ADDED / IMPROVED / NEW, on the archive's device)
    and the number of cells that were created and improved."""

    status: torch.Tensor
    new_cells: int
    improved_cells: int


class Archive:
    """One cell per class; see the module docstring."""

    def __init__(
        self,
        class_names: Sequence[str],
        genome_template: Mapping[str, torch.Tensor],
        image_shape: Sequence[int],
        *,
        insertion: str = "all",
        device: str | torch.device = "cpu",
    ):
        """genome_template: the tensors of one batch of genomes (leading batch axis); the archive allocates
        the same fields with one row per cell. image_shape: (C, H, W) of the rendered images."""
        if insertion not in INSERTION_MODES:
            raise ValueError(f"insertion must be one of {INSERTION_MODES}, got {insertion!r}")
        if len(class_names) < 1:
            raise ValueError("an archive needs at least one class")
        if not isinstance(image_shape, (tuple, list, torch.Size)) or len(image_shape) != 3:
            raise ValueError(f"image_shape must be (channels, height, width), got {image_shape!r}")
        for side in image_shape:
            check_whole("image_shape", side, 1)
        self.class_names = [str(c) for c in class_names]
        self.insertion = insertion
        self.device = torch.device(device)
        k = len(self.class_names)
        genome_bytes = sum(t[:1].numel() * t.element_size() for t in genome_template.values())
        c, h, w = (int(side) for side in image_shape)
        check_memory(f"an archive of {k} cells of {c}x{h}x{w} images", k * (c * h * w + genome_bytes + 64), self.device)
        self.genomes = {
            name: torch.zeros((k, *t.shape[1:]), dtype=t.dtype, device=self.device)
            for name, t in genome_template.items()
        }
        self.images = torch.zeros((k, *image_shape), dtype=torch.uint8, device=self.device)
        self.confidence = torch.full((k,), -1.0, dtype=torch.float32, device=self.device)
        self.occupied = torch.zeros(k, dtype=torch.bool, device=self.device)
        self.generation = torch.full((k,), -1, dtype=torch.int64, device=self.device)
        self.elite_id = torch.full((k,), -1, dtype=torch.int64, device=self.device)
        self.parent_id = torch.full((k,), -1, dtype=torch.int64, device=self.device)

    @property
    def num_cells(self) -> int:
        return len(self.class_names)

    def num_occupied(self) -> int:
        return int(self.occupied.sum())

    def add(
        self,
        genomes: Mapping[str, torch.Tensor],
        images: torch.Tensor,
        probabilities: torch.Tensor,
        *,
        generation: int,
        ids: torch.Tensor,
        parent_ids: torch.Tensor,
    ) -> AddResult:
        """Insert a batch of children. probabilities: [B, K] (the fitness of child j for cell k is its
        probability of class k). A cell takes the best child for it when that child's confidence is strictly
        higher than the elite's (ties keep the elite; among tied children the first wins). A probability that is
        not finite or lies outside [0, 1] is a ValueError naming the child and the class, and nothing is stored."""
        for name, value in (
            ("probabilities", probabilities),
            ("images", images),
            ("ids", ids),
            ("parent_ids", parent_ids),
        ):
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        check_whole("generation", generation, 0)
        probs = probabilities.to(self.device, torch.float32)
        b = probs.shape[0]
        if probs.dim() != 2 or probs.shape[1] != self.num_cells:
            raise ValueError(
                f"probabilities must be [batch, {self.num_cells}] (one column per cell), got {list(probs.shape)}"
            )
        if images.shape[0] != b or tuple(images.shape[1:]) != tuple(self.images.shape[1:]):
            raise ValueError(
                f"images must be [{b}, {', '.join(map(str, self.images.shape[1:]))}], got {list(images.shape)}"
            )
        for name, t in self.genomes.items():
            g = genomes.get(name)
            if g is None or g.shape[0] != b or g.shape[1:] != t.shape[1:]:
                got = None if g is None else list(g.shape)
                raise ValueError(f"genome field {name!r} must be [{b}, {', '.join(map(str, t.shape[1:]))}], got {got}")
        for name, t in (("ids", ids), ("parent_ids", parent_ids)):
            if tuple(t.shape) != (b,) or t.dtype != torch.int64:
                raise ValueError(f"{name} must be int64 [{b}], got {t.dtype} {list(t.shape)}")
        if b == 0:
            return AddResult(torch.zeros(0, dtype=torch.int8, device=self.device), 0, 0)
        outside = ~((probs >= 0.0) & (probs <= 1.0))  # NaN is outside too
        if bool(outside.any()):
            child, cell = (int(i) for i in torch.nonzero(outside)[0])
            raise ValueError(
                f"the probability of child {child} for class {cell} ({self.class_names[cell]}) is "
                f"{float(probs[child, cell])!r}: probabilities must be finite and in [0, 1]"
            )
        if self.insertion == "top":
            top = probs.argmax(dim=1, keepdim=True)
            probs = torch.full_like(probs, -2.0).scatter_(1, top, probs.gather(1, top))
        best, winner = probs.max(dim=0)  # first maximum wins ties
        better = best > self.confidence
        cells = torch.nonzero(better).flatten()  # the only host synchronisation of an add
        status = torch.zeros(b, dtype=torch.int8, device=self.device)
        if cells.numel() == 0:
            return AddResult(status, 0, 0)
        src = winner[cells]
        was_new = ~self.occupied[cells]
        status.scatter_reduce_(0, src, torch.where(was_new, NEW, IMPROVED).to(torch.int8), reduce="amax")
        for name, t in self.genomes.items():
            t.index_copy_(0, cells, genomes[name].to(self.device).index_select(0, src))
        # Convert each winning child once, however many cells it takes (one child may take every cell).
        winners, slot = torch.unique(src, return_inverse=True)
        winner_images = to_uint8(images.to(self.device).index_select(0, winners))
        self.images.index_copy_(0, cells, winner_images.index_select(0, slot))
        self.confidence.index_copy_(0, cells, best[cells])
        self.occupied[cells] = True
        self.generation[cells] = generation
        self.elite_id.index_copy_(0, cells, ids.to(self.device).index_select(0, src))
        self.parent_id.index_copy_(0, cells, parent_ids.to(self.device).index_select(0, src))
        n_new = int(was_new.sum())
        return AddResult(status, n_new, int(cells.numel()) - n_new)

    def __repr__(self) -> str:
        return (
            f"Archive({self.num_cells} classes, {self.num_occupied()} occupied, insertion {self.insertion!r}, "
            f"{self.device}\n  {summary_line(self.confidences())})"
        )

    def _repr_html_(self) -> str:
        """In a notebook: the occupied cells as an image grid with class and confidence."""
        return class_grid_html(
            self.images.cpu().numpy(),
            self.confidence.cpu().numpy(),
            self.occupied.cpu().numpy(),
            self.class_names,
            title=f"Archive: {self.num_occupied()} of {self.num_cells} cells",
        )

    def occupied_cells(self) -> torch.Tensor:
        return torch.nonzero(self.occupied).flatten()

    def sample_parents(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """n parent cells drawn uniformly (with replacement) from the occupied cells."""
        occupied = self.occupied_cells().cpu().numpy()
        if occupied.size == 0:
            raise RuntimeError("cannot sample parents from an empty archive")
        return torch.from_numpy(occupied[rng.integers(0, occupied.size, size=n)]).to(self.device)

    def confidences(self) -> np.ndarray:
        """Per-cell confidence on the host; empty cells count as 0."""
        return self.confidence.clamp(min=0.0).cpu().numpy().astype(np.float64)

    # ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self._fields().items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore from state_dict(); every field must be present with this archive's shape and dtype."""
        for key, target in self._fields().items():
            if key not in state:
                raise ValueError(f"archive state lacks field {key!r}")
            value = state[key]
            if not isinstance(value, torch.Tensor) or value.shape != target.shape or value.dtype != target.dtype:
                got = (list(value.shape), value.dtype) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"archive field {key!r} should be {list(target.shape)} {target.dtype}, got {got}")
        for key, target in self._fields().items():
            target.copy_(state[key].to(self.device))

    def validate(self, encoding: Encoding[Any], *, where: str = "archive") -> None:
        """Check what a loaded archive holds before a run builds on it: per cell a finite confidence in
        [0, 1], a generation and id >= 0 where occupied (runs.archive_file.check_archive), and every occupied
        cell's genome valid for `encoding` (CPPN: counts, fields, finite weights, acyclic; direct: genes
        finite in [0, 1]). A ValueError names `where`, the cell and the problem."""
        arrays = {k: v.cpu().numpy() for k, v in self._fields().items() if not k.startswith("genome.")}
        check_archive({"class_names": self.class_names}, arrays, where=where)
        cells = self.occupied_cells()
        if cells.numel():
            genomes = encoding.from_tensors({k: v[cells].contiguous() for k, v in self.genomes.items()})
            try:
                genomes.validate()
            except GenomeError as exc:  # "genome i: ..." of the occupied cells' genomes
                genome = exc.genome
                cell = int(cells[genome])
                what = str(exc).removeprefix(f"genome {genome}: ")
                raise ValueError(
                    f"{where}: the genome of class {cell} ({self.class_names[cell]}) is invalid: {what}"
                ) from exc

    def _fields(self) -> dict[str, torch.Tensor]:
        fields = {f"genome.{k}": v for k, v in self.genomes.items()}
        fields.update(
            images=self.images,
            confidence=self.confidence,
            occupied=self.occupied,
            generation=self.generation,
            elite_id=self.elite_id,
            parent_id=self.parent_id,
        )
        return fields

    def save_npz(self, path: str | os.PathLike[str], extra_meta: Mapping[str, Any] | None = None) -> Path:
        """The archive as a NumPy .npz readable without torch (see docs/file-formats.md); atomic write."""
        meta = {"class_names": self.class_names, "insertion": self.insertion, **(extra_meta or {})}
        return write_archive(path, {k.replace(".", "_"): v.numpy() for k, v in self.state_dict().items()}, meta)
