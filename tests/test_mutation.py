"""CPPN mutation and parent selection: exact agreement with the NumPy reference, the operators' rates, the
polynomial mutation's distribution, reproducibility, and clear errors for bad input.

Statistical tests use a fixed seed and a tolerance of 5 standard deviations of the statistic under the
intended distribution; each says which wrong setting it would catch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from genomes import random_population

from fooling_ext import _core
from fooling_ext.core.cppn import ACTIVATION_IDS, NUM_INPUTS, CPPNPopulation, GenomeError
from fooling_ext.core.mutation import CPPNMutation, halving_rate, mutate_cppn
from fooling_ext.core.population import select_parents
from fooling_ext.core.reference import mutation as ref

NO_OPERATORS = dict(
    p_weight=0.0, p_activation=0.0, p_add_edge=0.0, p_delete_edge=0.0, p_add_node=0.0, p_delete_node=0.0
)


def only(**kwargs) -> CPPNMutation:
    """Parameters with every operator off except those given."""
    return CPPNMutation(**{**NO_OPERATORS, **kwargs})


def live(pop: CPPNPopulation) -> list[tuple]:
    """The live part of each genome (padding carries no meaning)."""
    out = []
    for b in range(pop.batch):
        n, m = int(pop.num_nodes[b]), int(pop.num_edges[b])
        out.append(
            (
                pop.node_activation[b, NUM_INPUTS:n].tolist(),
                pop.edge_src[b, :m].tolist(),
                pop.edge_dst[b, :m].tolist(),
                pop.edge_weight[b, :m].numpy().tobytes(),
            )
        )
    return out


def repeat(genome: dict, count: int, **capacity) -> CPPNPopulation:
    """`count` copies of one genome."""
    one = CPPNPopulation.from_genomes([genome], **capacity)
    return select_parents(one, torch.zeros(count, dtype=torch.int64))


def five_sigma(p: float, n: int) -> float:
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


def deb_cdf(delta: np.ndarray, eta: float) -> np.ndarray:
    """CDF of Deb's polynomial perturbation: u = (1 + d)^(eta+1) / 2 below 0, 1 - (1 - d)^(eta+1) / 2 above."""
    d = np.clip(delta, -1.0, 1.0)
    return np.where(d < 0, 0.5 * (1.0 + d) ** (eta + 1.0), 1.0 - 0.5 * (1.0 - d) ** (eta + 1.0))


def ks_statistic(samples: np.ndarray, cdf) -> float:
    """One-sample Kolmogorov-Smirnov statistic."""
    x = np.sort(samples)
    f = cdf(x)
    n = len(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def ks_threshold(n: int, m: int | None = None) -> float:
    """D such that P(KS > D) is about 1e-6 (asymptotic Kolmogorov tail 2 exp(-2 n_eff D^2))."""
    n_eff = n if m is None else n * m / (n + m)
    return math.sqrt(math.log(2e6) / (2.0 * n_eff))


# --------------------------------------------------------------------------------------------------
# Philox and the reference


def test_reference_philox_matches_random123_known_answers():
    cases = [
        ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        (
            [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
            [0xA4093822, 0x299F31D0],
            [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
        ),
    ]
    for counter, key, want in cases:
        assert ref.philox4x32_10(counter, key).tolist() == want
        assert list(_core.philox4x32_10(counter, key)) == want


def test_core_philox_matches_reference_on_random_counters():
    rng = np.random.default_rng(0)
    counters = rng.integers(0, 2**32, size=(200, 4), dtype=np.uint64)
    keys = rng.integers(0, 2**32, size=(200, 2), dtype=np.uint64)
    want = ref.philox4x32_10(counters, keys)
    got = np.array([_core.philox4x32_10(c.tolist(), k.tolist()) for c, k in zip(counters, keys)], dtype=np.uint32)
    np.testing.assert_array_equal(got, want)


def test_reference_pow_is_accurate():
    x = np.linspace(1e-6, 2.0, 10001, dtype=np.float32)
    np.testing.assert_allclose(ref.pow(x, np.float32(1 / 16)), np.power(x.astype(np.float64), 1 / 16), rtol=1e-6)
    assert ref.pow(np.float32(0.0), np.float32(0.5))[0] == 0.0


# --------------------------------------------------------------------------------------------------
# Exact agreement with the reference


@pytest.mark.parametrize(
    "params",
    [
        CPPNMutation(),
        CPPNMutation(
            p_weight=0.8,
            p_activation=0.7,
            p_add_edge=1.0,
            p_delete_edge=0.6,
            p_add_node=0.9,
            p_delete_node=0.4,
            activations=("sine", "linear"),
            weight_min=-2.0,
            weight_max=3.0,
            eta=2.0,
            add_edge_attempts=3,
        ),
        CPPNMutation(add_edge="rejection"),
        CPPNMutation(
            p_add_edge=1.0,
            p_delete_edge=0.6,
            p_add_node=0.9,
            p_delete_node=0.4,
            add_edge="rejection",
            add_edge_attempts=3,
        ),
    ],
    ids=["paper", "aggressive", "paper-rejection", "aggressive-rejection"],
)
@pytest.mark.parametrize("num_outputs", [1, 3])
def test_cppn_mutation_matches_numpy_reference(params, num_outputs):
    # Capacities the aggressive settings reach within the 4 generations, so that blocked growth is compared too.
    pop = random_population(24, num_outputs, hidden=(0, 10), seed=num_outputs, max_nodes=20, max_edges=50)
    for generation in range(4):
        want_blocked: list = []
        want = ref.mutate_cppn(
            pop, seed=314, generation=generation, params=params, genome_offset=7, blocked=want_blocked
        )
        blocked = mutate_cppn(pop, seed=314, generation=generation, params=params, genome_offset=7)
        assert live(pop) == live(want), f"generation {generation}"
        assert blocked.tolist() == want_blocked, f"generation {generation}"
        pop.validate()


def test_blocked_flags_say_which_growth_capacity_stopped():
    # At capacity in edges (4 of 4) and nodes (5 of 5): add connection and add node always fire and are blocked.
    full = CPPNPopulation.initial(16, 1, seed=0, max_nodes=NUM_INPUTS + 1, max_edges=NUM_INPUTS)
    blocked = mutate_cppn(full, seed=1, generation=0, params=only(p_add_edge=1.0, p_add_node=1.0))
    assert blocked.dtype == torch.int32 and blocked.tolist() == [3] * 16
    assert int(full.num_edges.max()) == NUM_INPUTS
    # One free edge slot: add connection fills it, then add node finds the edges full.
    one = CPPNPopulation.initial(16, 1, seed=0, max_nodes=8, max_edges=NUM_INPUTS + 1)
    assert mutate_cppn(one, seed=1, generation=0, params=only(p_add_edge=1.0, p_add_node=1.0)).tolist() == [2] * 16
    # Room for both, or operators that did not fire: nothing blocked.
    roomy = CPPNPopulation.initial(16, 1, seed=0)
    assert mutate_cppn(roomy, seed=1, generation=0, params=only(p_add_edge=1.0, p_add_node=1.0)).tolist() == [0] * 16
    assert mutate_cppn(full, seed=1, generation=1, params=only(p_weight=1.0)).tolist() == [0] * 16


def test_original_add_connection_targets_uniformly_among_non_ancestors():
    # Inputs -> 5 -> 6 -> out 4; hidden 7 fed by input 0. Source 6 may only target 4 or 7; across all 7
    # sources the (source, target) pairs are uniform over each source's candidates (C++ tests the full
    # chi-square; this checks the Python path and the reference agree on it).
    genome = _hidden_genome(3, [[i, 5, 1.0] for i in range(NUM_INPUTS)] + [[5, 6, 1.0], [6, 4, 1.0], [0, 7, 1.0]])
    pop = repeat(genome, 2000)
    mutate_cppn(pop, seed=3, generation=0, params=only(p_add_edge=1.0))
    added = {(int(pop.edge_src[b, 7]), int(pop.edge_dst[b, 7])) for b in range(pop.batch)}
    allowed = {(s, d) for s in range(NUM_INPUTS) for d in (4, 5, 6, 7)} | {
        (5, 4),
        (5, 6),
        (5, 7),
        (6, 4),
        (6, 7),
        (7, 4),
        (7, 5),
        (7, 6),
    }
    assert added == allowed  # every candidate pair occurs, and no other
    assert int(pop.num_edges.min()) == 8
    ref_pop = ref.mutate_cppn(repeat(genome, 50), seed=3, generation=0, params=only(p_add_edge=1.0))
    assert live(ref_pop) == live(pop[:50])


def test_mutation_is_reproducible_and_keyed_by_seed_generation_and_genome():
    start = random_population(32, 3, hidden=(2, 10), seed=4)
    runs = {}
    for key in [(1, 0), (1, 0), (2, 0), (1, 1)]:
        pop = start.clone()
        mutate_cppn(pop, seed=key[0], generation=key[1])
        runs.setdefault(key, []).append(live(pop))
    assert runs[(1, 0)][0] == runs[(1, 0)][1]
    assert runs[(1, 0)][0] != runs[(2, 0)][0]
    assert runs[(1, 0)][0] != runs[(1, 1)][0]
    # Mutating in two chunks with genome offsets gives the same children as one call.
    whole, first, second = start.clone(), start[:20], start[20:]
    mutate_cppn(whole, seed=5, generation=3)
    mutate_cppn(second, seed=5, generation=3, genome_offset=20)
    mutate_cppn(first, seed=5, generation=3)
    assert live(whole) == live(first) + live(second)
    # Identical parents in different child slots get different mutations.
    twins = repeat(start.genome(0), 8)
    mutate_cppn(twins, seed=5, generation=0, params=CPPNMutation(p_weight=0.5))
    assert len({w for *_, w in live(twins)}) == 8


def test_mutated_populations_stay_valid_over_many_generations():
    pop = CPPNPopulation.initial(64, 3, seed=0, max_nodes=20, max_edges=40)
    params = CPPNMutation(p_add_edge=0.9, p_add_node=0.9)
    for generation in range(150):
        mutate_cppn(pop, seed=8, generation=generation, params=params)
        pop.validate()
    assert int(pop.num_nodes.max()) == 20 and int(pop.num_edges.max()) == 40  # capacity reached and held
    assert float(pop.edge_weight.abs().max()) <= 10.0


# --------------------------------------------------------------------------------------------------
# Operator rates


def _hidden_genome(hidden: int, edges: list, outputs: int = 1, act: str = "sigmoid") -> dict:
    acts = ["input"] * NUM_INPUTS + [act] * (outputs + hidden)
    return {"num_outputs": outputs, "activations": acts, "edges": edges}


def test_weight_mutation_rate():
    # 20 edges with distinct weights inside the range: a weight changes exactly when it is mutated.
    edges = [[i % NUM_INPUTS, NUM_INPUTS + 1 + i, float(i) / 4 - 2.5] for i in range(20)]
    pop = repeat(_hidden_genome(20, edges), 5000)
    before = pop.edge_weight[:, :20].clone()
    mutate_cppn(pop, seed=11, generation=0, params=only(p_weight=0.1))
    rate = float((pop.edge_weight[:, :20] != before).double().mean())
    # 100,000 weights: 5 sigma = 0.0047, so a rate of 0.09 or 0.11 would fail.
    assert abs(rate - 0.1) < five_sigma(0.1, 100_000)


def test_activation_mutation_rate_and_choice():
    pop = repeat(_hidden_genome(12, [], outputs=3, act="linear"), 5000)
    nodes = slice(NUM_INPUTS, NUM_INPUTS + 15)
    # Redrawn from all four activations, a node keeps its activation one time in four: 0.1 * 3/4 change.
    mutate_cppn(pop, seed=12, generation=0, params=only(p_activation=0.1))
    changed = pop.node_activation[:, nodes] != ACTIVATION_IDS["linear"]
    assert abs(float(changed.double().mean()) - 0.075) < five_sigma(0.075, 75_000)
    # Redrawn from two others, every redraw is a change, split evenly between them.
    pop = repeat(_hidden_genome(12, [], outputs=3, act="linear"), 5000)
    mutate_cppn(pop, seed=12, generation=0, params=only(p_activation=0.1, activations=("sine", "gaussian")))
    acts = pop.node_activation[:, nodes]
    changed = acts != ACTIVATION_IDS["linear"]
    assert abs(float(changed.double().mean()) - 0.1) < five_sigma(0.1, 75_000)
    sine_share = float((acts[changed] == ACTIVATION_IDS["sine"]).double().mean())
    assert abs(sine_share - 0.5) < five_sigma(0.5, int(changed.sum()))
    assert set(acts[changed].unique().tolist()) == {ACTIVATION_IDS["sine"], ACTIVATION_IDS["gaussian"]}


# A genome on which each topology operator succeeds whenever it fires: hidden nodes and few edges (adding a
# connection fails only when all 10 attempts draw a self-loop or an existing edge, probability (25/504)^10).
_TOPOLOGY_GENOME = _hidden_genome(20, [[0, 4, 1.0], [1, 5, -2.0], [5, 4, 3.0], [2, 6, 0.5], [6, 4, -1.0]])


@pytest.mark.parametrize(
    "operator, probability, counter, change",
    [
        ("p_add_edge", 0.5, "num_edges", +1),
        ("p_delete_edge", 0.3, "num_edges", -1),
        ("p_add_node", 0.5, "num_nodes", +1),
        ("p_delete_node", 0.2, "num_nodes", -1),
    ],
)
def test_topology_operator_rates(operator, probability, counter, change):
    pop = repeat(_TOPOLOGY_GENOME, 20_000)
    before = getattr(pop, counter).clone()
    mutate_cppn(pop, seed=13, generation=0, params=only(**{operator: probability}))
    delta = getattr(pop, counter) - before
    assert set(delta.unique().tolist()) <= {0, change}
    rate = float((delta == change).double().mean())
    # 20,000 genomes: 5 sigma <= 0.018, so a rate off by 0.02 or more would fail.
    assert abs(rate - probability) < five_sigma(probability, 20_000)
    pop.validate()


def test_add_node_splits_a_connection_and_delete_node_renumbers():
    genome = _hidden_genome(1, [[0, 5, 1.5], [5, 4, -2.0], [1, 4, 0.25]])
    pop = repeat(genome, 200)
    mutate_cppn(pop, seed=1, generation=0, params=only(p_add_node=1.0, activations=("gaussian",)))
    for acts, src, dst, weights in live(pop):
        w = np.frombuffer(weights, dtype=np.float32)
        assert len(src) == 4 and acts[-1] == ACTIVATION_IDS["gaussian"]
        assert (src[-1], dst[-1]) in {(6, 5), (6, 4)}  # the new node 6 feeds the split edge's destination
        split = dst.index(6)
        assert w[split] == w[-1] and w[split] in (np.float32(1.5), np.float32(-2.0), np.float32(0.25))
    pop = repeat(_hidden_genome(2, [[0, 5, 1.0], [5, 6, 2.0], [6, 4, 3.0], [1, 6, 4.0]]), 200)
    mutate_cppn(pop, seed=2, generation=0, params=only(p_delete_node=1.0))
    outcomes = {(tuple(s), tuple(d)) for _, s, d, _ in live(pop)}
    # Node 5 deleted: 6 becomes 5. Node 6 deleted: only 0 -> 5 stays.
    assert outcomes == {((5, 1), (4, 5)), ((0,), (5,))}


# --------------------------------------------------------------------------------------------------
# The polynomial mutation's distribution


def test_weight_perturbation_follows_debs_distribution():
    # Weights at the middle of [-10, 10]: the normalised perturbation is w / 20 (clipping needs |delta| >
    # 1/2, probability 2^-16).
    edges = [[i % NUM_INPUTS, NUM_INPUTS, 0.0] for i in range(NUM_INPUTS)]
    pop = repeat(_hidden_genome(0, edges), 25_000)
    mutate_cppn(pop, seed=21, generation=0, params=only(p_weight=1.0))
    delta = pop.edge_weight[:, :NUM_INPUTS].reshape(-1).double().numpy() / 20.0
    n = delta.size
    assert ks_statistic(delta, lambda d: deb_cdf(d, 15.0)) < ks_threshold(n)
    # The same statistic tells eta = 15 from eta = 20 or 10: the test would catch a wrong exponent.
    assert ks_statistic(delta, lambda d: deb_cdf(d, 20.0)) > 3 * ks_threshold(n)
    assert ks_statistic(delta, lambda d: deb_cdf(d, 10.0)) > 3 * ks_threshold(n)
    # Against Deb's formula sampled in NumPy (float64, NumPy's generator): two-sample KS.
    u = np.random.default_rng(5).random(n)
    deb = np.where(u < 0.5, (2 * u) ** (1 / 16) - 1, 1 - (2 * (1 - u)) ** (1 / 16))
    both = np.sort(np.concatenate([delta, deb]))
    gap = np.abs(np.searchsorted(np.sort(delta), both, "right") / n - np.searchsorted(np.sort(deb), both, "right") / n)
    assert gap.max() < ks_threshold(n, n)


# --------------------------------------------------------------------------------------------------
# Selection


def test_select_parents_copies_the_chosen_genomes():
    pop = random_population(10, 3, hidden=(0, 8), seed=6)
    index = torch.tensor([9, 0, 0, 4, 9, 2], dtype=torch.int64)
    kids = select_parents(pop, index)
    assert kids.batch == 6 and kids.max_nodes == pop.max_nodes and kids.num_outputs == 3
    for f, t in kids.tensors().items():
        assert torch.equal(t, getattr(pop, f).index_select(0, index)), f
    out = CPPNPopulation.empty(3, 3, max_nodes=pop.max_nodes, max_edges=pop.max_edges)
    assert select_parents(pop, [1, 2, 3], out=out) is out
    assert live(out) == live(pop)[1:4]
    assert select_parents(pop, []).batch == 0


def test_select_parents_rejects_bad_indices():
    pop = random_population(4, 1, hidden=(0, 3), seed=7)
    with pytest.raises(ValueError, match=r"index\[2\] = 4 is out of range for a population of 4"):
        select_parents(pop, [0, 1, 4, -1])
    with pytest.raises(ValueError, match=r"index\[0\] = -1"):
        select_parents(pop, [-1])
    kids = select_parents(pop, [0, 7], check=False)  # unchecked: the bad slot is a bare, valid genome
    assert int(kids.num_nodes[1]) == NUM_INPUTS + 1 and int(kids.num_edges[1]) == 0
    kids.validate()
    with pytest.raises(ValueError, match="index must have dtype torch.int64"):
        select_parents(pop, torch.tensor([0, 1], dtype=torch.int32))
    with pytest.raises(ValueError, match=r"index must have shape \[\*\]"):
        select_parents(pop, torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"out must be a CPPNPopulation\(batch=2"):
        select_parents(pop, [0, 1], out=CPPNPopulation.empty(3, 1, max_nodes=pop.max_nodes, max_edges=pop.max_edges))
    with pytest.raises(ValueError, match="select_parents needs"):
        select_parents({"genes": torch.zeros(1)}, [0])


# --------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "field, value",
    [
        ("p_weight", 1.5),
        ("p_activation", -0.1),
        ("p_add_edge", float("nan")),
        ("p_delete_edge", 2),
        ("p_add_node", -1e-3),
        ("p_delete_node", 1.01),
        ("eta", 0.0),
        ("eta", -3.0),
        ("eta", float("inf")),
        ("weight_min", 10.0),
        ("weight_max", float("inf")),
        ("add_edge_attempts", 0),
        ("add_edge_attempts", 2.5),
        ("add_edge_attempts", 10_001),
        ("add_edge", "dedup"),
        ("add_edge", 0),
        ("p_weight", "0.1"),
        ("activations", ()),
        ("activations", ("sine", "relu")),
        ("activations", "sine"),
    ],
)
def test_bad_cppn_parameters_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CPPNMutation(**{field: value})


def test_paper_defaults():
    p = CPPNMutation()
    assert (p.p_weight, p.eta, p.weight_min, p.weight_max, p.p_activation) == (0.1, 15.0, -10.0, 10.0, 0.1)
    assert (p.p_add_edge, p.p_delete_edge, p.p_add_node, p.p_delete_node) == (0.5, 0.3, 0.5, 0.2)
    assert p.activations is None and p.add_edge_attempts == 10
    assert p.add_edge == "original" and p.core_params().add_edge == 0
    assert p.core_params().activations == _core.ALL_ACTIVATIONS_MASK


def test_bad_mutate_calls_are_value_errors():
    pop = CPPNPopulation.initial(4, 1)
    for kwargs, match in [
        (dict(seed=-1, generation=0), "seed"),
        (dict(seed=2**64, generation=0), "seed"),
        (dict(seed=0, generation=2**32), "generation"),
        (dict(seed=0, generation=-1), "generation"),
        (dict(seed=0, generation=0, genome_offset=2**32 - 3), "genome_offset"),
        (dict(seed=0, generation=0, params={"p_weight": 0.1}), "params must be a CPPNMutation"),
        (dict(seed=0.5, generation=0), "seed"),
    ]:
        with pytest.raises(ValueError, match=match):
            mutate_cppn(pop, **kwargs)
    with pytest.raises(ValueError, match="needs a CPPNPopulation"):
        mutate_cppn(pop.edge_weight, seed=0, generation=0)
    pop.edge_weight = pop.edge_weight.double()
    with pytest.raises(ValueError, match="edge_weight must have dtype torch.float32"):
        mutate_cppn(pop, seed=0, generation=0)
    pop = CPPNPopulation.initial(4, 1)
    pop.edge_dst = pop.edge_dst[:, :-1].contiguous()
    with pytest.raises(ValueError, match=r"edge_dst must have shape \[4, 256\]"):
        mutate_cppn(pop, seed=0, generation=0)
    pop = CPPNPopulation.initial(4, 1)
    pop.edge_weight = pop.edge_weight.t().contiguous().t()
    with pytest.raises(ValueError, match="edge_weight must be contiguous"):
        mutate_cppn(pop, seed=0, generation=0)


def test_invalid_genomes_raise_and_are_left_unchanged():
    pop = CPPNPopulation.initial(3, 1, seed=1)
    pop.edge_dst[1, 0] = 2  # an edge into an input
    before = pop.clone()
    with pytest.raises(GenomeError, match="genome 1: edge_dst"):
        mutate_cppn(pop, seed=0, generation=0, params=only(p_weight=1.0))
    assert torch.equal(pop.edge_weight[1], before.edge_weight[1])
    assert not torch.equal(pop.edge_weight[0], before.edge_weight[0])
    mutate_cppn(pop, seed=0, generation=1, check=False)


def test_halving_rate():
    assert halving_rate(0.1, 0) == 0.1
    assert halving_rate(0.1, 999) == 0.1
    assert halving_rate(0.1, 1000) == 0.05
    assert halving_rate(0.1, 2999) == 0.025
    assert halving_rate(0.1, 50, every=10) == 0.1 / 32
    assert halving_rate(0.1, 10**6, every=None) == halving_rate(0.1, 10**6, every=0) == 0.1
    for args, match in [((1.5, 0), "base_rate"), ((0.1, -1), "generation"), ((0.1, 5, -2), "every")]:
        with pytest.raises(ValueError, match=match):
            halving_rate(*args)
