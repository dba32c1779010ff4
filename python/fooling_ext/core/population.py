"""What every population of genomes shares, whatever its encoding: a batch of B genomes held as a few
contiguous tensors on one torch device, which both backends read and write in place.

Subclasses (:class:`~fooling_ext.core.cppn.CPPNPopulation`, :class:`~fooling_ext.core.direct.DirectPopulation`)
say which tensors they hold, how to check them and how the core copies genomes by index; moving, cloning,
selecting, slicing and concatenating work the same for both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import torch

from fooling_ext.core.backend import resolve_device
from fooling_ext.core.checks import check_tensor, index_tensor

P = TypeVar("P", bound="Population")


class Population:
    """B genomes as tensors with a leading batch axis, on one device."""

    #: names of the tensors that hold the genomes, in storage order
    FIELDS: tuple[str, ...] = ()

    # -------------------------------------------------------------------------------------------------
    # What a subclass provides
    def _with_tensors(self: P, tensors: Mapping[str, torch.Tensor]) -> P:
        """A population of the same kind and settings holding `tensors`."""
        raise NotImplementedError

    def _check_new_tensors(self) -> None:
        """Check that the tensors given to the constructor agree with each other (dtype, shapes, device)."""
        raise NotImplementedError

    def _fix_layout(self) -> None:
        """Check the constructor's tensors, then record dtype, shape and device of every field: from then on
        the population's batch, capacity and device are these, whatever a field is later replaced by."""
        self._check_new_tensors()
        self._layout = {f: (t.dtype, tuple(t.shape), t.device) for f, t in self.tensors().items()}

    def check_tensors(self) -> None:
        """Check every field against the layout fixed at construction (dtype, shape, device, contiguity):
        a field replaced by a tensor of another kind is a ValueError naming it, before any pointer reaches the
        core, which trusts nothing else."""
        for f, (dtype, shape, device) in self._layout.items():
            check_tensor(getattr(self, f), f, dtype, shape, device)

    def _empty(self: P, batch: int) -> P:
        """An uninitialised population of `batch` genomes with this one's settings, on its device."""
        return self._with_tensors(
            {
                f: torch.empty((batch, *shape[1:]), dtype=dtype, device=device)
                for f, (dtype, shape, device) in self._layout.items()
            }
        )

    def _launch_select(self: P, index: torch.Tensor, out: P, read_flag: bool) -> int:
        """Copy genome index[i] into out's genome i on the core; return the first out-of-range position."""
        raise NotImplementedError

    # -------------------------------------------------------------------------------------------------
    # Shared
    def tensors(self) -> dict[str, torch.Tensor]:
        return {f: getattr(self, f) for f in self.FIELDS}

    @property
    def batch(self) -> int:
        return self._layout[self.FIELDS[0]][1][0]

    def __len__(self) -> int:
        return self.batch

    @property
    def device(self) -> torch.device:
        return self._layout[self.FIELDS[0]][2]

    def to(self: P, device: str | torch.device) -> P:
        dev = resolve_device(device)
        self.check_tensors()
        if dev == self.device:
            return self
        return self._with_tensors({f: t.to(dev).contiguous() for f, t in self.tensors().items()})

    def clone(self: P) -> P:
        self.check_tensors()
        return self._with_tensors({f: t.clone() for f, t in self.tensors().items()})

    def select(self: P, index: torch.Tensor | Sequence[int], *, out: P | None = None, check: bool = True) -> P:
        """The population made of the genomes at `index` (int64, on this device; in that order, repeats
        allowed), copied by the core on this population's backend (on CUDA, on the current stream).

        `out`: a population of the same kind, settings and device with len(index) genomes to write into.
        Indices are range-checked by the core itself (on CUDA, inside the kernel, into a device flag): a
        genome whose index is out of range is written as a bare genome (CPPN: inputs and outputs, no edges)
        or zeros (direct); with `check` the first such index raises ValueError (on CUDA this reads the flag
        back, which waits for the copy).
        """
        idx = index_tensor(index, self.device)
        self.check_tensors()
        if out is None:
            out = self._empty(idx.shape[0])
        else:
            self._check_out(out, idx.shape[0])
        first_bad = self._launch_select(idx, out, check)
        if check and first_bad >= 0:
            raise ValueError(
                f"index[{first_bad}] = {int(idx[first_bad])} is out of range for a population of {self.batch}"
            )
        return out

    def _check_out(self, out: Any, count: int) -> None:
        if type(out) is not type(self):
            raise ValueError(f"out must be a {type(self).__name__}, got {type(out).__name__}")
        want = self.describe_shape(count)
        if out.describe_shape(out.batch) != want:
            raise ValueError(f"out must be a {want}, got a {out.describe_shape(out.batch)}")
        out.check_tensors()
        if out.device != self.device:
            raise ValueError(f"out is on {out.device}, expected {self.device}")

    def describe_shape(self, batch: int) -> str:
        """The population's kind and settings with `batch` genomes, for messages and comparisons."""
        settings = ", ".join(f"{k}={v}" for k, v in self.settings().items())
        return f"{type(self).__name__}(batch={batch}, {settings})"

    def settings(self) -> dict[str, Any]:
        """What, besides the batch size, fixes the shape of the tensors (for __repr__ and checks)."""
        raise NotImplementedError

    def __getitem__(self: P, index: int | slice | Sequence[int] | torch.Tensor) -> P:
        if isinstance(index, int):
            if not -self.batch <= index < self.batch:
                raise IndexError(f"genome {index} out of range for a population of {self.batch}")
            index = [index % self.batch]
        elif isinstance(index, slice):
            index = list(range(self.batch))[index]
        return self.select(index)

    @classmethod
    def concat(cls: type[P], pops: Sequence[P]) -> P:
        """One population of the genomes of `pops`, in order; they must share kind, settings and device."""
        if not pops:
            raise ValueError("concat needs at least one population")
        first = pops[0]
        for p in pops[1:]:
            if type(p) is not type(first) or p.settings() != first.settings() or p.device != first.device:
                raise ValueError("populations to concatenate must share kind, settings and device")
        for p in pops:
            p.check_tensors()
        return first._with_tensors({f: torch.cat([getattr(p, f) for p in pops]).contiguous() for f in cls.FIELDS})

    def __repr__(self) -> str:
        return self.describe_shape(self.batch)[:-1] + f", device={self.device})"


def select_parents(pop: P, index: torch.Tensor | Sequence[int], *, out: P | None = None, check: bool = True) -> P:
    """The child population: child i is a copy of genome index[i] of `pop`; see :meth:`Population.select`."""
    if not isinstance(pop, Population):
        raise ValueError(f"select_parents needs a population (CPPN or direct), got {type(pop).__name__}")
    return pop.select(index, out=out, check=check)
