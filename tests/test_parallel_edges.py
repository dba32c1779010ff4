"""Parallel edges (two connections between the same pair of nodes), which the original's add connection makes:
every consumer of a genome takes them, and a genome renders as the sum of their contributions."""

from __future__ import annotations

import numpy as np
import torch

from fooling_ext.core.cppn import NUM_INPUTS, CPPNPopulation
from fooling_ext.core.cppn_text import format_genome, parse_genome
from fooling_ext.core.mutation import CPPNMutation, mutate_cppn
from fooling_ext.core.reference.render import render_reference
from fooling_ext.core.render import render
from fooling_ext.gallery.genome_svg import genome_svg
from fooling_ext.search.archive import Archive
from fooling_ext.search.encodings import make_encoding

H = 4 + NUM_INPUTS  # hidden node 5 (one output)


def _genome(edges: list) -> dict:
    return {"num_outputs": 1, "activations": ["input"] * NUM_INPUTS + ["sine", "gaussian"], "edges": edges}


# x -> h twice (weights 0.75 and -2.5), y -> h, h -> out twice (1.5 and 0.5), d -> out.
PARALLEL = _genome([[0, 5, 0.75], [1, 5, 1.25], [0, 5, -2.5], [5, 4, 1.5], [2, 4, -0.5], [5, 4, 0.5]])
# The same function with each pair merged into one edge of the summed weight.
MERGED = _genome([[0, 5, 0.75 - 2.5], [1, 5, 1.25], [5, 4, 1.5 + 0.5], [2, 4, -0.5]])


def test_a_genome_with_parallel_edges_renders_as_the_sum_of_their_contributions():
    pop = CPPNPopulation.from_genomes([PARALLEL, MERGED])
    pop.validate()
    images = render(pop, 16, 16)
    # The pre-activations differ only by float rounding (w1 x + w2 x against (w1 + w2) x).
    np.testing.assert_allclose(images[0].numpy(), images[1].numpy(), atol=2e-6)
    assert float((images[0] - images[0].mean()).abs().max()) > 0.1  # not a flat image
    np.testing.assert_allclose(images.numpy(), render_reference(pop, 16, 16), atol=1e-5)
    # Dropping one of the parallel x -> h edges changes the image: both count.
    single = CPPNPopulation.from_genomes([_genome(PARALLEL["edges"][:2] + PARALLEL["edges"][3:])])
    assert float((render(single, 16, 16)[0] - images[0]).abs().max()) > 0.05


def test_every_consumer_of_a_genome_takes_parallel_edges(tmp_path):
    pop = CPPNPopulation.from_genomes([PARALLEL])
    # Text form: round trip keeps both copies, in order.
    text = format_genome(pop.genome(0))
    assert parse_genome(text)["edges"] == pop.genome(0)["edges"]
    assert CPPNPopulation.from_genomes([parse_genome(text)]).genome(0) == pop.genome(0)
    # The file form.
    pop.save(tmp_path / "pop.npz")
    assert CPPNPopulation.load(tmp_path / "pop.npz").genome(0) == pop.genome(0)
    # The gallery's drawing: one curve per edge.
    svg = genome_svg(pop.genome(0))
    assert 'data-edges="6"' in svg and svg.count("<path") >= 6
    # An archive holding it validates, and mutation (either add-connection rule) keeps it valid.
    encoding = make_encoding("cppn", 1, 16, 16)
    archive = Archive([str(i) for i in range(2)], encoding.tensors(pop), (1, 16, 16), device=torch.device("cpu"))
    archive.add(
        encoding.tensors(pop),
        render(pop, 16, 16),
        torch.tensor([[0.9, 0.1]]),
        generation=0,
        ids=torch.tensor([0]),
        parent_ids=torch.tensor([-1]),
    )
    archive.validate(encoding)
    for rule in ("original", "rejection"):
        kids = pop.select(torch.zeros(32, dtype=torch.int64))
        for generation in range(5):
            mutate_cppn(kids, seed=1, generation=generation, params=CPPNMutation(add_edge=rule))
        kids.validate()
