"""Pixel genomes: the starting population, polynomial mutation and SBX against the NumPy reference, their
rates and distributions, selection, files, and clear errors for bad input.

Statistical tests use a fixed seed and a tolerance of 5 standard deviations of the statistic under the
intended distribution; each says which wrong setting it would catch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_mutation import deb_cdf, five_sigma, ks_statistic, ks_threshold

from fooling_ext.core.direct import FORMAT_NAME, DirectPopulation
from fooling_ext.core.mutation import DirectMutation, halving_rate, mutate_direct
from fooling_ext.core.population import select_parents
from fooling_ext.core.reference import mutation as ref


def test_initial_population_is_uniform_and_matches_reference():
    pop = DirectPopulation.initial(6, 3, 32, 48, seed=17)
    assert pop.genes.shape == (6, 3, 32, 48) and pop.genes.dtype == torch.float32
    assert (pop.batch, pop.channels, pop.height, pop.width, pop.genes_per_genome) == (6, 3, 32, 48, 3 * 32 * 48)
    np.testing.assert_array_equal(pop.genes.numpy(), ref.init_direct(6, 3, 32, 48, seed=17))
    assert torch.equal(pop.genes, DirectPopulation.initial(6, 3, 32, 48, seed=17).genes)
    assert not torch.equal(pop.genes, DirectPopulation.initial(6, 3, 32, 48, seed=18).genes)
    genes = pop.genes.reshape(-1).double().numpy()
    assert genes.min() >= 0.0 and genes.max() < 1.0
    assert ks_statistic(genes, lambda x: np.clip(x, 0.0, 1.0)) < ks_threshold(genes.size)
    assert pop.images() is pop.genes


@pytest.mark.parametrize("crossover", [False, True])
@pytest.mark.parametrize("shape", [(5, 1, 3, 3), (8, 3, 17, 23), (1, 3, 1, 1)])
def test_mutation_matches_numpy_reference(shape, crossover):
    pop = DirectPopulation.initial(*shape, seed=2)
    params = DirectMutation(rate=0.3, crossover=crossover, crossover_rate=0.7, eta=5.0, eta_c=3.0)
    for generation in range(3):
        want = ref.mutate_direct(pop.genes.numpy(), seed=99, generation=generation, params=params, genome_offset=10)
        mutate_direct(pop, seed=99, generation=generation, params=params, genome_offset=10)
        np.testing.assert_array_equal(pop.genes.numpy(), want)
    assert float(pop.genes.min()) >= 0.0 and float(pop.genes.max()) <= 1.0


def test_mutation_is_reproducible_and_chunks_compose():
    start = DirectPopulation.initial(10, 3, 8, 8, seed=1)
    a, b, c = start.clone(), start.clone(), start.clone()
    mutate_direct(a, seed=4, generation=7)
    mutate_direct(b, seed=4, generation=7)
    mutate_direct(c, seed=4, generation=8)
    assert torch.equal(a.genes, b.genes) and not torch.equal(a.genes, c.genes)
    first, second = DirectPopulation(start.genes[:6].clone()), DirectPopulation(start.genes[6:].clone())
    mutate_direct(first, seed=4, generation=7)
    mutate_direct(second, seed=4, generation=7, genome_offset=6)
    assert torch.equal(torch.cat([first.genes, second.genes]), a.genes)


def test_per_gene_rate_and_rate_override():
    pop = DirectPopulation.initial(16, 3, 64, 64, seed=3)
    n = pop.genes.numel()
    for rate, generation in ((None, 0), (0.05, 1), (halving_rate(0.1, 2000), 2)):
        before = pop.genes.clone()
        mutate_direct(pop, seed=5, generation=generation, rate=rate)
        observed = float((pop.genes != before).double().mean())
        want = 0.1 if rate is None else rate
        # 196,608 genes: 5 sigma <= 0.0034, so a rate of 0.09 instead of 0.1 (or 0.05 instead of 0.025) fails.
        assert abs(observed - want) < five_sigma(want, n), (rate, observed)
    before = pop.genes.clone()
    mutate_direct(pop, seed=5, generation=3, rate=0.0)
    assert torch.equal(pop.genes, before)


def test_polynomial_perturbation_follows_debs_distribution():
    pop = DirectPopulation(torch.full((4, 1, 160, 160), 0.5))
    mutate_direct(pop, seed=6, generation=0, rate=1.0)
    delta = pop.genes.reshape(-1).double().numpy() - 0.5
    n = delta.size
    assert ks_statistic(delta, lambda d: deb_cdf(d, 15.0)) < ks_threshold(n)
    assert ks_statistic(delta, lambda d: deb_cdf(d, 20.0)) > 3 * ks_threshold(n)
    # With eta = 3 a sixteenth of the genes would leave [0, 1] and are clipped to the bound; the rest follow
    # Deb's distribution restricted to (-1/2, 1/2).
    pop = DirectPopulation(torch.full((4, 1, 160, 160), 0.5))
    mutate_direct(pop, seed=6, generation=0, params=DirectMutation(rate=1.0, eta=3.0))
    delta = pop.genes.reshape(-1).double().numpy() - 0.5
    inside = np.abs(delta) < 0.5
    assert abs(float((~inside).mean()) - 1 / 16) < five_sigma(1 / 16, n)
    lo, hi = deb_cdf(-0.5, 3.0), deb_cdf(0.5, 3.0)
    assert ks_statistic(delta[inside], lambda d: (deb_cdf(d, 3.0) - lo) / (hi - lo)) < ks_threshold(int(inside.sum()))


def test_crossover_rates():
    # Mutation off, so every change comes from SBX. Pairs of distinct parents: a crossing pair changes some
    # of its 48 genes with probability 1 - 2^-48.
    pop = DirectPopulation.initial(40_000, 3, 4, 4, seed=8)
    before = pop.genes.clone()
    mutate_direct(pop, seed=9, generation=0, params=DirectMutation(rate=0.0, crossover=True, crossover_rate=0.5))
    changed = (pop.genes != before).reshape(20_000, 2, -1)
    crossed = changed.any(dim=2).any(dim=1)
    # 20,000 pairs: 5 sigma = 0.018, so a crossover rate of 0.45 or 0.55 would fail.
    assert abs(float(crossed.double().mean()) - 0.5) < five_sigma(0.5, 20_000)
    # Within crossing pairs every gene crosses, as in the original's SBX, changing both children at once (a
    # gene crossed with probability 1/2 would leave half of them alone).
    genes = changed[crossed]
    assert float((genes[:, 0] != genes[:, 1]).double().mean()) < 1e-4
    assert float(genes[:, 0].double().mean()) > 0.999
    # Crossover is off by default, as in the paper.
    pop = DirectPopulation(before.clone())
    mutate_direct(pop, seed=9, generation=0, params=DirectMutation(rate=0.0))
    assert torch.equal(pop.genes, before)


def test_sbx_keeps_genes_in_range_and_spreads_around_the_parents():
    parents = torch.tensor([0.2, 0.6]).repeat_interleave(3 * 50 * 50).reshape(2, 3, 50, 50)
    pop = DirectPopulation(parents.repeat(100, 1, 1, 1).contiguous())
    params = DirectMutation(rate=0.0, crossover=True, crossover_rate=1.0)
    mutate_direct(pop, seed=10, generation=0, params=params)
    a, b = pop.genes[0::2].reshape(-1), pop.genes[1::2].reshape(-1)
    crossed = (a != 0.2) | (b != 0.6)
    lo, hi = torch.minimum(a, b)[crossed], torch.maximum(a, b)[crossed]
    assert lo.min() >= 0.0 and hi.max() <= 1.0
    # With eta_c = 10 the offspring stay close to the parents (median spread factor 1), each child taking
    # the lower offspring half of the time.
    assert abs(float(lo.median()) - 0.2) < 0.01 and abs(float(hi.median()) - 0.6) < 0.01
    assert abs(float((a[crossed] < b[crossed]).double().mean()) - 0.5) < five_sigma(0.5, int(crossed.sum()))


def test_select_copies_rows_and_checks_indices():
    pop = DirectPopulation.initial(5, 3, 6, 7, seed=1)
    idx = torch.tensor([4, 4, 0, 2], dtype=torch.int64)
    kids = pop.select(idx)
    assert torch.equal(kids.genes, pop.genes.index_select(0, idx))
    out = DirectPopulation(torch.empty(2, 3, 6, 7))
    assert select_parents(pop, [1, 3], out=out) is out and torch.equal(out.genes, pop.genes[[1, 3]])
    with pytest.raises(ValueError, match=r"index\[1\] = 5 is out of range for a population of 5"):
        pop.select([0, 5])
    assert torch.equal(pop.select([0, 5], check=False).genes[1], torch.zeros(3, 6, 7))
    with pytest.raises(ValueError, match=r"out must be a DirectPopulation\(batch=1"):
        select_parents(pop, [1], out=out)


def test_save_and_load(tmp_path):
    pop = DirectPopulation.initial(3, 1, 5, 4, seed=2)
    path = pop.save(tmp_path / "pixels.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["pixels.npz"]
    back = DirectPopulation.load(path)
    assert torch.equal(back.genes, pop.genes)
    with pytest.raises(FileNotFoundError):
        DirectPopulation.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable direct population"):
        DirectPopulation.load(tmp_path / "junk.npz")
    meta = np.frombuffer(b'{"format": "something.else", "version": 1}', dtype=np.uint8)
    np.savez(tmp_path / "other.npz", meta=meta, genes=pop.genes.numpy())
    with pytest.raises(ValueError, match="not a direct population file"):
        DirectPopulation.load(tmp_path / "other.npz")
    meta = np.frombuffer(json.dumps({"format": FORMAT_NAME, "version": 1}).encode(), dtype=np.uint8)
    np.savez(tmp_path / "range.npz", meta=meta, genes=pop.genes.numpy() + 1.0)
    with pytest.raises(ValueError, match=r"genes must be finite and lie in \[0, 1\]"):
        DirectPopulation.load(tmp_path / "range.npz")


@pytest.mark.parametrize(
    "field, value",
    [
        ("rate", 1.5),
        ("rate", -0.1),
        ("rate", float("nan")),
        ("eta", 0.0),
        ("eta", -1.0),
        ("crossover_rate", 2.0),
        ("eta_c", 0.0),
        ("eta_c", float("inf")),
        ("crossover", "yes"),
        ("rate", "0.1"),
    ],
)
def test_bad_pixel_parameters_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        DirectMutation(**{field: value})


def test_bad_pixel_calls_are_value_errors():
    pop = DirectPopulation.initial(2, 1, 4, 4)
    with pytest.raises(ValueError, match="rate must be a probability"):
        mutate_direct(pop, seed=0, generation=0, rate=1.5)
    with pytest.raises(ValueError, match="seed"):
        mutate_direct(pop, seed=-1, generation=0)
    with pytest.raises(ValueError, match="generation"):
        mutate_direct(pop, seed=0, generation=2**32)
    with pytest.raises(ValueError, match="needs a DirectPopulation"):
        mutate_direct(pop.genes, seed=0, generation=0)
    with pytest.raises(ValueError, match="params must be a DirectMutation"):
        mutate_direct(pop, seed=0, generation=0, params={"rate": 0.1})
    pop.genes = pop.genes.transpose(2, 3)
    with pytest.raises(ValueError, match="genes must be contiguous"):
        mutate_direct(pop, seed=0, generation=0)
    with pytest.raises(ValueError, match="genes must have dtype torch.float32"):
        DirectPopulation(torch.zeros(2, 1, 4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"genes must have shape \[\*, \*, \*, \*\]"):
        DirectPopulation(torch.zeros(2, 16))
    with pytest.raises(ValueError, match="C, H, W >= 1"):
        DirectPopulation(torch.zeros(2, 0, 4, 4))
    for args, match in [((2, 0, 4, 4), "channels"), ((-1, 1, 4, 4), "batch"), ((2, 1, 4, 2.5), "width")]:
        with pytest.raises(ValueError, match=match):
            DirectPopulation.initial(*args)
    with pytest.raises(ValueError, match="at most 2"):
        DirectPopulation.initial(1, 3, 2**15, 2**15)
