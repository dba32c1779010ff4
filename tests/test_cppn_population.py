"""The genome batch: the paper's starting population, readable form, files, and bad genomes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from genomes import random_population

import fooling_ext as fx
from fooling_ext.core.cppn import ACTIVATIONS, CPPNPopulation, GenomeError, parse_genome


def test_initial_population_is_the_papers():
    pop = CPPNPopulation.initial(500, 3, seed=4)
    assert pop.num_nodes.tolist() == [7] * 500
    assert pop.num_edges.tolist() == [12] * 500
    src = pop.edge_src[:, :12]
    dst = pop.edge_dst[:, :12]
    # Every input wired straight to every output, nothing else.
    pairs = {(int(s), int(d)) for s, d in zip(src[0], dst[0])}
    assert pairs == {(i, o) for i in range(4) for o in (4, 5, 6)}
    assert torch.equal(src, src[:1].expand_as(src)) and torch.equal(dst, dst[:1].expand_as(dst))
    w = pop.edge_weight[:, :12].numpy().ravel()
    assert w.min() >= -10 and w.max() <= 10
    # Uniform on [-10, 10]: mean 0 and variance 100/3 within 5 standard errors.
    n = w.size
    assert abs(w.mean()) < 5 * np.sqrt(100 / 3 / n)
    assert abs(w.var() - 100 / 3) < 5 * np.sqrt(2 * 20.0**4 / 180 / n)
    acts = pop.node_activation[:, 4:7].numpy().ravel()
    counts = np.bincount(acts, minlength=4)
    assert counts.sum() == 1500 and counts.min() > 1500 / 4 - 5 * np.sqrt(1500 * 3 / 16)


def test_initial_population_is_reproducible_from_the_seed():
    a = CPPNPopulation.initial(10, 1, seed=7)
    b = CPPNPopulation.initial(10, 1, seed=7)
    c = CPPNPopulation.initial(10, 1, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a.tensors().values(), b.tensors().values()))
    assert not torch.equal(a.edge_weight, c.edge_weight)


def test_initial_population_respects_the_activation_set_and_weight_range():
    pop = CPPNPopulation.initial(50, 1, seed=1, activations=["gaussian"], weight_range=(-1, 2))
    assert set(pop.node_activation[:, 4].tolist()) == {ACTIVATIONS.index("gaussian")}
    w = pop.edge_weight[:, :4]
    assert w.min() >= -1 and w.max() <= 2 and w.min() < -0.8 and w.max() > 1.8
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        CPPNPopulation.initial(2, activations=["relu"])
    with pytest.raises(ValueError, match="weight_range"):
        CPPNPopulation.initial(2, weight_range=(3, 3))


def test_text_round_trip_is_exact():
    pop = random_population(6, 3, hidden=(0, 10), seed=2)
    texts = [pop.describe(i) for i in range(pop.batch)]
    back = CPPNPopulation.from_genomes(texts, max_nodes=pop.max_nodes, max_edges=pop.max_edges)
    for f, t in pop.tensors().items():
        if f in ("num_nodes", "num_edges"):
            assert torch.equal(t, getattr(back, f))
    for b in range(pop.batch):
        assert back.genome(b) == pop.genome(b)
    assert torch.equal(fx.render(pop, 12, 12), fx.render(back, 12, 12))


def test_describe_is_readable():
    g = {"num_outputs": 1, "activations": ["input"] * 4 + ["sine", "gaussian"], "edges": [[0, 5, 1.5], [5, 4, -2.25]]}
    text = CPPNPopulation.from_genomes([g]).describe(0)
    assert text.splitlines() == [
        "cppn outputs=1 nodes=6 edges=2",
        "node 0 input x",
        "node 1 input y",
        "node 2 input d",
        "node 3 input bias",
        "node 4 output sine",
        "node 5 hidden gaussian",
        "edge 0 -> 5 weight 1.5",
        "edge 5 -> 4 weight -2.25",
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("node 0 input x", "must start with"),
        (
            "cppn outputs=1 nodes=5 edges=0\nnode 0 input x\nnode 1 input y\nnode 2 input d\nnode 3 input bias\n"
            "node 4 output relu",
            "unknown activation 'relu'",
        ),
        (
            "cppn outputs=1 nodes=5 edges=0\nnode 0 input x\nnode 1 input y\nnode 2 input d\nnode 3 input bias\n"
            "node 5 output sine",
            "node 5 out of order",
        ),
        (
            "cppn outputs=1 nodes=5 edges=1\nnode 0 input x\nnode 1 input y\nnode 2 input d\nnode 3 input bias\n"
            "node 4 output sine\nedge 0 => 4",
            "line 7: cannot read",
        ),
        (
            "cppn outputs=1 nodes=5 edges=2\nnode 0 input x\nnode 1 input y\nnode 2 input d\nnode 3 input bias\n"
            "node 4 output sine\nedge 0 -> 4 weight 1",
            "header says 5 nodes and 2 edges",
        ),
    ],
)
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_genome(text)


def test_save_load_round_trip(tmp_path):
    pop = random_population(9, 3, hidden=(0, 12), seed=6)
    path = pop.save(tmp_path / "pop.npz")
    back = CPPNPopulation.load(path)
    assert back.num_outputs == 3
    for f, t in pop.tensors().items():
        assert torch.equal(t, getattr(back, f)), f
    assert not (tmp_path / "pop.npz.tmp").exists()


def test_load_rejects_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CPPN population file at"):
        CPPNPopulation.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a readable CPPN population file"):
        CPPNPopulation.load(bad)
    good = random_population(2, 1, seed=1).save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ValueError, match="not a readable CPPN population file"):
        CPPNPopulation.load(truncated)
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.frombuffer(b'{"format": "something else"}', dtype=np.uint8))
    with pytest.raises(ValueError, match="not a readable CPPN population file|not a CPPN population file"):
        CPPNPopulation.load(other)


def _break(pop: CPPNPopulation, b: int, field: str, index, value):
    t = getattr(pop, field)
    t[b if index is None else (b, index)] = value
    return pop


@pytest.mark.parametrize(
    "field, index, value, message",
    [
        ("edge_dst", 2, 40, r"genome 3: edge_dst\[2\] = 40 refers to a node that does not exist"),
        ("edge_src", 1, -1, r"genome 3: edge_src\[1\] = -1 refers to a node that does not exist"),
        ("edge_dst", 0, 2, r"genome 3: edge_dst\[0\] = 2 points into an input node"),
        ("node_activation", 4, 9, r"genome 3: node_activation\[4\] = 9 is not a known activation"),
        ("num_nodes", None, 65, r"genome 3: num_nodes = 65 is outside \[5, 64\]"),
        ("num_nodes", None, 3, r"genome 3: num_nodes = 3 is outside"),
        ("num_edges", None, 257, r"genome 3: num_edges = 257 is outside \[0, 256\]"),
        ("edge_weight", 3, float("nan"), r"genome 3: edge_weight\[3\] is not finite"),
        ("edge_weight", 0, float("inf"), r"genome 3: edge_weight\[0\] is not finite"),
    ],
)
def test_bad_genomes_name_genome_and_field(field, index, value, message):
    pop = _break(CPPNPopulation.initial(5, 1, seed=0), 3, field, index, value)
    with pytest.raises(GenomeError, match=message) as info:
        pop.validate()
    assert info.value.genome == 3 and info.value.field == field
    with pytest.raises(GenomeError, match=message):
        fx.render(pop, 4, 4)


def test_cycle_is_rejected():
    g = {
        "num_outputs": 1,
        "activations": ["input"] * 4 + ["sine", "sine", "sine"],
        "edges": [[0, 5, 1.0], [5, 6, 1.0], [6, 5, 1.0], [6, 4, 1.0]],
    }
    ok = {"num_outputs": 1, "activations": ["input"] * 4 + ["sine"], "edges": [[0, 4, 1.0]]}
    with pytest.raises(GenomeError, match=r"genome 1: the edges form a cycle"):
        CPPNPopulation.from_genomes([ok, g])
    self_loop = {"num_outputs": 1, "activations": ["input"] * 4 + ["sine"], "edges": [[4, 4, 1.0]]}
    with pytest.raises(GenomeError, match=r"genome 0: the edges form a cycle"):
        CPPNPopulation.from_genomes([self_loop])


def test_invalid_genome_reports_how_many_more():
    pop = CPPNPopulation.initial(6, 1, seed=0)
    pop.edge_dst[1, 0] = 30
    pop.edge_dst[4, 0] = 30
    with pytest.raises(GenomeError, match=r"genome 1: .*\(1 more invalid genome\)"):
        pop.validate()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.update(num_nodes=t["num_nodes"].to(torch.int64)), "num_nodes must have dtype torch.int32"),
        (lambda t: t.update(edge_weight=t["edge_weight"].double()), "edge_weight must have dtype torch.float32"),
        (lambda t: t.update(edge_dst=t["edge_dst"][:, :10].contiguous()), r"edge_dst must have shape \[4, 256\]"),
        (lambda t: t.update(num_edges=t["num_edges"][:3].contiguous()), r"num_edges must have shape \[4\]"),
        (lambda t: t.update(node_activation=t["node_activation"].t().contiguous().t()), "must be contiguous"),
        (lambda t: t.update(edge_src=t["edge_src"].numpy()), "edge_src must be a torch.Tensor"),
    ],
)
def test_wrong_dtype_shape_or_layout_is_a_value_error(change, message):
    tensors = CPPNPopulation.initial(4, 1).tensors()
    change(tensors)
    with pytest.raises(ValueError, match=message):
        CPPNPopulation(**tensors, num_outputs=1)


def test_capacity_and_output_checks():
    with pytest.raises(ValueError, match="num_outputs must be 1"):
        CPPNPopulation.empty(2, 2)
    with pytest.raises(ValueError, match="max_nodes must be in"):
        CPPNPopulation.empty(2, 3, max_nodes=6)
    with pytest.raises(ValueError, match="max_edges must be in"):
        CPPNPopulation.empty(2, 3, max_edges=11)
    with pytest.raises(GenomeError, match="exceed max_nodes"):
        CPPNPopulation.from_genomes([random_population(1, 1, hidden=(10, 10)).genome(0)], max_nodes=8)


def test_select_concat_and_index():
    pop = random_population(5, 1, hidden=(0, 6), seed=3)
    sub = pop.select([4, 0, 4])
    assert sub.genome(0) == pop.genome(4) and sub.genome(1) == pop.genome(0) and sub.genome(2) == pop.genome(4)
    both = CPPNPopulation.concat([pop[:2], pop[3:]])
    assert both.batch == 4 and both.genome(2) == pop.genome(3)
    with pytest.raises(ValueError, match=r"index\[0\] = 5 is out of range"):
        pop.select([5])
