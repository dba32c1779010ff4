"""MAP-Elites with a batched ask / tell interface (in the spirit of pyribs).

    me = MapElites(encoding, archive, batch_size=200, seed=1)
    while ...:
        children = me.ask()                    # genomes: the initial population, then mutated elites
        images = encoding.render(children)     # [B, C, H, W] in [0, 1]
        probs = classifier.probabilities(images)
        result = me.tell(probs, images)        # per child: NOT_ADDED / IMPROVED / NEW

Parents are drawn uniformly from the occupied cells. Every random choice is keyed by (seed, generation),
so a run is reproducible from its seed and a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import torch

from fooling_ext.core.population import Population
from fooling_ext.core.seeds import INITIAL_POPULATION, PARENT_DRAWS, derive_seed, seeded_rng
from fooling_ext.search.archive import AddResult, Archive
from fooling_ext.search.encodings import Encoding


class MapElites:
    """MAP-Elites as an ask / tell loop over an encoding and an archive: :meth:`ask` gives a generation's
    `batch_size` children (mutated copies of elites drawn uniformly from the occupied cells), :meth:`tell` inserts
    them with their probabilities. Every random draw is derived from `seed` and the generation."""

    def __init__(self, encoding: Encoding[Any], archive: Archive, *, batch_size: int, seed: int, generation: int = 0):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        self.encoding = encoding
        self.archive = archive
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.generation = int(generation)  # generations completed (told)
        self._pending: tuple[Population, torch.Tensor, torch.Tensor] | None = None

    @property
    def device(self) -> torch.device:
        return self.archive.device

    def ask(self) -> Population:
        """The children of the next generation (the initial random population when the archive is empty)."""
        if self._pending is not None:
            raise RuntimeError("ask() called twice without tell()")
        g = self.generation
        ids = g * self.batch_size + torch.arange(self.batch_size, device=self.device, dtype=torch.int64)
        children: Population
        if self.archive.num_occupied() == 0:
            seed = derive_seed(self.seed, g, INITIAL_POPULATION)
            children = self.encoding.initial(self.batch_size, seed=seed, device=self.device)
            parent_ids = torch.full((self.batch_size,), -1, dtype=torch.int64, device=self.device)
        else:
            cells = self.archive.sample_parents(self.batch_size, seeded_rng(self.seed, g, PARENT_DRAWS))
            children = self.encoding.children(self.archive.genomes, cells, self.seed, g)
            parent_ids = self.archive.elite_id.index_select(0, cells)
        self._pending = (children, ids, parent_ids)
        return children

    def tell(self, probabilities: torch.Tensor, images: torch.Tensor) -> AddResult:
        """Score the children of the last ask() and insert them into the archive."""
        if self._pending is None:
            raise RuntimeError("tell() called without ask()")
        children, ids, parent_ids = self._pending
        if probabilities.shape[0] != ids.shape[0]:
            raise ValueError(
                f"tell() needs one row of probabilities per child ({ids.shape[0]}), got {probabilities.shape[0]}"
            )
        result = self.archive.add(
            self.encoding.tensors(children),
            images,
            probabilities,
            generation=self.generation,
            ids=ids,
            parent_ids=parent_ids,
        )
        self._pending = None
        self.generation += 1
        return result
