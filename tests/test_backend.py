"""The one place that resolves devices and routes kernels, the one seed derivation, and what both kinds of
population share through their base class."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fooling_ext.core import CPPNPopulation, DirectPopulation, Population, select_parents
from fooling_ext.core.backend import BACKENDS, cuda_available, launch, resolve_backend, resolve_device
from fooling_ext.core.seeds import INITIAL_POPULATION, PARENT_DRAWS, derive_seed, seeded_rng


def test_auto_means_the_same_for_every_caller(monkeypatch):
    monkeypatch.delenv("FOOLING_BACKEND", raising=False)
    want = "cuda" if cuda_available() else "cpu"
    assert resolve_backend("auto") == want
    assert resolve_device("auto").type == want
    assert resolve_device("auto", core=False).type == want
    assert CPPNPopulation.empty(2, device="auto").device.type == want
    for name in ("cpu", "cuda"):
        monkeypatch.setenv("FOOLING_BACKEND", name)
        if name == "cuda" and not cuda_available():
            with pytest.raises(ValueError, match="the CUDA backend was requested but cannot be used"):
                resolve_device("auto")
        else:
            assert resolve_device("auto").type == name


def test_backend_names_are_checked():
    assert BACKENDS == ("cpu", "cuda", "auto")
    with pytest.raises(ValueError, match=r"backend must be one of \('cpu', 'cuda', 'auto'\), got 'gpu'"):
        resolve_backend("gpu")


@pytest.mark.skipif(cuda_available(), reason="checks the error where the CUDA backend cannot be used")
def test_a_kernel_sent_to_cuda_without_the_cuda_backend_says_why():
    genes = torch.empty(2, 4)
    with pytest.raises(ValueError, match="the CUDA backend was requested but cannot be used"):
        launch("init_pixels", torch.device("cuda", 0), genes.data_ptr(), 2, 4, 0, 0)
    with pytest.raises(ValueError, match="the CUDA backend was requested but cannot be used"):
        DirectPopulation.initial(2, 1, 2, 2, device="cuda")


def test_a_kernel_on_a_device_no_backend_owns_is_refused():
    with pytest.raises(ValueError, match="no backend runs init_pixels on device meta"):
        launch("init_pixels", torch.device("meta"), 0, 0, 0, 0, 0)


def test_launch_calls_the_cpu_kernel_with_the_shared_arguments():
    genes = torch.empty(3, 5)
    assert launch("init_pixels", torch.device("cpu"), genes.data_ptr(), 3, 5, 11, 0) is None
    assert torch.equal(genes.view(3, 1, 1, 5), DirectPopulation.initial(3, 1, 1, 5, seed=11).genes)


def test_derived_seeds_are_those_runs_have_always_used():
    # The formula of the recorded runs (tests/test_golden_runs.py): SeedSequence of the words, top 63 bits.
    state = np.random.SeedSequence([5, 3, INITIAL_POPULATION]).generate_state(1, dtype=np.uint64)[0]
    assert derive_seed(5, 3, INITIAL_POPULATION) == int(state >> 1)
    draws = [derive_seed(seed, g, INITIAL_POPULATION) for seed in range(4) for g in range(50)]
    assert len(set(draws)) == len(draws) and max(draws) < 2**63
    assert derive_seed(1, 2, INITIAL_POPULATION) != derive_seed(1, 2, PARENT_DRAWS)
    a, b = seeded_rng(1, 2, PARENT_DRAWS), np.random.default_rng([1, 2, PARENT_DRAWS])
    assert np.array_equal(a.integers(0, 1000, 20), b.integers(0, 1000, 20))


@pytest.fixture(params=["cppn", "direct"])
def population(request) -> Population:
    if request.param == "cppn":
        return CPPNPopulation.initial(6, 3, seed=2)
    return DirectPopulation.initial(6, 2, 3, 4, seed=2)


def test_both_populations_select_slice_and_concatenate_alike(population):
    picked = population.select([4, 0, 4])
    again = select_parents(population, torch.tensor([4, 0, 4]))
    for name, tensor in population.tensors().items():
        assert torch.equal(picked.tensors()[name], tensor[[4, 0, 4]])
        assert torch.equal(again.tensors()[name], tensor[[4, 0, 4]])
        assert torch.equal(population[1:3].tensors()[name], tensor[1:3])
        assert torch.equal(population[-1].tensors()[name], tensor[5:6])
    joined = type(population).concat([population[:2], population[2:]])
    assert all(torch.equal(joined.tensors()[n], t) for n, t in population.tensors().items())
    assert repr(population).startswith(f"{type(population).__name__}(batch=6, ")
    clone = population.clone()
    next(iter(clone.tensors().values())).zero_()
    assert not torch.equal(next(iter(clone.tensors().values())), next(iter(population.tensors().values())))
    with pytest.raises(IndexError, match="genome 6 out of range for a population of 6"):
        population[6]


def test_populations_of_different_settings_do_not_mix():
    with pytest.raises(ValueError, match="must share kind, settings and device"):
        DirectPopulation.concat([DirectPopulation.initial(1, 1, 2, 2), DirectPopulation.initial(1, 1, 2, 3)])
    with pytest.raises(ValueError, match="must share kind, settings and device"):
        CPPNPopulation.concat([CPPNPopulation.initial(1, 1), CPPNPopulation.initial(1, 3)])
    with pytest.raises(ValueError, match="out must be a DirectPopulation, got CPPNPopulation"):
        DirectPopulation.initial(2, 1, 2, 2).select([0], out=CPPNPopulation.initial(1))
    with pytest.raises(ValueError, match="select_parents needs a population"):
        select_parents(torch.zeros(3), [0])
