"""Property-based fuzzing of the boundary between Python and the compiled core (Hypothesis).

Every entry point that hands pointers to C++ (render, mutate_cppn, select, mutate_direct, the direct start
population) is called with populations whose fields were replaced by tensors of another dtype, shape or layout,
with counts and indices of any value, with odd image sizes and thread counts. The properties:

- a field replaced by a tensor of another kind is a ValueError that names that field, before the core runs;
- a genome with bad contents (counts, indices, activations, weights, cycles) is a GenomeError naming it, and
  neither render nor mutation changes anything else: valid genomes render exactly as the NumPy reference does,
  and an invalid genome's image is zeros and its tensors are left as they were;
- an index out of range is a ValueError naming its position;
- the interpreter never crashes (a crash would end this test run);
- a number from a command-line option, a configuration or the Python API (Archive.add's probabilities) that is
  not finite, out of range or not whole is a ValueError naming it, and nothing is stored.

The C++ entry points are fuzzed directly, under AddressSanitizer and UndefinedBehaviorSanitizer, by
tests/cpp/test_fuzz.cpp.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest
import torch
from genomes import random_population
from hypothesis import HealthCheck, given, settings, strategies as st

from fooling_ext import _core
from fooling_ext.analyses import RepetitionConfig
from fooling_ext.core.checks import check_real, check_whole
from fooling_ext.core.cppn import CPPNPopulation, GenomeError
from fooling_ext.core.direct import DirectPopulation
from fooling_ext.core.mutation import DirectMutation, mutate_cppn, mutate_direct
from fooling_ext.core.reference.render import render_reference
from fooling_ext.core.render import render
from fooling_ext.experiments.gradient_ascent import GradientConfig
from fooling_ext.experiments.mnist_fooling_class import RetrainConfig
from fooling_ext.search.archive import Archive
from fooling_ext.search.config import EvolveConfig

# 60 examples per property in CI; FOOLING_FUZZ_EXAMPLES=N fuzzes longer (derandomized: the same N cases each time).
FUZZ = settings(
    max_examples=int(os.environ.get("FOOLING_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CPPN_FIELDS = CPPNPopulation.FIELDS
DTYPES = (torch.int32, torch.int64, torch.float32, torch.float64, torch.uint8, torch.bool, torch.int16)


def small_population(seed: int, batch: int = 3, num_outputs: int = 1) -> CPPNPopulation:
    return random_population(batch, num_outputs=num_outputs, hidden=(0, 4), seed=seed, max_nodes=16, max_edges=48)


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32) if t.dtype == torch.float32 else t


def replacement(original: torch.Tensor, kind: str, dtype: torch.dtype, extra: int) -> torch.Tensor:
    """A tensor that differs from `original` in the way `kind` says."""
    if kind == "dtype":
        dtype = dtype if dtype != original.dtype else torch.float64
        return original.to(dtype)
    if kind == "wider":
        shape = list(original.shape)
        shape[-1] += extra
        return torch.zeros(shape, dtype=original.dtype)
    if kind == "narrower":
        if original.shape[-1] <= 1:
            return original[..., :0].contiguous()
        return original[..., : max(0, original.shape[-1] - extra)].contiguous()
    if kind == "batch":
        return torch.cat([original, original[:1]]).contiguous()
    if kind == "rank":
        return original.reshape(-1) if original.dim() > 1 else original.reshape(1, -1)
    if kind == "strided":  # same shape, not contiguous
        wide = torch.zeros((*original.shape[:-1], original.shape[-1] * 2), dtype=original.dtype)
        return wide[..., ::2]
    raise AssertionError(kind)


@FUZZ
@given(
    seed=st.integers(0, 10_000),
    field=st.sampled_from(CPPN_FIELDS),
    kind=st.sampled_from(("dtype", "wider", "narrower", "batch", "rank", "strided")),
    dtype=st.sampled_from(DTYPES),
    extra=st.integers(1, 5000),
    entry=st.sampled_from(("render", "mutate", "select", "clone", "validate")),
)
def test_a_replaced_field_is_named_before_the_core_runs(seed, field, kind, dtype, extra, entry):
    pop = small_population(seed)
    original = getattr(pop, field)
    bad = replacement(original, kind, dtype, extra)
    if bad.shape == original.shape and bad.dtype == original.dtype and bad.is_contiguous():
        return  # "narrower" of a one-column field gives the same tensor back
    setattr(pop, field, bad)
    before = {f: getattr(pop, f).clone() for f in CPPN_FIELDS}
    calls = {
        "render": lambda: render(pop, 9, 7),
        "mutate": lambda: mutate_cppn(pop, seed=seed, generation=1),
        "select": lambda: pop.select([0, 1]),
        "clone": lambda: pop.clone(),
        "validate": lambda: pop.validate(),
    }
    with pytest.raises(ValueError, match=rf"^{field} "):
        calls[entry]()
    for f in CPPN_FIELDS:  # nothing was written
        assert torch.equal(bits(getattr(pop, f)), bits(before[f])), f


@st.composite
def corrupted(draw):
    """A population of valid genomes and one entry of one of them set to any value."""
    seed = draw(st.integers(0, 10_000))
    pop = small_population(seed, batch=draw(st.integers(1, 4)), num_outputs=draw(st.sampled_from((1, 3))))
    genome = draw(st.integers(0, pop.batch - 1))
    field = draw(st.sampled_from(CPPN_FIELDS))
    tensor = getattr(pop, field)
    column = draw(st.integers(0, tensor.shape[1] - 1)) if tensor.dim() == 2 else None
    if tensor.dtype == torch.float32:
        value = draw(
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True, width=32),
                st.sampled_from((float("nan"), float("inf"), -float("inf"))),
            )
        )
    else:
        value = draw(st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-3, 70)))
    index = (genome,) if column is None else (genome, column)
    tensor[index] = value
    return seed, pop, genome


@FUZZ
@given(
    case=corrupted(),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    coords=st.sampled_from(("normalized", "pixel")),
    color=st.sampled_from(("hsl", "hsv")),
)
def test_render_matches_the_reference_or_names_the_bad_genome(case, height, width, coords, color):
    _, pop, _ = case
    errors = pop.errors()
    bad = torch.nonzero(errors[:, 0]).flatten().tolist()
    images = render(pop, height, width, coords=coords, color=color, check=False)
    assert images.shape == (pop.batch, pop.num_outputs if pop.num_outputs == 1 else 3, height, width)
    for b in bad:
        assert torch.count_nonzero(images[b]) == 0
    good = [b for b in range(pop.batch) if b not in bad]
    if good:
        expected = render_reference(pop[good], height, width, coords=coords, color=color)
        np.testing.assert_allclose(images[good].numpy(), expected, atol=2e-5, rtol=0)
        assert torch.isfinite(images[good]).all() and images[good].min() >= 0 and images[good].max() <= 1
    if bad:
        with pytest.raises(GenomeError, match=rf"^genome {bad[0]}: "):
            render(pop, height, width, coords=coords, color=color)


@FUZZ
@given(case=corrupted(), generation=st.integers(0, 2**32 - 1))
def test_mutation_leaves_an_invalid_genome_untouched_and_keeps_valid_ones_valid(case, generation):
    seed, pop, _ = case
    errors = pop.errors()
    bad = torch.nonzero(errors[:, 0]).flatten().tolist()
    before = {f: getattr(pop, f).clone() for f in CPPN_FIELDS}
    if bad:
        with pytest.raises(GenomeError, match=rf"^genome {bad[0]}: "):
            mutate_cppn(pop, seed=seed, generation=generation)
    else:
        mutate_cppn(pop, seed=seed, generation=generation)
    for b in bad:
        for f in CPPN_FIELDS:  # bit for bit (a NaN weight left in place is not equal to itself)
            assert torch.equal(bits(getattr(pop, f)[b]), bits(before[f][b])), (b, f)
    after = pop.errors()
    good = [b for b in range(pop.batch) if b not in bad]
    assert after[good, 0].tolist() == [0] * len(good)


@FUZZ
@given(
    seed=st.integers(0, 1000),
    index=st.lists(st.integers(-(2**40), 2**40), min_size=0, max_size=6),
    direct=st.booleans(),
)
def test_select_copies_in_range_rows_and_names_the_first_bad_index(seed, index, direct):
    pop = DirectPopulation.initial(4, 1, 3, 2, seed=seed) if direct else small_population(seed, batch=4)
    first_bad = next((i for i, v in enumerate(index) if not 0 <= v < pop.batch), None)
    if first_bad is not None:
        with pytest.raises(ValueError, match=rf"index\[{first_bad}\] = {index[first_bad]} is out of range"):
            pop.select(index)
        return
    out = pop.select(index)
    for field in pop.FIELDS:
        assert torch.equal(getattr(out, field), getattr(pop, field)[index]), field


@FUZZ
@given(
    seed=st.integers(0, 1000),
    kind=st.sampled_from(("dtype", "wider", "narrower", "batch", "rank", "strided")),
    dtype=st.sampled_from(DTYPES),
    extra=st.integers(1, 50),
    rate=st.one_of(st.floats(-1, 2), st.just(float("nan"))),
    gene=st.floats(allow_nan=True, allow_infinity=True, width=32),
)
def test_direct_populations_are_checked_the_same_way(seed, kind, dtype, extra, rate, gene):
    pop = DirectPopulation.initial(3, 1, 4, 5, seed=seed)
    replaced = DirectPopulation(pop.genes.clone())
    bad = replacement(pop.genes, kind, dtype, extra)
    if not (bad.shape == pop.genes.shape and bad.dtype == pop.genes.dtype and bad.is_contiguous()):
        replaced.genes = bad
        with pytest.raises(ValueError, match=r"^genes "):
            mutate_direct(replaced, seed=seed, generation=0)
    if not 0.0 <= np.float32(rate) <= 1.0:  # the core's parameters are float32; NaN fails both tests
        with pytest.raises(ValueError, match="rate"):
            mutate_direct(pop, seed=seed, generation=0, params=DirectMutation(rate=rate))
    else:
        mutate_direct(pop, seed=seed, generation=0, params=DirectMutation(rate=rate))
        assert pop.genes.min() >= 0 and pop.genes.max() <= 1
    pop.genes[0, 0, 0, 0] = gene
    if 0.0 <= gene <= 1.0:
        pop.validate()
    else:
        with pytest.raises(ValueError, match=r"^genome 0: genes must be finite and in \[0, 1\]"):
            pop.validate()


@FUZZ
@given(height=st.integers(-3, _core.MAX_IMAGE_SIDE + 3), width=st.integers(-3, 40))
def test_image_sizes_outside_the_core_limits_are_refused(height, width):
    pop = small_population(0, batch=1)
    if 1 <= height <= _core.MAX_IMAGE_SIDE and 1 <= width <= _core.MAX_IMAGE_SIDE:
        if height * width <= 4096:
            assert render(pop, height, width).shape[-2:] == (height, width)
        return
    with pytest.raises(ValueError, match="height|width"):
        render(pop, height, width)


@FUZZ
@given(threads=st.integers(-(2**31), 2**31 - 1))
def test_any_thread_count_renders_the_same_images(threads):
    pop = small_population(3, batch=5, num_outputs=3)
    expected = render(pop, 6, 5)
    before = _core.num_threads()
    try:
        _core.set_num_threads(threads)
        assert 1 <= _core.num_threads() <= 256
        assert torch.equal(render(pop, 6, 5), expected)
    finally:
        _core.set_num_threads(0)
    assert _core.num_threads() == before


# ---------------------------------------------------------------------------------------------------------------
# Numbers from the command line, configurations and the Python API: one checker per kind (core.checks), each
# refusing exactly what is not finite, not in range, or not whole, with a message naming the parameter and value.

ANY_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.sampled_from((float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, 1e-300)),
    st.text(max_size=3),
    st.none(),
)
BOUND = st.one_of(st.none(), st.floats(-10, 10, allow_nan=False))


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@FUZZ
@given(value=ANY_NUMBER, low=BOUND, high=BOUND, low_open=st.booleans(), high_open=st.booleans())
def test_check_real_refuses_exactly_what_is_not_a_finite_number_in_range(value, low, high, low_open, high_open):
    finite = _is_real(value) and abs(value) < 2**1000 and math.isfinite(value)
    inside = (
        finite
        and (low is None or (value > low if low_open else value >= low))
        and (high is None or (value < high if high_open else value <= high))
    )
    if inside:
        assert check_real("x", value, low, high, low_open=low_open, high_open=high_open) == float(value)
        return
    with pytest.raises(ValueError, match=rf"^x must be a finite number.*, got {re.escape(repr(value))}$"):
        check_real("x", value, low, high, low_open=low_open, high_open=high_open)


@FUZZ
@given(value=ANY_NUMBER, low=st.integers(-5, 5), span=st.one_of(st.none(), st.integers(0, 10)))
def test_check_whole_refuses_bools_fractions_and_numbers_out_of_range(value, low, span):
    high = None if span is None else low + span
    if isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high):
        assert check_whole("n", value, low, high) == value
        return
    with pytest.raises(ValueError, match=rf"^n must be a whole number .*, got {re.escape(repr(value))}$"):
        check_whole("n", value, low, high)


@FUZZ
@given(
    text=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-5, 5).map(str),
        st.sampled_from(("nan", "inf", "-inf", "1e400", "", "0x10", "1.5", "  2 ")),
    )
)
def test_the_argparse_types_accept_exactly_what_the_checkers_accept(text):
    import argparse

    from fooling_ext.cli.options import probability, real_number, whole_number

    for parse, check in (
        (real_number(0.0, low_open=True), lambda v: check_real("v", v, 0.0, low_open=True)),
        (probability, lambda v: check_real("v", v, 0.0, 1.0)),
        (whole_number(1), lambda v: check_whole("v", v, 1)),
    ):
        try:
            value = (int if parse.__name__.startswith("whole") else float)(text)
            check(value)
        except ValueError:
            with pytest.raises(argparse.ArgumentTypeError, match=rf"^expected a .*, got {re.escape(repr(text))}$"):
                parse(text)
        else:
            assert parse(text) == value


CONFIG_NUMBERS = {  # configuration, field -> a value it accepts
    "evolve": (lambda **kw: EvolveConfig(**kw), {"generations": 3, "batch": 4, "seed": 0, "checkpoint_every": 1}),
    "gradient": (
        lambda **kw: GradientConfig(**kw),
        {
            "steps": 2,
            "target": 0.5,
            "decay": 0.0,
            "blur_radius": 0.0,
            "blur_every": 1,
            "lr": 0.1,
            "batch": 3,
            "noise_std": 0.0,
            "max_lr": 1.0,
            "early_progress": 0.03,
            "late_progress": 0.1,
            "max_log_gain": 1.0,
        },
    ),
    "retrain": (
        lambda **kw: RetrainConfig(**kw),
        {"rounds": 1, "generations": 2, "batch": 5, "lr": 0.01, "measure_runs": 0, "threads": 1},
    ),
    "repetition": (
        lambda **kw: RepetitionConfig(**kw),
        {"min_peak": 0.5, "min_period": 4.0, "examples": 0, "batch": 2},
    ),
}


@FUZZ
@given(
    kind=st.sampled_from(sorted(CONFIG_NUMBERS)),
    data=st.data(),
    bad=st.sampled_from((float("nan"), float("inf"), -float("inf"), -1, True, 2.5, "3", None, 10**400)),
)
def test_each_configuration_names_the_field_of_a_bad_number(kind, data, bad):
    make, fields = CONFIG_NUMBERS[kind]
    name = data.draw(st.sampled_from(sorted(fields)))
    if bad is None and (kind, name) in (("evolve", "batch"), ("gradient", "target")):
        return  # None: the paper's batch; no target, every step
    whole = isinstance(fields[name], int)
    if bad == 2.5 and not whole:
        bad = -2.5  # a fraction is bad where the number must be whole; a negative one everywhere here
    if bad == 10**400 and whole:
        bad = 2**63 if name == "seed" else -2  # a whole number: out of range only where a bound exists
    make(**fields).check()  # the good values pass
    with pytest.raises(ValueError, match=rf"^{name} "):
        make(**{**fields, name: bad}).check()


@FUZZ
@given(rows=st.integers(1, 4), cells=st.integers(1, 4), data=st.data())
def test_archive_add_stores_probabilities_only_and_names_the_first_bad_one(rows, cells, data):
    values = data.draw(
        st.lists(
            st.lists(
                st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True)),
                min_size=cells,
                max_size=cells,
            ),
            min_size=rows,
            max_size=rows,
        )
    )
    probs = torch.tensor(values, dtype=torch.float32)
    archive = Archive([f"c{i}" for i in range(cells)], {"g": torch.zeros(1, 2)}, (1, 2, 2))
    before = {k: v.clone() for k, v in archive.state_dict().items()}
    bad = [(i, j) for i in range(rows) for j in range(cells) if not 0.0 <= float(probs[i, j]) <= 1.0]

    def call():
        return archive.add(
            {"g": torch.zeros(rows, 2)},
            torch.zeros(rows, 1, 2, 2),
            probs,
            generation=0,
            ids=torch.arange(rows),
            parent_ids=torch.full((rows,), -1),
        )

    if not bad:
        call()
        assert torch.equal(archive.confidence, probs.max(dim=0).values)
        return
    with pytest.raises(ValueError, match=rf"^the probability of child {bad[0][0]} for class {bad[0][1]} "):
        call()
    for key, value in archive.state_dict().items():
        assert torch.equal(value, before[key]), key
