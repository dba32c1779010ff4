"""Plain NumPy reference of batched mutation (the mutation oracle): what both backends are tested against.

Written from the description in cpp/include/fooling/mutation.h, independently of the core: Philox4x32-10 in
NumPy, the same counters and order of draws, and float32 arithmetic with one rounding per operation (the
polynomial's power as exp(y log x) with the core's own log and exp, mirrored here). So the core must match
it exactly. CPPN genomes are mutated one at a time with Python lists; direct-encoding genomes are vectorised over
their genes. Slow, and meant to be: it is the version that is easy to check by reading.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from fooling_ext.core.cppn import NUM_INPUTS, CPPNPopulation
from fooling_ext.core.mutation import BLOCKED_ADD_EDGE, BLOCKED_ADD_NODE, CPPNMutation, DirectMutation
from fooling_ext.core.reference.render import LN2_HI, LN2_LO, clamp, exp

f32 = np.float32
MASK32 = np.uint64(0xFFFFFFFF)

PHILOX_M0, PHILOX_M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
PHILOX_W0, PHILOX_W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
PHILOX_ROUNDS = 10

# Counter word 2: what a draw is for (RandomPurpose in mutation.h).
PURPOSE_CPPN_MUTATION = 0
PURPOSE_PIXEL_INIT = 1
PURPOSE_PIXEL_DECIDE = 2
PURPOSE_PIXEL_DELTA = 3
PURPOSE_SBX_PAIR = 4
PURPOSE_SBX_GENE = 5  # no longer drawn: SBX crosses every gene
PURPOSE_SBX_SPREAD = 6
PURPOSE_SBX_SWAP = 7

GENES_PER_BLOCK = 4
SBX_MIN_DISTANCE = f32(1.1920928955078125e-7)


# --------------------------------------------------------------------------------------------------
# Random numbers
def philox4x32_10(counter: npt.ArrayLike, key: npt.ArrayLike) -> np.ndarray:
    """Philox4x32-10 blocks: counter uint32 [..., 4], key uint32 [..., 2] (broadcast) -> uint32 [..., 4]."""
    c = np.asarray(counter, dtype=np.uint64)
    k = np.asarray(key, dtype=np.uint64)
    c0, c1, c2, c3 = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    k0, k1 = k[..., 0], k[..., 1]
    for r in range(PHILOX_ROUNDS):
        if r:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        p0 = PHILOX_M0 * c0
        p1 = PHILOX_M1 * c2
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & MASK32, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & MASK32
    out: np.ndarray = np.stack(np.broadcast_arrays(c0, c1, c2, c3), axis=-1).astype(np.uint32)
    return out


def seed_key(seed: int) -> np.ndarray:
    """The 64-bit seed as a Philox key, low word first."""
    return np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint32)


def uniform(bits: npt.ArrayLike) -> np.ndarray:
    """Uniform float32 in [0, 1) from the top 24 bits."""
    out: np.ndarray = ((np.asarray(bits, dtype=np.uint32) >> np.uint32(8)).astype(f32) * f32(2.0**-24)).astype(f32)
    return out


def gene_words(seed: int, generation: int, genome: int, purpose: int, genes: int) -> np.ndarray:
    """The draw of each of `genes` genes: gene g is word g % 4 of the block with counter index g // 4."""
    groups = -(-genes // GENES_PER_BLOCK)
    counter = np.zeros((groups, 4), dtype=np.uint32)
    counter[:, 0] = generation
    counter[:, 1] = genome
    counter[:, 2] = purpose
    counter[:, 3] = np.arange(groups, dtype=np.uint32)
    return philox4x32_10(counter, seed_key(seed)).reshape(-1)[:genes]


class PhiloxStream:
    """Sequential draws for one (seed, generation, genome, purpose): draw k is word k % 4 of block k // 4.
    Blocks are computed 64 at a time (they do not depend on when they are computed)."""

    BLOCKS_PER_REFILL = 64

    def __init__(self, seed: int, generation: int, genome: int, purpose: int):
        self._key = seed_key(seed)
        self._prefix = (generation, genome, purpose)
        self._words = np.zeros(0, dtype=np.uint32)
        self._next_block = 0
        self._used = 0

    def bits(self) -> int:
        if self._used == len(self._words):
            counter = np.zeros((self.BLOCKS_PER_REFILL, 4), dtype=np.uint32)
            counter[:, :3] = self._prefix
            counter[:, 3] = np.arange(self._next_block, self._next_block + self.BLOCKS_PER_REFILL)
            self._words = philox4x32_10(counter, self._key).reshape(-1)
            self._next_block += self.BLOCKS_PER_REFILL
            self._used = 0
        self._used += 1
        return int(self._words[self._used - 1])

    def uniform(self) -> np.float32:
        u: np.float32 = f32(uniform(self.bits()))
        return u

    def below(self, n: int) -> int:
        """Integer in [0, n) by multiply-shift."""
        return (self.bits() * n) >> 32


# --------------------------------------------------------------------------------------------------
# Float32 math, as cpp/include/fooling/activations.h computes it
SQRT2 = f32(1.41421356237309505)
LOG_COEFFS = [f32(1.0 / 9.0), f32(1.0 / 7.0), f32(1.0 / 5.0), f32(1.0 / 3.0), f32(1.0)]
MIN_NORMAL = f32(1.1754943508222875e-38)


def log(x: npt.ArrayLike) -> np.ndarray:
    """The core's log: x = 2^e m with m in [sqrt(1/2), sqrt(2)), atanh series in (m - 1) / (m + 1); -88 for
    x < the smallest normal float (and NaN)."""
    x = np.atleast_1d(np.asarray(x, dtype=f32))
    bits = x.view(np.uint32)
    e = ((bits >> np.uint32(23)) & np.uint32(0xFF)).astype(np.int32) - 127
    m = ((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)).view(f32)
    big = m > SQRT2
    m = np.where(big, m * f32(0.5), m).astype(f32)
    e = e + big.astype(np.int32)
    s = (m - f32(1)) / (m + f32(1))
    s2 = s * s
    p = np.full_like(s, LOG_COEFFS[0])
    for c in LOG_COEFFS[1:]:
        p = p * s2 + c
    log_m = f32(2) * s * p
    ef = e.astype(f32)
    out = ef * LN2_HI + (log_m + ef * LN2_LO)
    result: np.ndarray = np.where(x >= MIN_NORMAL, out, f32(-88.0)).astype(f32)
    return result


def pow(x: npt.ArrayLike, y: float) -> np.ndarray:  # noqa: A001 - mirrors math::pow
    """x^y as exp(y log x) for x > 0; 0 for x <= 0 (and NaN)."""
    x = np.atleast_1d(np.asarray(x, dtype=f32))
    return np.where(x > f32(0), exp(f32(y) * log(x)), f32(0)).astype(f32)


def polynomial_delta(u: npt.ArrayLike, eta: float | np.floating[Any]) -> np.ndarray:
    """Deb's polynomial perturbation for uniform u in [0, 1)."""
    u = np.atleast_1d(np.asarray(u, dtype=f32))
    exponent: Any = f32(1) / (f32(eta) + f32(1))  # np.float32, which typeshed's pow does not take as a float
    low = pow(f32(2) * u, exponent) - f32(1)
    high = f32(1) - pow(f32(2) * (f32(1) - u), exponent)
    out: np.ndarray = np.where(u < f32(0.5), low, high).astype(f32)
    return out


def polynomial_mutate(x: npt.ArrayLike, u: npt.ArrayLike, eta: float | np.floating[Any]) -> np.ndarray:
    return clamp(np.asarray(x, dtype=f32) + polynomial_delta(u, eta), 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# CPPN mutation
class _Params:
    """CPPNMutation as float32 values and a list of allowed activation ids."""

    p_weight: np.float32
    eta: np.float32
    weight_min: np.float32
    weight_max: np.float32
    p_activation: np.float32
    p_add_edge: np.float32
    p_delete_edge: np.float32
    p_add_node: np.float32
    p_delete_node: np.float32

    def __init__(self, params: CPPNMutation):
        core = params.core_params()
        for name in (
            "p_weight",
            "eta",
            "weight_min",
            "weight_max",
            "p_activation",
            "p_add_edge",
            "p_delete_edge",
            "p_add_node",
            "p_delete_node",
        ):
            setattr(self, name, f32(getattr(core, name)))
        self.allowed = [a for a in range(32) if core.activations >> a & 1]
        self.attempts = core.add_edge_attempts
        self.rejection = params.add_edge == "rejection"


def _mutate_weight(w: np.float32, u: np.float32, p: _Params) -> np.float32:
    span = p.weight_max - p.weight_min
    x = (w - p.weight_min) / span
    y = polynomial_mutate(x, u, p.eta)[0]
    out: np.float32 = f32(clamp(p.weight_min + y * span, p.weight_min, p.weight_max))
    return out


def _reaches(edges: list[list[Any]], start: int, target: int) -> bool:
    """Whether `target` can be reached from `start` along the edges (a node reaches itself)."""
    seen, todo = {start}, [start]
    while todo:
        u = todo.pop()
        if u == target:
            return True
        for s, d, _ in edges:
            if s == u and d not in seen:
                seen.add(d)
                todo.append(d)
    return False


def ancestors(edges: list[list[Any]], node: int) -> set[int]:
    """`node` and every node with a path to it."""
    seen, todo = {node}, [node]
    while todo:
        v = todo.pop()
        for s, d, _ in edges:
            if d == v and s not in seen:
                seen.add(s)
                todo.append(s)
    return seen


def _new_weight(rng: PhiloxStream, p: _Params) -> np.float32:
    w = p.weight_min + (p.weight_max - p.weight_min) * rng.uniform()
    out: np.float32 = f32(clamp(w, p.weight_min, p.weight_max))
    return out


def _add_edge_rejection(
    acts: list[int], edges: list[list[Any]], num_outputs: int, rng: PhiloxStream, p: _Params
) -> None:
    """Pairs drawn uniformly, rejected when they duplicate an edge or close a cycle, up to p.attempts."""
    sources = len(acts) - num_outputs
    for _ in range(p.attempts):
        s = rng.below(sources)
        s = s if s < NUM_INPUTS else s + num_outputs
        d = NUM_INPUTS + rng.below(len(acts) - NUM_INPUTS)
        if any(es == s and ed == d for es, ed, _ in edges) or _reaches(edges, d, s):
            continue
        edges.append([s, d, _new_weight(rng, p)])
        return


def _add_edge_original(
    acts: list[int], edges: list[list[Any]], num_outputs: int, rng: PhiloxStream, p: _Params
) -> None:
    """The source among the non-output nodes, then the target among the non-inputs that are not its
    ancestors (nor itself), in index order; parallel edges allowed."""
    non_outputs = list(range(NUM_INPUTS)) + list(range(NUM_INPUTS + num_outputs, len(acts)))
    s = non_outputs[rng.below(len(non_outputs))]
    before = ancestors(edges, s)
    candidates = [v for v in range(NUM_INPUTS, len(acts)) if v not in before]
    if candidates:
        d = candidates[rng.below(len(candidates))]
        edges.append([s, d, _new_weight(rng, p)])


def mutate_genome(
    acts: list[int],
    edges: list[list[Any]],
    num_outputs: int,
    max_nodes: int,
    max_edges: int,
    rng: PhiloxStream,
    p: _Params,
) -> int:
    """Mutates one genome in place: acts (activation id per node), edges ([src, dst, float32 weight]).
    Returns the BLOCKED_* bits of the growing operators that fired but that capacity blocked."""
    first_hidden = NUM_INPUTS + num_outputs
    blocked = 0
    for e in edges:  # weights
        if rng.uniform() < p.p_weight:
            e[2] = _mutate_weight(e[2], rng.uniform(), p)
    for i in range(NUM_INPUTS, len(acts)):  # activations
        if rng.uniform() < p.p_activation:
            acts[i] = p.allowed[rng.below(len(p.allowed))]
    if rng.uniform() < p.p_add_edge:  # add connection
        if len(edges) >= max_edges:
            blocked |= BLOCKED_ADD_EDGE
        elif p.rejection:
            _add_edge_rejection(acts, edges, num_outputs, rng, p)
        else:
            _add_edge_original(acts, edges, num_outputs, rng, p)
    if rng.uniform() < p.p_delete_edge and edges:  # delete connection
        del edges[rng.below(len(edges))]
    add_node = rng.uniform() < p.p_add_node and bool(edges)
    if add_node and (len(acts) >= max_nodes or len(edges) >= max_edges):
        blocked |= BLOCKED_ADD_NODE
    elif add_node:
        k = rng.below(len(edges))
        h = len(acts)
        acts.append(p.allowed[rng.below(len(p.allowed))])
        s, d, w = edges[k]
        edges[k] = [s, h, w]
        edges.append([h, d, w])
    if rng.uniform() < p.p_delete_node and len(acts) > first_hidden:  # delete node
        v = first_hidden + rng.below(len(acts) - first_hidden)
        edges[:] = [[s - (s > v), d - (d > v), w] for s, d, w in edges if s != v and d != v]
        del acts[v]
    return blocked


def mutate_cppn(
    pop: CPPNPopulation,
    *,
    seed: int,
    generation: int,
    params: CPPNMutation = CPPNMutation(),
    genome_offset: int = 0,
    blocked: list[int] | None = None,
) -> CPPNPopulation:
    """The children of a valid population (not modified), as a new CPU population. Padding entries are
    zero, so compare live entries only. `blocked`, when given, receives each child's BLOCKED_* bits."""
    host = pop.to("cpu")
    p = _Params(params)
    out = CPPNPopulation.empty(pop.batch, pop.num_outputs, max_nodes=pop.max_nodes, max_edges=pop.max_edges)
    for b in range(pop.batch):
        n, m = int(host.num_nodes[b]), int(host.num_edges[b])
        acts = host.node_activation[b, :n].tolist()
        edges = [
            [s, d, f32(w)]
            for s, d, w in zip(
                host.edge_src[b, :m].tolist(), host.edge_dst[b, :m].tolist(), host.edge_weight[b, :m].numpy()
            )
        ]
        rng = PhiloxStream(seed, generation, genome_offset + b, PURPOSE_CPPN_MUTATION)
        flags = mutate_genome(acts, edges, pop.num_outputs, pop.max_nodes, pop.max_edges, rng, p)
        if blocked is not None:
            blocked.append(flags)
        out.num_nodes[b] = len(acts)
        out.num_edges[b] = len(edges)
        out.node_activation[b, : len(acts)] = torch.tensor(acts, dtype=torch.int32)
        if edges:
            out.edge_src[b, : len(edges)] = torch.tensor([e[0] for e in edges], dtype=torch.int32)
            out.edge_dst[b, : len(edges)] = torch.tensor([e[1] for e in edges], dtype=torch.int32)
            out.edge_weight[b, : len(edges)] = torch.from_numpy(np.array([e[2] for e in edges], dtype=f32))
    return out


# --------------------------------------------------------------------------------------------------
# Direct-encoding genomes
def init_direct(batch: int, channels: int, height: int, width: int, *, seed: int) -> np.ndarray:
    """The starting genes, float32 [B, C, H, W]: gene g of genome b is uniform(word g of (0, b, init))."""
    genes = channels * height * width
    rows = [uniform(gene_words(seed, 0, b, PURPOSE_PIXEL_INIT, genes)) for b in range(batch)]
    return np.array(rows, dtype=f32).reshape(batch, channels, height, width)


def _mutate_row(x: np.ndarray, seed: int, generation: int, genome: int, rate: np.float32, eta: float) -> np.ndarray:
    decide = uniform(gene_words(seed, generation, genome, PURPOSE_PIXEL_DECIDE, x.size)) < rate
    u = uniform(gene_words(seed, generation, genome, PURPOSE_PIXEL_DELTA, x.size))
    return np.where(decide, polynomial_mutate(x, u, eta), x).astype(f32)


def _sbx_betaq(room: np.ndarray, diff: np.ndarray, u: np.ndarray, eta_c: float) -> np.ndarray:
    beta = f32(1) + f32(2) * room / diff
    power: Any = -(f32(eta_c) + f32(1))  # np.float32, which typeshed's pow does not take as a float
    alpha = f32(2) - pow(beta, power)
    exponent: Any = f32(1) / (f32(eta_c) + f32(1))
    inside = pow(u * alpha, exponent)
    outside = pow(f32(1) / (f32(2) - u * alpha), exponent)
    return np.where(u <= f32(1) / alpha, inside, outside).astype(f32)


def sbx_rows(
    a: np.ndarray, b: np.ndarray, seed: int, generation: int, first: int, eta_c: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bounded SBX of every gene of two children (genes whose values differ by at most float epsilon are
    kept)."""
    genes = a.size
    u = uniform(gene_words(seed, generation, first, PURPOSE_SBX_SPREAD, genes))
    swap = uniform(gene_words(seed, generation, first, PURPOSE_SBX_SWAP, genes)) < f32(0.5)
    y1, y2 = np.minimum(a, b), np.maximum(a, b)
    diff = y2 - y1
    active = diff > SBX_MIN_DISTANCE
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inactive genes may divide by zero
        c1 = clamp(f32(0.5) * ((y1 + y2) - _sbx_betaq(y1, diff, u, eta_c) * diff), 0.0, 1.0)
        c2 = clamp(f32(0.5) * ((y1 + y2) + _sbx_betaq(f32(1) - y2, diff, u, eta_c) * diff), 0.0, 1.0)
    new_a = np.where(active, np.where(swap, c2, c1), a).astype(f32)
    new_b = np.where(active, np.where(swap, c1, c2), b).astype(f32)
    return new_a, new_b


def mutate_direct(
    genes: np.ndarray,
    *,
    seed: int,
    generation: int,
    params: DirectMutation = DirectMutation(),
    rate: float | None = None,
    genome_offset: int = 0,
) -> np.ndarray:
    """The children of float32 genes [B, ...] (not modified): SBX of pairs first when params.crossover,
    then polynomial mutation of each gene with probability rate (default params.rate)."""
    core = params.core_params(rate)
    shape = genes.shape
    rows = np.array(genes, dtype=f32).reshape(shape[0], -1)
    rate32 = f32(core.rate)
    if core.crossover:
        for a in range(0, shape[0] - 1, 2):
            first = genome_offset + a
            crosses = uniform(philox4x32_10([generation, first, PURPOSE_SBX_PAIR, 0], seed_key(seed))[0])
            if crosses < f32(core.crossover_rate):
                rows[a], rows[a + 1] = sbx_rows(rows[a], rows[a + 1], seed, generation, first, core.eta_c)
    for b in range(shape[0]):
        rows[b] = _mutate_row(rows[b], seed, generation, genome_offset + b, rate32, core.eta)
    return rows.reshape(shape)
