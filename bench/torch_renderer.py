"""A batched PyTorch renderer of CPPN populations: what a competent user would write without fooling_ext.

It is the baseline the core is measured against, so it is written to be fast, not to be simple:

- each genome is compiled on the host once per call into a topological order of its non-input nodes
  ("steps"), padded to the longest genome of the batch; step k of every genome is then evaluated at once;
- node values live in one tensor [slots, genomes, pixels] (slots 0..3 are the inputs x, y, d, bias, slot
  4 + k holds step k), so a step gathers its incoming values with one `index_select` over contiguous rows
  (padded to the widest node of that step) and sums them with one batched matrix product written straight
  into its own slot;
- each activation is applied in place to the genomes that use it at that step only (indices prepared on the
  host, so a CUDA run never waits on the device; no indexing when all genomes share the activation);
- the work is split into chunks of genomes x pixel tiles, small enough on a CPU for the node values to stay
  in cache, large enough on a GPU to fill the device.

It uses torch.sin / torch.exp / torch.sigmoid, so its images match the core's within float32 rounding
amplified by the network (the benchmarks check this), not bit for bit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fooling_ext.core.cppn import NUM_INPUTS, CPPNPopulation
from fooling_ext.core.reference.render import HLS_SECTORS

SINE, SIGMOID, GAUSSIAN, LINEAR = range(4)

# Genomes x pixels evaluated at once. On a CPU, small enough that a chunk's node values stay mostly in cache:
# on the 2-core benchmark machine, 2^16 (one 256 x 256 image at a time) rendered the colour workload 1.3x
# faster than 2^14 or 2^18 and 2.5x faster than 2^20. On a GPU, large enough to fill the device with few
# kernel launches.
DEFAULT_CHUNK_ELEMENTS = {"cpu": 2**16, "cuda": 2**24}


def _activate_(act: int, p: torch.Tensor) -> torch.Tensor:
    """The paper's activation `act`, in place on p."""
    if act == SINE:
        return p.sin_()
    if act == SIGMOID:
        return p.sigmoid_().sub_(0.5).mul_(2.0)
    if act == GAUSSIAN:
        return p.square_().neg_().exp_()
    return p.clamp_(-3.0, 3.0).div_(3.0)


@dataclass
class _Plan:
    """Host-side description of a chunk of genomes, as tensors and index lists ready for the device."""

    steps: int
    src_rows: Sequence[torch.Tensor]  # per step, int64 [genomes * fan_in]: rows of the incoming values
    weights: Sequence[torch.Tensor]  # per step, float32 [genomes, 1, fan_in]; zero for padding
    act_rows: list[list[tuple[int, torch.Tensor | None]]]  # per step: (activation, genomes using it or None: all)
    out_slots: torch.Tensor  # int64 [genomes, outputs]


def _topological_steps(num_nodes: int, src: list[int], dst: list[int]) -> list[int]:
    """Non-input nodes in a topological order (Kahn's algorithm)."""
    indegree = [0] * num_nodes
    consumers: list[list[int]] = [[] for _ in range(num_nodes)]
    for s, d in zip(src, dst):
        indegree[d] += 1
        consumers[s].append(d)
    ready = deque(v for v in range(num_nodes) if indegree[v] == 0)
    order = []
    while ready:
        v = ready.popleft()
        order.append(v)
        for d in consumers[v]:
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    if len(order) != num_nodes:
        raise ValueError("genome has a cycle")
    return [v for v in order if v >= NUM_INPUTS]


def _plan(pop: CPPNPopulation, device: torch.device) -> _Plan:
    host = pop.to("cpu")
    batch, steps = host.batch, int(host.num_nodes.max()) - NUM_INPUTS
    num_nodes, num_edges = host.num_nodes.tolist(), host.num_edges.tolist()
    activations = host.node_activation.tolist()
    all_src, all_dst, all_weight = host.edge_src.tolist(), host.edge_dst.tolist(), host.edge_weight.tolist()
    step_src: list[list[list[int]]] = []  # [genome][step][edge]: slot of the edge's source
    step_weight: list[list[list[float]]] = []
    step_act = [[LINEAR] * batch for _ in range(steps)]  # padding steps: linear of a zero sum
    out_slots = []
    for b in range(batch):
        m = num_edges[b]
        src, dst, weight = all_src[b][:m], all_dst[b][:m], all_weight[b][:m]
        order = _topological_steps(num_nodes[b], src, dst)
        slot = list(range(NUM_INPUTS)) + [0] * (num_nodes[b] - NUM_INPUTS)
        for k, v in enumerate(order):
            slot[v] = NUM_INPUTS + k
            step_act[k][b] = activations[b][v]
        srcs: list[list[int]] = [[] for _ in order]
        weights: list[list[float]] = [[] for _ in order]
        for s, d, w in zip(src, dst, weight):  # storage order, as the core sums
            srcs[slot[d] - NUM_INPUTS].append(slot[s])
            weights[slot[d] - NUM_INPUTS].append(w)
        step_src.append(srcs)
        step_weight.append(weights)
        out_slots.append([slot[NUM_INPUTS + o] for o in range(pop.num_outputs)])
    # Per step k, [genomes, fan_in_k] padded to the widest node of that step; padding reads slot 0 with
    # weight 0. Flat rows index the [slots * genomes, pixels] view of the node values. Built as flat lists
    # and moved in one transfer each, because tensors made step by step cost more than the steps themselves.
    flat_rows: list[int] = []
    flat_weights: list[float] = []
    fan_ins = []
    for k in range(steps):
        srcs = [genome[k] if k < len(genome) else [] for genome in step_src]
        weights = [genome[k] if k < len(genome) else [] for genome in step_weight]
        fan_in = max(1, max(len(e) for e in srcs))
        fan_ins.append(fan_in)
        for b, (e, w) in enumerate(zip(srcs, weights)):
            flat_rows += [slot * batch + b for slot in e] + [b] * (fan_in - len(e))
            flat_weights += w + [0.0] * (fan_in - len(w))
    sizes = [batch * f for f in fan_ins]
    src_rows = torch.tensor(flat_rows, dtype=torch.int64).to(device).split(sizes)
    step_weights = [
        w.view(batch, 1, f)
        for w, f in zip(torch.tensor(flat_weights, dtype=torch.float32).to(device).split(sizes), fan_ins)
    ]
    act_rows = []
    for acts in step_act:
        users: dict[int, list[int]] = {}
        for b, act in enumerate(acts):
            users.setdefault(act, []).append(b)
        act_rows.append(
            [
                (act, None if len(rows) == batch else torch.tensor(rows, dtype=torch.int64).to(device))
                for act, rows in sorted(users.items())
            ]
        )
    out_slots = torch.tensor(out_slots, dtype=torch.int64, device=device)
    return _Plan(steps, src_rows, step_weights, act_rows, out_slots)


def _pixel_inputs(height: int, width: int, device: torch.device) -> torch.Tensor:
    """[4, H * W]: x, y on [-1, 1], d = distance from the centre, bias = 1."""

    def axis(n: int) -> torch.Tensor:
        if n == 1:
            return torch.zeros(1, device=device)
        return (2 * torch.arange(n, device=device) - (n - 1)).float() / (n - 1)

    y, x = torch.meshgrid(axis(height), axis(width), indexing="ij")
    d = torch.sqrt(x * x + y * y)
    return torch.stack([x, y, d, torch.ones_like(d)]).view(NUM_INPUTS, height * width)


def _hue_to_rgb(h: torch.Tensor, c: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Hue h, chroma c and offset m (each in [0, 1]) to RGB [3, ...] by the chroma formula; H = 1 is the hue of
    H = 0."""
    hp = h * 6.0
    x = c * (1.0 - (torch.remainder(hp, 2.0) - 1.0).abs())
    sector = hp.long().remainder_(6)
    zero = torch.zeros_like(c)
    table = torch.stack(
        [
            torch.stack([c, x, zero]),
            torch.stack([x, c, zero]),
            torch.stack([zero, c, x]),
            torch.stack([zero, x, c]),
            torch.stack([x, zero, c]),
            torch.stack([c, zero, x]),
        ]
    )  # [sector, channel, ...]
    rgb = table.gather(0, sector.unsqueeze(0).unsqueeze(0).expand(1, 3, *sector.shape)).squeeze(0)
    return (rgb + m).clamp_(0.0, 1.0)


def _hls_to_rgb(h: torch.Tensor, l: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # noqa: E741 - the channel names of the colour model
    c = (1.0 - (2.0 * l - 1.0).abs()) * s
    return _hue_to_rgb(h, c, l - 0.5 * c)


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    c = v * s
    return _hue_to_rgb(h, c, v - c)


# OpenCV's HLS -> BGR sector table (fooling_ext.core.reference.render.HLS_SECTORS), reordered to R, G, B.
_HLS8_RGB_ROWS = torch.tensor([[row[2], row[1], row[0]] for row in HLS_SECTORS])


def _hls8_to_rgb(h: torch.Tensor, l: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # noqa: E741 - the channel names of the colour model
    """The colour mode hls8: the original code's bytes trunc(255 a) through OpenCV's 8-bit HLS -> RGB."""
    hb, lb, sb = ((v * 255.0).int() for v in (h, l, s))
    lum, sat = lb.float() / 255.0, sb.float() / 255.0
    p2 = torch.where(lum <= 0.5, lum * (1.0 + sat), lum + sat - lum * sat)
    p1 = 2.0 * lum - p2
    hue = hb.float() * (6.0 / 180.0)
    hue = torch.where(hue >= 6.0, hue - 6.0, hue)  # bytes reach 8.5: one wrap
    sector = hue.long()
    frac = hue - sector
    table = torch.stack([p2, p1, p1 + (p2 - p1) * (1.0 - frac), p1 + (p2 - p1) * frac])
    rows = _HLS8_RGB_ROWS.to(sector.device)[sector].movedim(-1, 0)  # [3, ...]: which of table is R, G, B
    rgb = torch.where(sat == 0.0, lum, table.gather(0, rows))
    return torch.round(rgb * 255.0).clamp_(0.0, 255.0) / 255.0


COLOURS = {"hsl": _hls_to_rgb, "hsv": _hsv_to_rgb, "hls8": _hls8_to_rgb}


def _render_chunk(plan: _Plan, num_outputs: int, inputs: torch.Tensor, out: torch.Tensor, color: str) -> None:
    batch, pixels = out.shape[0], inputs.shape[1]
    values = torch.empty(NUM_INPUTS + plan.steps, batch, pixels, device=out.device)
    values[:NUM_INPUTS] = inputs.unsqueeze(1)
    flat = values.view(-1, pixels)
    for k in range(plan.steps):
        gathered = flat.index_select(0, plan.src_rows[k]).view(batch, -1, pixels)
        acc = values[NUM_INPUTS + k]
        torch.bmm(plan.weights[k], gathered, out=acc.view(batch, 1, pixels))
        for act, rows in plan.act_rows[k]:
            if rows is None:
                _activate_(act, acc)
            else:
                acc[rows] = _activate_(act, acc[rows])
    genome = torch.arange(batch, device=out.device).unsqueeze(1)
    outputs = values[plan.out_slots, genome].abs_().clamp_(0.0, 1.0)  # [genomes, outputs, pixels]
    if num_outputs == 1:
        out.copy_(outputs)
    else:
        out.copy_(COLOURS[color](*outputs.unbind(1)).transpose(0, 1))


def render_torch(
    pop: CPPNPopulation,
    height: int,
    width: int | None = None,
    *,
    chunk_elements: int | None = None,
    color: str = "hsl",
) -> torch.Tensor:
    """Render `pop` (normalised coordinates; colour as fooling_ext.render's `color`: the three outputs as (H, L, S)
    or (H, S, V), or hls8) into float32 [B, C, H, W] on the population's device.

    chunk_elements bounds genomes x pixels evaluated at once (default: DEFAULT_CHUNK_ELEMENTS of the device):
    the image is split into pixel tiles and the population into genome chunks of that many elements.
    All genome chunks are planned before any is rendered, so that on CUDA the host never waits for the device.
    """
    if color not in COLOURS:
        raise ValueError(f"color must be one of {', '.join(COLOURS)}, got {color!r}")
    width = height if width is None else width
    device = pop.device
    chunk_elements = chunk_elements or DEFAULT_CHUNK_ELEMENTS[device.type]
    out = torch.empty(pop.batch, pop.num_outputs, height * width, device=device)
    if pop.batch == 0:
        return out.view(pop.batch, pop.num_outputs, height, width)
    inputs = _pixel_inputs(height, width, device)
    pixels = height * width
    tile = min(pixels, chunk_elements)
    genomes = max(1, chunk_elements // tile)
    starts = range(0, pop.batch, genomes)
    plans = [_plan(pop[start : start + genomes], device) for start in starts]
    for start, plan in zip(starts, plans):
        for p0 in range(0, pixels, tile):
            target = out[start : start + genomes, :, p0 : p0 + tile]
            _render_chunk(plan, pop.num_outputs, inputs[:, p0 : p0 + tile], target, color)
    return out.view(pop.batch, pop.num_outputs, height, width)
