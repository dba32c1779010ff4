"""The two ways of turning a genome into an image, behind one interface the MAP-Elites loop drives.

* ``CPPNEncoding`` (indirect): a CPPN drawn over pixel coordinates; 1 output for greyscale classifiers,
  3 (read as H, L, S) for colour ones.
* ``DirectEncoding``: one gene per pixel and channel, the pixel value itself (with ``quantize``, the 8-bit
  pixel int(255 g) / 255 the original code makes of it; the genes stay float).

An encoding makes the initial population, mutates children in place, renders images, and converts a batch
of genomes to and from a dict of tensors (what the archive stores, one row per cell).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

import torch

from fooling_ext.core.cppn import DEFAULT_MAX_EDGES, DEFAULT_MAX_NODES, CPPNPopulation
from fooling_ext.core.direct import DirectPopulation
from fooling_ext.core.mutation import (
    BLOCKED_ADD_EDGE,
    BLOCKED_ADD_NODE,
    CPPNMutation,
    DirectMutation,
    halving_rate,
    mutate_cppn,
    mutate_direct,
)
from fooling_ext.core.population import Population
from fooling_ext.core.render import render

ENCODINGS = ("cppn", "direct")
"""The names :func:`make_encoding` takes: CPPNs (the indirect encoding) and pixels (the direct encoding)."""


PopT = TypeVar("PopT", bound=Population)
MutationT = TypeVar("MutationT", CPPNMutation, DirectMutation)


class Encoding(Protocol[PopT]):
    """What MAP-Elites drives: both encodings below have these members. `PopT`: the kind of population the
    encoding makes and takes back (``Encoding[Any]`` for either)."""

    name: str
    channels: int
    height: int
    width: int

    def config(self) -> dict[str, Any]: ...

    def initial(self, batch: int, seed: int, device: torch.device) -> PopT: ...

    def children(
        self, parents: Mapping[str, torch.Tensor], cells: torch.Tensor, seed: int, generation: int
    ) -> PopT: ...

    def render(self, genomes: PopT, out: torch.Tensor | None = None) -> torch.Tensor: ...

    def tensors(self, genomes: PopT) -> dict[str, torch.Tensor]: ...

    def from_tensors(self, tensors: Mapping[str, torch.Tensor]) -> PopT: ...

    def blocked_counts(self) -> tuple[int, int]: ...

    def largest_genome(self, genomes: Mapping[str, torch.Tensor], occupied: torch.Tensor) -> tuple[int, int]: ...


@dataclass
class CPPNEncoding:
    """The indirect encoding: each genome is a CPPN, drawn over the pixel coordinates into a channels x height x
    width image. Fields: the image size, the coordinates and colour mode of rendering, the genome capacity and the
    mutation settings."""

    channels: int
    height: int
    width: int
    coords: str = "normalized"
    color: str = "hsl"
    quantize: bool = False  # outputs become trunc(255 a) / 255 before they become pixels
    max_nodes: int = DEFAULT_MAX_NODES
    max_edges: int = DEFAULT_MAX_EDGES
    mutation: CPPNMutation = field(default_factory=CPPNMutation)

    name = "cppn"

    def config(self) -> dict[str, Any]:
        return {"encoding": self.name, **asdict(self)}  # asdict recurses into the mutation settings

    def initial(self, batch: int, seed: int, device: torch.device) -> CPPNPopulation:
        self._blocked: torch.Tensor | None = None  # a starting population is not mutated
        return CPPNPopulation.initial(
            batch,
            self.channels,
            seed=seed,
            max_nodes=self.max_nodes,
            max_edges=self.max_edges,
            weight_range=(self.mutation.weight_min, self.mutation.weight_max),
            activations=self.mutation.activations,
            device=device,
        )

    def children(
        self, parents: Mapping[str, torch.Tensor], cells: torch.Tensor, seed: int, generation: int
    ) -> CPPNPopulation:
        """Copies of the archive genomes at `cells`, mutated (in place) for this generation."""
        kids = self.from_tensors(parents).select(cells)
        self._blocked = mutate_cppn(kids, seed=seed, generation=generation, params=self.mutation)
        return kids

    def blocked_counts(self) -> tuple[int, int]:
        """(add connection, add node): how many children of the last `children` call had that operator fire
        but capacity block it (0, 0 before any call)."""
        blocked = getattr(self, "_blocked", None)
        if blocked is None:
            return 0, 0
        edge = ((blocked & BLOCKED_ADD_EDGE) != 0).sum()
        node = ((blocked & BLOCKED_ADD_NODE) != 0).sum()
        counts = torch.stack([edge, node]).tolist()
        return int(counts[0]), int(counts[1])

    def largest_genome(self, genomes: Mapping[str, torch.Tensor], occupied: torch.Tensor) -> tuple[int, int]:
        """(nodes, edges) of the largest genome (each counted on its own) among the `occupied` rows."""
        if not bool(occupied.any()):
            return 0, 0
        nodes = genomes["num_nodes"][occupied].max()
        edges = genomes["num_edges"][occupied].max()
        sizes = torch.stack([nodes, edges]).tolist()
        return int(sizes[0]), int(sizes[1])

    def render(self, genomes: CPPNPopulation, out: torch.Tensor | None = None) -> torch.Tensor:
        return render(
            genomes, self.height, self.width, coords=self.coords, color=self.color, quantize=self.quantize, out=out
        )

    def tensors(self, genomes: CPPNPopulation) -> dict[str, torch.Tensor]:
        return genomes.tensors()

    def from_tensors(self, tensors: Mapping[str, torch.Tensor]) -> CPPNPopulation:
        return CPPNPopulation(**tensors, num_outputs=self.channels)

    def describe(self, genomes: CPPNPopulation, i: int) -> str:
        return genomes.describe(i)


@dataclass
class DirectEncoding:
    """The direct encoding: each genome is the image itself, one gene in [0, 1] per pixel and channel, changed by
    polynomial mutation (SBX crossover optional, off by default) at a rate halved every `halve_every` generations
    when that is set."""

    channels: int
    height: int
    width: int
    mutation: DirectMutation = field(default_factory=DirectMutation)
    halve_every: int | None = None  # the paper halves the mutation rate every 1000 generations
    quantize: bool = False  # pixels are int(255 g) / 255, the original's 8-bit image; the genes stay float

    name = "direct"

    def config(self) -> dict[str, Any]:
        return {"encoding": self.name, **asdict(self)}  # asdict recurses into the mutation settings

    def initial(self, batch: int, seed: int, device: torch.device) -> DirectPopulation:
        return DirectPopulation.initial(batch, self.channels, self.height, self.width, seed=seed, device=device)

    def rate(self, generation: int) -> float:
        return halving_rate(self.mutation.rate, generation, self.halve_every)

    def children(
        self, parents: Mapping[str, torch.Tensor], cells: torch.Tensor, seed: int, generation: int
    ) -> DirectPopulation:
        kids = self.from_tensors(parents).select(cells)
        mutate_direct(kids, seed=seed, generation=generation, params=self.mutation, rate=self.rate(generation))
        return kids

    def blocked_counts(self) -> tuple[int, int]:
        """A pixel genome has a fixed size: nothing is ever blocked."""
        return 0, 0

    def largest_genome(self, genomes: Mapping[str, torch.Tensor], occupied: torch.Tensor) -> tuple[int, int]:
        """No nodes or edges in a pixel genome."""
        return 0, 0

    def render(self, genomes: DirectPopulation, out: torch.Tensor | None = None) -> torch.Tensor:
        images = genomes.images()
        if self.quantize:
            images = quantize_pixels(images, out=out)
            return images
        if out is not None:
            out.copy_(images)
            return out
        return images

    def tensors(self, genomes: DirectPopulation) -> dict[str, torch.Tensor]:
        return {"genes": genomes.genes}

    def from_tensors(self, tensors: Mapping[str, torch.Tensor]) -> DirectPopulation:
        return DirectPopulation(tensors["genes"])

    def describe(self, genomes: DirectPopulation, i: int) -> str:
        g = genomes.genes[i]
        return f"pixels {list(g.shape)} mean {float(g.mean()):.4f} std {float(g.std()):.4f}"


def quantize_pixels(genes: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The original code's 8-bit pixel of a gene g in [0, 1]: int(255 g) / 255, in float32 (255 g rounded to
    float32 once, then truncated, as its `int color = value * 255;` does)."""
    out = torch.empty_like(genes) if out is None else out
    torch.mul(genes, 255.0, out=out)
    out.trunc_().div_(255.0)
    return out


def make_encoding(name: str, channels: int, height: int, width: int, **options: Any) -> CPPNEncoding | DirectEncoding:
    """Build an encoding by name ("cppn" or "direct") with its options (see the dataclasses)."""
    if name == "cppn":
        mutation = options.pop("mutation", None)
        return CPPNEncoding(channels, height, width, mutation=_as(CPPNMutation, mutation), **options)
    if name == "direct":
        mutation = options.pop("mutation", None)
        return DirectEncoding(channels, height, width, mutation=_as(DirectMutation, mutation), **options)
    raise ValueError(f"encoding must be one of {ENCODINGS}, got {name!r}")


def _as(cls: type[MutationT], value: object) -> MutationT:
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return cls(**value)
    raise ValueError(f"mutation parameters must be a {cls.__name__} or a dict, got {type(value).__name__}")
