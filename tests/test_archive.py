"""The MAP-Elites archive: insertion rules, statuses, parent sampling, state round trip."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from fooling_ext.search.archive import IMPROVED, NEW, NOT_ADDED, Archive


def make_archive(k=4, insertion="all"):
    template = {"genes": torch.zeros(1, 2), "count": torch.zeros(1, dtype=torch.int32)}
    return Archive([f"c{i}" for i in range(k)], template, (1, 2, 2), insertion=insertion)


def batch(probs, start_id=0):
    probs = torch.tensor(probs, dtype=torch.float32)
    b = probs.shape[0]
    genomes = {
        "genes": torch.arange(b * 2, dtype=torch.float32).reshape(b, 2),
        "count": torch.arange(b, dtype=torch.int32),
    }
    images = torch.linspace(0, 1, b * 4).reshape(b, 1, 2, 2)
    ids = torch.arange(start_id, start_id + b)
    return genomes, images, probs, ids


def add(archive, probs, generation=0, start_id=0, parents=None):
    genomes, images, p, ids = batch(probs, start_id)
    parent_ids = torch.full((len(ids),), -1) if parents is None else torch.tensor(parents)
    return archive.add(genomes, images, p, generation=generation, ids=ids, parent_ids=parent_ids)


def test_every_cell_a_child_beats_by_default():
    a = make_archive()
    r = add(a, [[0.7, 0.1, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1]])
    # Cells start empty, so the first batch fills every cell with its best child.
    assert a.occupied.all() and r.new_cells == 4 and r.improved_cells == 0
    assert a.confidence.tolist() == pytest.approx([0.7, 0.5, 0.2, 0.1])
    assert a.elite_id.tolist() == [0, 1, 1, 0]  # ties on cell 3 keep the first child
    assert r.status.tolist() == [NEW, NEW]
    # Child 0 of the next batch beats cells 2 and 3 (not its top class 0); child 1 beats nothing.
    r = add(a, [[0.3, 0.1, 0.35, 0.25], [0.6, 0.4, 0.0, 0.0]], generation=1, start_id=2, parents=[0, 1])
    assert r.status.tolist() == [IMPROVED, NOT_ADDED]
    assert r.improved_cells == 2 and r.new_cells == 0
    assert a.elite_id.tolist() == [0, 1, 2, 2]
    assert a.generation.tolist() == [0, 0, 1, 1]
    assert a.parent_id.tolist() == [-1, -1, 0, 0]
    assert torch.equal(a.genomes["genes"][2], torch.tensor([0.0, 1.0]))


def test_top_insertion_only_competes_for_the_top_class():
    a = make_archive(insertion="top")
    r = add(a, [[0.7, 0.1, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1]])
    assert a.occupied.tolist() == [True, True, False, False]
    assert r.status.tolist() == [NEW, NEW]
    r = add(a, [[0.8, 0.0, 0.1, 0.1], [0.45, 0.1, 0.3, 0.15]], start_id=2)
    assert r.status.tolist() == [IMPROVED, NOT_ADDED]  # child 1's top class is 0, where 0.45 < 0.8
    assert a.confidence[0].item() == pytest.approx(0.8)


def test_equal_confidence_keeps_the_elite():
    a = make_archive(k=2)
    add(a, [[0.6, 0.4]])
    r = add(a, [[0.6, 0.4]], start_id=1)
    assert r.status.tolist() == [NOT_ADDED]
    assert a.elite_id.tolist() == [0, 0]


def test_images_are_stored_as_uint8():
    a = make_archive(k=1)
    add(a, [[1.0]])
    assert a.images.dtype == torch.uint8
    assert a.images[0].flatten().tolist() == [0, 85, 170, 255]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 7.0, -0.5, 1.5])
def test_a_probability_that_is_not_one_is_refused_naming_the_child_and_class(bad):
    a = make_archive(k=3)
    add(a, [[0.2, 0.3, 0.5]])
    before = {key: value.clone() for key, value in a.state_dict().items()}
    with pytest.raises(
        ValueError,
        match=rf"^the probability of child 1 for class 2 \(c2\) is {re.escape(repr(bad))}: "
        r"probabilities must be finite and in \[0, 1\]$",
    ):
        add(a, [[0.9, 0.9, 0.9], [0.1, 0.1, bad]], generation=1, start_id=1)
    for key, value in a.state_dict().items():  # nothing was stored, not even the valid child 0
        assert torch.equal(value, before[key]), key


def test_shape_errors_name_the_field():
    a = make_archive()
    genomes, images, probs, ids = batch([[0.1, 0.2, 0.3, 0.4]])
    with pytest.raises(ValueError, match=r"probabilities must be \[batch, 4\]"):
        a.add(genomes, images, probs[:, :3], generation=0, ids=ids, parent_ids=ids)
    with pytest.raises(ValueError, match=r"images must be \[1, 1, 2, 2\]"):
        a.add(genomes, images[:, :, :1], probs, generation=0, ids=ids, parent_ids=ids)
    with pytest.raises(ValueError, match="genome field 'count'"):
        a.add({"genes": genomes["genes"]}, images, probs, generation=0, ids=ids, parent_ids=ids)
    with pytest.raises(ValueError, match="insertion must be one of"):
        make_archive(insertion="best")


def test_parents_are_uniform_over_occupied_cells():
    a = make_archive(k=10, insertion="top")
    probs = np.zeros((3, 10), dtype=np.float32)
    probs[0, 2] = probs[1, 5] = probs[2, 7] = 0.9
    add(a, probs.tolist())
    cells = a.sample_parents(30000, np.random.default_rng(0)).numpy()
    counts = np.bincount(cells, minlength=10)
    assert set(np.nonzero(counts)[0]) == {2, 5, 7}
    assert np.all(np.abs(counts[[2, 5, 7]] - 10000) < 5 * np.sqrt(30000 * (1 / 3) * (2 / 3)))
    with pytest.raises(RuntimeError, match="empty archive"):
        make_archive().sample_parents(1, np.random.default_rng(0))


def test_state_round_trip_and_mismatch(tmp_path):
    a = make_archive()
    add(a, [[0.7, 0.1, 0.1, 0.1]])
    b = make_archive()
    b.load_state_dict(a.state_dict())
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    c = make_archive(k=5)
    with pytest.raises(ValueError, match="archive field 'genome.genes' should be"):
        c.load_state_dict(a.state_dict())
    path = a.save_npz(tmp_path / "archive.npz")
    with np.load(path) as z:
        assert z["confidence"].tolist() == pytest.approx([0.7, 0.1, 0.1, 0.1])
        assert "genome_genes" in z
