"""The CPPN genome batch: B compositional pattern-producing networks in one padded layout.

Layout (struct of arrays, int32 / float32, row-major, on one torch device):

=================  ==================  =====================================================
field              shape               meaning
=================  ==================  =====================================================
num_nodes          [B]                 live nodes of each genome
num_edges          [B]                 live edges of each genome
node_activation    [B, max_nodes]      activation id of each node (ignored for inputs)
edge_src           [B, max_edges]      source node of each edge
edge_dst           [B, max_edges]      destination node of each edge
edge_weight        [B, max_edges]      weight of each edge
=================  ==================  =====================================================

Node indices: 0..3 are the inputs x, y, d, bias; the next ``num_outputs`` (1 for greyscale, 3 for colour)
are the outputs; the rest are hidden nodes. Each non-input node computes the weighted sum of its incoming
edges, then its activation. Entries past a genome's counts are padding and carry no meaning.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fooling_ext import _core
from fooling_ext._files import read_npz, write_npz
from fooling_ext.core.backend import launch, resolve_device
from fooling_ext.core.checks import check_tensor
from fooling_ext.core.cppn_text import ACTIVATION_IDS, ACTIVATIONS, INPUT_NAMES, NUM_INPUTS, format_genome, parse_genome
from fooling_ext.core.population import Population

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_IDS",
    "CPPNPopulation",
    "GenomeError",
    "INPUT_NAMES",
    "NUM_INPUTS",
    "activation_ids",
    "raise_first_error",
]

DEFAULT_MAX_NODES = 64
DEFAULT_MAX_EDGES = 256
DEFAULT_WEIGHT_RANGE = (-10.0, 10.0)

FORMAT_NAME = "fooling_ext.cppn_population"
FORMAT_VERSION = 1

# Core error codes (cpp/include/fooling/genome.h) -> (field, message template).
_ERROR_TEXT = {
    1: ("num_nodes", "num_nodes = {value} is outside [{min_nodes}, {max_nodes}] (inputs + outputs .. capacity)"),
    2: ("num_edges", "num_edges = {value} is outside [0, {max_edges}] (capacity)"),
    3: ("node_activation", "node_activation[{index}] = {value} is not a known activation (0..{last_act})"),
    4: ("edge_src", "edge_src[{index}] = {value} refers to a node that does not exist"),
    5: ("edge_dst", "edge_dst[{index}] = {value} refers to a node that does not exist"),
    6: ("edge_dst", "edge_dst[{index}] = {value} points into an input node"),
    7: ("edge_weight", "edge_weight[{index}] is not finite"),
    8: ("edge_src", "the edges form a cycle ({value} nodes cannot be ordered, node {index} among them)"),
}


class GenomeError(ValueError):
    """A genome that breaks the layout's rules. Names the genome, the field and the entry."""

    def __init__(self, genome: int, field: str, message: str, index: int = -1, value: int = 0):
        super().__init__(f"genome {genome}: {message}")
        self.genome = genome
        self.field = field
        self.index = index
        self.value = value


def _check_num_outputs(num_outputs: int) -> int:
    if num_outputs not in (1, 3):
        raise ValueError(f"num_outputs must be 1 (greyscale) or 3 (colour), got {num_outputs}")
    return int(num_outputs)


def _check_capacity(num_outputs: int, max_nodes: int, max_edges: int) -> None:
    lo = NUM_INPUTS + num_outputs
    if not lo <= max_nodes <= _core.MAX_NODES_CAPACITY:
        raise ValueError(f"max_nodes must be in [{lo}, {_core.MAX_NODES_CAPACITY}], got {max_nodes}")
    if not NUM_INPUTS * num_outputs <= max_edges <= _core.MAX_EDGES_CAPACITY:
        raise ValueError(
            f"max_edges must be in [{NUM_INPUTS * num_outputs}, {_core.MAX_EDGES_CAPACITY}] "
            f"(the initial genome wires every input to every output), got {max_edges}"
        )


class CPPNPopulation(Population):
    """A batch of CPPN genomes in the core's padded layout, held as torch tensors on one device.

    Build one with :meth:`initial` (the paper's starting population), :meth:`empty`, :meth:`from_genomes`
    or :meth:`load`. Both backends read and write the tensors in place.
    """

    FIELDS = ("num_nodes", "num_edges", "node_activation", "edge_src", "edge_dst", "edge_weight")

    def __init__(
        self,
        num_nodes: torch.Tensor,
        num_edges: torch.Tensor,
        node_activation: torch.Tensor,
        edge_src: torch.Tensor,
        edge_dst: torch.Tensor,
        edge_weight: torch.Tensor,
        *,
        num_outputs: int,
    ):
        self.num_outputs = _check_num_outputs(num_outputs)
        self.num_nodes = num_nodes
        self.num_edges = num_edges
        self.node_activation = node_activation
        self.edge_src = edge_src
        self.edge_dst = edge_dst
        self.edge_weight = edge_weight
        self._fix_layout()

    def _with_tensors(self, tensors: Mapping[str, torch.Tensor]) -> CPPNPopulation:
        return CPPNPopulation(**tensors, num_outputs=self.num_outputs)

    def _check_new_tensors(self) -> None:
        check_tensor(self.num_nodes, "num_nodes", torch.int32, (None,))
        b, dev = self.num_nodes.shape[0], self.num_nodes.device
        check_tensor(self.node_activation, "node_activation", torch.int32, (b, None), dev)
        check_tensor(self.edge_src, "edge_src", torch.int32, (b, None), dev)
        max_nodes, max_edges = self.node_activation.shape[1], self.edge_src.shape[1]
        _check_capacity(self.num_outputs, max_nodes, max_edges)
        check_tensor(self.num_edges, "num_edges", torch.int32, (b,), dev)
        check_tensor(self.edge_dst, "edge_dst", torch.int32, (b, max_edges), dev)
        check_tensor(self.edge_weight, "edge_weight", torch.float32, (b, max_edges), dev)

    def settings(self) -> dict[str, Any]:
        return {"num_outputs": self.num_outputs, "max_nodes": self.max_nodes, "max_edges": self.max_edges}

    def _launch_select(self, index: torch.Tensor, out: CPPNPopulation, read_flag: bool) -> int:
        first_bad: int = launch(
            "select_cppn", self.device, self.core_view(), index.data_ptr(), out.core_view(), read_flag=read_flag
        )
        return first_bad

    # ----------------------------------------------------------------------------------------------
    # Construction
    @classmethod
    def empty(
        cls,
        batch: int,
        num_outputs: int = 1,
        *,
        max_nodes: int = DEFAULT_MAX_NODES,
        max_edges: int = DEFAULT_MAX_EDGES,
        device: str | torch.device = "cpu",
    ) -> CPPNPopulation:
        """A population of `batch` genomes with inputs and outputs only, no edges."""
        if batch < 0:
            raise ValueError(f"batch must be >= 0, got {batch}")
        num_outputs = _check_num_outputs(num_outputs)
        _check_capacity(num_outputs, max_nodes, max_edges)
        dev = resolve_device(device)
        return cls(
            torch.full((batch,), NUM_INPUTS + num_outputs, dtype=torch.int32, device=dev),
            torch.zeros(batch, dtype=torch.int32, device=dev),
            torch.zeros(batch, max_nodes, dtype=torch.int32, device=dev),
            torch.zeros(batch, max_edges, dtype=torch.int32, device=dev),
            torch.zeros(batch, max_edges, dtype=torch.int32, device=dev),
            torch.zeros(batch, max_edges, dtype=torch.float32, device=dev),
            num_outputs=num_outputs,
        )

    @classmethod
    def initial(
        cls,
        batch: int,
        num_outputs: int = 1,
        *,
        seed: int = 0,
        max_nodes: int = DEFAULT_MAX_NODES,
        max_edges: int = DEFAULT_MAX_EDGES,
        weight_range: tuple[float, float] = DEFAULT_WEIGHT_RANGE,
        activations: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
    ) -> CPPNPopulation:
        """The paper's starting population: every input wired straight to every output, no hidden nodes,
        weights uniform in `weight_range`, each output's activation drawn uniformly from `activations`
        (default: all). Reproducible from `seed` on every device (drawn on the CPU, then moved)."""
        lo, hi = float(weight_range[0]), float(weight_range[1])
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"weight_range must be finite with low < high, got {weight_range}")
        act_ids = activation_ids(activations)
        pop = cls.empty(batch, num_outputs, max_nodes=max_nodes, max_edges=max_edges, device="cpu")
        gen = torch.Generator().manual_seed(int(seed))
        o = pop.num_outputs
        n_edges = NUM_INPUTS * o
        src = torch.arange(NUM_INPUTS, dtype=torch.int32).repeat(o)
        dst = torch.arange(NUM_INPUTS, NUM_INPUTS + o, dtype=torch.int32).repeat_interleave(NUM_INPUTS)
        pop.edge_src[:, :n_edges] = src
        pop.edge_dst[:, :n_edges] = dst
        pop.num_edges.fill_(n_edges)
        u = torch.rand(batch, n_edges, generator=gen, dtype=torch.float64)
        pop.edge_weight[:, :n_edges] = (lo + (hi - lo) * u).to(torch.float32)
        choice = torch.randint(len(act_ids), (batch, o), generator=gen)
        pop.node_activation[:, NUM_INPUTS : NUM_INPUTS + o] = torch.tensor(act_ids, dtype=torch.int32)[choice]
        return pop.to(device)

    @classmethod
    def from_genomes(
        cls,
        genomes: Iterable[dict[str, Any] | str],
        *,
        max_nodes: int | None = None,
        max_edges: int | None = None,
        device: str | torch.device = "cpu",
    ) -> CPPNPopulation:
        """Build a population from genome descriptions: dicts as returned by :meth:`genome` or texts as
        returned by :meth:`describe`. Capacities default to the largest genome (and at least the defaults)."""
        parsed = [parse_genome(g) if isinstance(g, str) else g for g in genomes]
        if not parsed:
            raise ValueError("from_genomes needs at least one genome")
        outs = {int(g["num_outputs"]) for g in parsed}
        if len(outs) != 1:
            raise ValueError(f"all genomes must have the same number of outputs, got {sorted(outs)}")
        num_outputs = _check_num_outputs(outs.pop())
        need_nodes = max(len(g["activations"]) for g in parsed)
        need_edges = max(len(g["edges"]) for g in parsed)
        max_nodes = max(need_nodes, DEFAULT_MAX_NODES) if max_nodes is None else max_nodes
        max_edges = max(need_edges, DEFAULT_MAX_EDGES) if max_edges is None else max_edges
        pop = cls.empty(len(parsed), num_outputs, max_nodes=max_nodes, max_edges=max_edges, device="cpu")
        for b, g in enumerate(parsed):
            acts = [_activation_id(a, b) for a in g["activations"]]
            if len(acts) > max_nodes:
                raise GenomeError(b, "num_nodes", f"{len(acts)} nodes exceed max_nodes = {max_nodes}")
            if len(g["edges"]) > max_edges:
                raise GenomeError(b, "num_edges", f"{len(g['edges'])} edges exceed max_edges = {max_edges}")
            pop.num_nodes[b] = len(acts)
            pop.node_activation[b, : len(acts)] = torch.tensor(acts, dtype=torch.int32)
            pop.num_edges[b] = len(g["edges"])
            for e, (s, d, w) in enumerate(g["edges"]):
                pop.edge_src[b, e] = int(s)
                pop.edge_dst[b, e] = int(d)
                pop.edge_weight[b, e] = float(w)
        pop.validate()
        return pop.to(device)

    # ----------------------------------------------------------------------------------------------
    # Shape
    @property
    def max_nodes(self) -> int:
        return self._layout["node_activation"][1][1]

    @property
    def max_edges(self) -> int:
        return self._layout["edge_src"][1][1]

    @property
    def channels(self) -> int:
        """Image channels this population renders (1 greyscale, 3 colour)."""
        return self.num_outputs

    def num_hidden(self) -> torch.Tensor:
        """Hidden nodes per genome."""
        return self.num_nodes - (NUM_INPUTS + self.num_outputs)

    # ----------------------------------------------------------------------------------------------
    # Validation
    def core_view(self) -> _core.CppnBatchView:
        """The non-owning view the core reads (pointers into this population's tensors), after checking
        every tensor against the population's shapes."""
        self.check_tensors()
        return _core.CppnBatchView(
            self.batch,
            self.max_nodes,
            self.max_edges,
            self.num_outputs,
            self.num_nodes.data_ptr(),
            self.num_edges.data_ptr(),
            self.node_activation.data_ptr(),
            self.edge_src.data_ptr(),
            self.edge_dst.data_ptr(),
            self.edge_weight.data_ptr(),
        )

    def errors(self) -> torch.Tensor:
        """int32 [B, 3] (code, index, value) per genome; code 0 means valid."""
        host = self.to("cpu")
        errors = torch.zeros(self.batch, 3, dtype=torch.int32)
        _core.validate_cpu(host.core_view(), errors.data_ptr())
        return errors

    def validate(self) -> CPPNPopulation:
        """Raise GenomeError for the first invalid genome; return self when all are valid."""
        raise_first_error(self.errors(), self)
        return self

    # ----------------------------------------------------------------------------------------------
    # Readable form
    def genome(self, i: int) -> dict[str, Any]:
        """Genome i as a plain dict: num_outputs, activations (names, one per node; inputs "input"), edges
        as [src, dst, weight] in storage order. JSON-serialisable; from_genomes builds it back."""
        if not -self.batch <= i < self.batch:
            raise IndexError(f"genome {i} out of range for a population of {self.batch}")
        i %= self.batch
        n = int(self.num_nodes[i])
        m = int(self.num_edges[i])
        if not NUM_INPUTS + self.num_outputs <= n <= self.max_nodes or not 0 <= m <= self.max_edges:
            raise_first_error(self[i].errors(), self[i], offset=i)
        acts = self.node_activation[i, :n].tolist()
        names = ["input"] * NUM_INPUTS + [
            ACTIVATIONS[a] if 0 <= a < len(ACTIVATIONS) else int(a) for a in acts[NUM_INPUTS:]
        ]
        edges = [
            [int(s), int(d), float(w)]
            for s, d, w in zip(
                self.edge_src[i, :m].tolist(), self.edge_dst[i, :m].tolist(), self.edge_weight[i, :m].tolist()
            )
        ]
        return {"num_outputs": self.num_outputs, "activations": names, "edges": edges}

    def describe(self, i: int) -> str:
        """Genome i as readable text; :func:`~fooling_ext.core.cppn_text.parse_genome` and
        :meth:`from_genomes` read it back."""
        return format_genome(self.genome(i))

    # ----------------------------------------------------------------------------------------------
    # Files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save as a NumPy .npz (see docs/file-formats.md): the six arrays, plus format name, version and
        num_outputs. Written atomically (temporary file, then rename)."""
        meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "num_outputs": self.num_outputs}
        return write_npz(path, meta, {f: t.numpy() for f, t in self.to("cpu").tensors().items()})

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, device: str | torch.device = "cpu", validate: bool = True
    ) -> CPPNPopulation:
        """Load a population written by :meth:`save`; checks the format and (by default) every genome."""
        meta, arrays = read_npz(
            path, cls.FIELDS, what="CPPN population file", format_name=FORMAT_NAME, version=FORMAT_VERSION
        )
        tensors = {}
        for f, a in arrays.items():
            want = np.float32 if f == "edge_weight" else np.int32
            if a.dtype != want:
                raise ValueError(f"{path}: field {f} has dtype {a.dtype}, expected {np.dtype(want)}")
            tensors[f] = torch.from_numpy(np.ascontiguousarray(a))
        pop = cls(**tensors, num_outputs=int(meta["num_outputs"]))
        if validate:
            pop.validate()
        return pop.to(device)


def activation_ids(names: Sequence[str] | None) -> list[int]:
    """Ids of the named activations (all when None); unknown names are a ValueError."""
    if names is None:
        return list(range(len(ACTIVATIONS)))
    ids = []
    for n in names:
        if n not in ACTIVATION_IDS:
            raise ValueError(f"unknown activation {n!r}; known: {', '.join(ACTIVATIONS)}")
        ids.append(ACTIVATION_IDS[n])
    if not ids:
        raise ValueError("at least one activation is needed")
    return ids


def _activation_id(a: str | int, genome: int) -> int:
    if a == "input":
        return 0
    if isinstance(a, str):
        if a not in ACTIVATION_IDS:
            raise GenomeError(genome, "node_activation", f"unknown activation {a!r}; known: {', '.join(ACTIVATIONS)}")
        return ACTIVATION_IDS[a]
    return int(a)


def raise_first_error(errors: torch.Tensor, pop: CPPNPopulation, offset: int = 0) -> None:
    """Raise GenomeError for the first non-zero row of a core error array (on any device), if any."""
    bad = torch.nonzero(errors[:, 0] != 0)
    if bad.numel() == 0:
        return
    b = int(bad[0, 0])
    code, index, value = (int(v) for v in errors[b].tolist())
    field, template = _ERROR_TEXT.get(code, ("genome", "unknown error code {code}"))
    message = template.format(
        code=code,
        index=index,
        value=value,
        min_nodes=NUM_INPUTS + pop.num_outputs,
        max_nodes=pop.max_nodes,
        max_edges=pop.max_edges,
        last_act=len(ACTIVATIONS) - 1,
    )
    more = bad.shape[0] - 1
    if more:
        message += f" ({more} more invalid genome{'s' if more > 1 else ''})"
    raise GenomeError(b + offset, field, message, index, value)
