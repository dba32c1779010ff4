// Validation and compilation of one CPPN genome into an evaluation program, shared by both backends.
//
// The program lists, in topological order, the non-input nodes that an output depends on, each with its
// activation and its incoming edges in storage order (so sums are accumulated in the same order on every
// backend and in the NumPy reference). Values live in "slots": slots 0..3 are the inputs, slot 4 + i the
// i-th step. Nodes that no output depends on are skipped: they cannot change the image.
#pragma once

#include <cstdint>

#include "fooling/activations.h"
#include "fooling/common.h"
#include "fooling/genome.h"

namespace fooling {

// Per-genome program storage, as offsets into one int32 workspace row (floats are stored bit-cast).
struct ProgramLayout {
  int32_t max_nodes;
  int32_t max_edges;

  // Program (read by the renderer).
  FOOLING_HD int32_t n_steps() const { return 0; }
  FOOLING_HD int32_t out_slot() const { return 1; }                                // [3]
  FOOLING_HD int32_t step_act() const { return 4; }                                // [max_nodes]
  FOOLING_HD int32_t step_begin() const { return step_act() + max_nodes; }         // [max_nodes + 1]
  FOOLING_HD int32_t in_src_slot() const { return step_begin() + max_nodes + 1; }  // [max_edges]
  FOOLING_HD int32_t in_weight() const { return in_src_slot() + max_edges; }       // [max_edges]
  FOOLING_HD int32_t program_size() const { return in_weight() + max_edges; }
  // Scratch (used while compiling only).
  FOOLING_HD int32_t in_begin() const { return program_size(); }                // [max_nodes + 1]
  FOOLING_HD int32_t in_edges() const { return in_begin() + max_nodes + 1; }    // [max_edges]
  FOOLING_HD int32_t out_begin() const { return in_edges() + max_edges; }       // [max_nodes + 1]
  FOOLING_HD int32_t out_edges() const { return out_begin() + max_nodes + 1; }  // [max_edges]
  FOOLING_HD int32_t indegree() const { return out_edges() + max_edges; }       // [max_nodes]
  FOOLING_HD int32_t order() const { return indegree() + max_nodes; }           // [max_nodes]
  FOOLING_HD int32_t needed() const { return order() + max_nodes; }             // [max_nodes]
  FOOLING_HD int32_t slot_of() const { return needed() + max_nodes; }           // [max_nodes]
  FOOLING_HD int32_t row_size() const { return slot_of() + max_nodes; }
};

// Finite iff the exponent bits are not all ones.
FOOLING_HD bool is_finite(float w) { return (math::float_to_bits(w) & 0x7f800000u) != 0x7f800000u; }

FOOLING_HD GenomeError validate_counts_and_fields(const CppnBatchView& g, int32_t b) {
  const int32_t n = g.num_nodes[b];
  const int32_t m = g.num_edges[b];
  if (n < g.first_hidden() || n > g.max_nodes) return {kNodeCountOutOfRange, -1, n};
  if (m < 0 || m > g.max_edges) return {kEdgeCountOutOfRange, -1, m};
  const int32_t* act = g.node_activation + static_cast<int64_t>(b) * g.max_nodes;
  for (int32_t i = kNumInputs; i < n; ++i) {
    if (act[i] < 0 || act[i] >= kNumActivations) return {kUnknownActivation, i, act[i]};
  }
  const int64_t row = static_cast<int64_t>(b) * g.max_edges;
  for (int32_t e = 0; e < m; ++e) {
    const int32_t s = g.edge_src[row + e];
    const int32_t d = g.edge_dst[row + e];
    if (s < 0 || s >= n) return {kEdgeSrcOutOfRange, e, s};
    if (d < 0 || d >= n) return {kEdgeDstOutOfRange, e, d};
    if (d < kNumInputs) return {kEdgeIntoInput, e, d};
    if (!is_finite(g.edge_weight[row + e])) return {kNonFiniteWeight, e, 0};
  }
  return {kGenomeOk, 0, 0};
}

// Validates genome b and writes its program into `w` (one workspace row of layout.row_size() ints).
FOOLING_HD GenomeError compile_program(const CppnBatchView& g, int32_t b, int32_t* w) {
  const GenomeError err = validate_counts_and_fields(g, b);
  if (err.code != kGenomeOk) {
    w[0] = 0;
    return err;
  }
  const ProgramLayout L{g.max_nodes, g.max_edges};
  const int32_t n = g.num_nodes[b];
  const int32_t m = g.num_edges[b];
  const int64_t row = static_cast<int64_t>(b) * g.max_edges;
  const int32_t* src = g.edge_src + row;
  const int32_t* dst = g.edge_dst + row;
  const float* weight = g.edge_weight + row;
  const int32_t* act = g.node_activation + static_cast<int64_t>(b) * g.max_nodes;

  int32_t* in_begin = w + L.in_begin();
  int32_t* in_edges = w + L.in_edges();
  int32_t* out_begin = w + L.out_begin();
  int32_t* out_edges = w + L.out_edges();
  int32_t* indeg = w + L.indegree();
  int32_t* order = w + L.order();
  int32_t* needed = w + L.needed();
  int32_t* slot_of = w + L.slot_of();

  // Stable counting sorts of the edges by destination and by source.
  for (int32_t i = 0; i <= n; ++i) {
    in_begin[i] = 0;
    out_begin[i] = 0;
  }
  for (int32_t e = 0; e < m; ++e) {
    in_begin[dst[e] + 1] += 1;
    out_begin[src[e] + 1] += 1;
  }
  for (int32_t i = 0; i < n; ++i) {
    in_begin[i + 1] += in_begin[i];
    out_begin[i + 1] += out_begin[i];
  }
  for (int32_t i = 0; i < n; ++i) {
    indeg[i] = in_begin[i];  // reused as fill cursors
    order[i] = out_begin[i];
  }
  for (int32_t e = 0; e < m; ++e) {
    in_edges[indeg[dst[e]]++] = e;
    out_edges[order[src[e]]++] = e;
  }

  // Kahn's algorithm, FIFO from nodes in index order: a deterministic topological order.
  int32_t head = 0, tail = 0;
  for (int32_t i = 0; i < n; ++i) {
    indeg[i] = in_begin[i + 1] - in_begin[i];
    if (indeg[i] == 0) order[tail++] = i;
  }
  while (head < tail) {
    const int32_t u = order[head++];
    for (int32_t k = out_begin[u]; k < out_begin[u + 1]; ++k) {
      const int32_t v = dst[out_edges[k]];
      if (--indeg[v] == 0) order[tail++] = v;
    }
  }
  if (tail < n) {
    int32_t culprit = 0;
    for (int32_t i = n - 1; i >= 0; --i) {
      if (indeg[i] > 0) culprit = i;
    }
    w[0] = 0;
    return {kCycle, culprit, n - tail};
  }

  // Nodes the outputs depend on: reverse topological sweep from the outputs.
  for (int32_t i = 0; i < n; ++i) needed[i] = 0;
  for (int32_t o = 0; o < g.num_outputs; ++o) needed[kNumInputs + o] = 1;
  for (int32_t k = n - 1; k >= 0; --k) {
    const int32_t v = order[k];
    if (!needed[v]) continue;
    for (int32_t j = in_begin[v]; j < in_begin[v + 1]; ++j) needed[src[in_edges[j]]] = 1;
  }

  // Emit the program.
  for (int32_t i = 0; i < kNumInputs; ++i) slot_of[i] = i;
  int32_t* step_act = w + L.step_act();
  int32_t* step_begin = w + L.step_begin();
  int32_t* in_src_slot = w + L.in_src_slot();
  float* in_weight = reinterpret_cast<float*>(w + L.in_weight());
  int32_t steps = 0, edges = 0;
  for (int32_t k = 0; k < n; ++k) {
    const int32_t v = order[k];
    if (v < kNumInputs || !needed[v]) continue;
    slot_of[v] = kNumInputs + steps;
    step_act[steps] = act[v];
    step_begin[steps] = edges;
    for (int32_t j = in_begin[v]; j < in_begin[v + 1]; ++j) {
      const int32_t e = in_edges[j];
      in_src_slot[edges] = slot_of[src[e]];
      in_weight[edges] = weight[e];
      ++edges;
    }
    ++steps;
  }
  step_begin[steps] = edges;
  for (int32_t o = 0; o < 3; ++o) {
    w[L.out_slot() + o] = o < g.num_outputs ? slot_of[kNumInputs + o] : 0;
  }
  w[0] = steps;
  return {kGenomeOk, 0, 0};
}

}  // namespace fooling
