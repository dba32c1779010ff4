// Batched mutation of CPPN and pixel genomes, and parent selection, for the CPU and CUDA backends.
//
// Every random decision comes from Philox4x32-10 (philox.h) keyed by the run seed, with the counter
// (generation, genome, purpose, index); genome is the global child index (genome_offset + row). The
// per-genome and per-gene functions below are written once for both backends, so the CPU and CUDA
// backends produce bit-identical populations, and fooling_ext/reference_mutation.py mirrors them draw by
// draw as the test oracle.
#pragma once

#include <cstdint>
#include <string>

#include "fooling/activations.h"
#include "fooling/common.h"
#include "fooling/genome.h"
#include "fooling/philox.h"
#include "fooling/program.h"

namespace fooling {

constexpr uint32_t kAllActivations = (1u << kNumActivations) - 1u;

// How "add connection" picks its pair.
enum AddEdgeMode : int32_t {
  // As the original (sferes2 gen_dnn_ff _add_conn): the source uniform among the inputs and hidden nodes, then
  // the target uniform among the non-input nodes that are neither the source nor one of its ancestors; no
  // target left: nothing is added. A connection that duplicates an existing one is allowed (parallel edges).
  kAddEdgeOriginal = 0,
  // Pairs (source, destination) drawn uniformly and rejected when they duplicate an edge or close a cycle, up
  // to add_edge_attempts pairs (the rule of fooling_ext before kAddEdgeOriginal; runs recorded with it resume
  // with it).
  kAddEdgeRejection = 1,
};

// What capacity blocked in one genome's mutation (bits of the per-genome `blocked` output).
enum BlockedMutation : int32_t {
  kBlockedAddEdge = 1,  // add connection fired with the edges at capacity
  kBlockedAddNode = 2,  // add node fired on a genome with an edge, but no free node or edge slot
};

// CPPN mutation, as in the original code (sferes2's gen_dnn with the paper's rates). Operators run in this
// order on each genome: weights, activations, add connection, delete connection, add node, delete node.
struct CppnMutationParams {
  float p_weight = 0.1f;      // per live edge: polynomial mutation of its weight
  float eta = 15.0f;          // distribution index of the polynomial mutation
  float weight_min = -10.0f;  // weights live in [weight_min, weight_max]
  float weight_max = 10.0f;
  float p_activation = 0.1f;               // per non-input node: redraw its activation from `activations`
  uint32_t activations = kAllActivations;  // bit i set: activation i may be drawn
  float p_add_edge = 0.5f;                 // add one feed-forward connection (see AddEdgeMode)
  float p_delete_edge = 0.3f;              // delete one connection
  float p_add_node = 0.5f;                 // split one connection with a new hidden node
  float p_delete_node = 0.2f;              // delete one hidden node and its connections
  int32_t add_edge = 0;                    // AddEdgeMode: how "add connection" picks its pair
  int32_t add_edge_attempts = 10;          // kAddEdgeRejection: candidate pairs tried before adding is given up
};

// Direct (pixel) encoding: genes in [0, 1]. Optional SBX crossover (Deb & Agrawal 1995, bounded form)
// of children (0, 1), (2, 3), ... before mutation, as in the original code's evo_float.
struct PixelMutationParams {
  float rate = 0.1f;            // per gene: polynomial mutation
  float eta = 15.0f;            // distribution index of the polynomial mutation
  int32_t crossover = 0;        // 1: SBX on each pair of children first
  float crossover_rate = 0.5f;  // per pair: apply SBX
  float eta_c = 10.0f;          // distribution index of SBX
};

// Counter word 2 of every draw, so that draws made for different purposes never coincide.
enum RandomPurpose : uint32_t {
  kPurposeCppnMutation = 0,  // one sequential stream per (generation, genome)
  kPurposePixelInit = 1,     // initial gene values
  kPurposePixelDecide = 2,   // does gene g mutate
  kPurposePixelDelta = 3,    // its polynomial draw
  kPurposeSbxPair = 4,       // does the pair cross over (counter genome: the pair's first child)
  kPurposeSbxGene = 5,       // unused since SBX crosses every gene, as the original does (kept for numbering)
  kPurposeSbxSpread = 6,     // SBX spread draw
  kPurposeSbxSwap = 7,       // which child gets which offspring value
};

// Genes are drawn in groups of four: gene g uses word g % 4 of the block with counter index g / 4.
constexpr int32_t kGenesPerBlock = 4;
// Largest genome a pixel call takes: gene indices stay within int32 on the device.
constexpr int64_t kMaxGenesPerGenome = (int64_t{1} << 31) - 1;
// SBX leaves a gene alone when the parents agree to within this (float epsilon, as evo_float).
constexpr float kSbxMinDistance = 1.1920928955078125e-7f;

// ---------------------------------------------------------------------------------------------
// Parameter and call checks (host). Each returns "" or a message that names the offending field.
std::string check_cppn_mutation_params(const CppnMutationParams& p);
std::string check_pixel_mutation_params(const PixelMutationParams& p);
std::string check_cppn_batch(const CppnBatchView& g);
// The genome counter word is 32 bits: genome_offset + batch must not exceed 2^32.
std::string check_genome_range(int64_t batch, int64_t genome_offset);
std::string check_pixel_batch(int64_t batch, int64_t genes_per_genome, int64_t genome_offset);
// Parents and children must share num_outputs and capacities.
std::string check_select_call(const CppnBatchView& parents, const CppnBatchView& children);

// ---------------------------------------------------------------------------------------------
// Polynomial mutation (Deb & Goyal 1996, the form of sferes2's evo_float): x in [0, 1], u uniform in [0, 1).
FOOLING_HD float polynomial_delta(float u, float eta) {
  const float exponent = 1.0f / (eta + 1.0f);
  return u < 0.5f ? math::pow(2.0f * u, exponent) - 1.0f : 1.0f - math::pow(2.0f * (1.0f - u), exponent);
}

FOOLING_HD float polynomial_mutate(float x, float u, float eta) {
  return math::clamp(x + polynomial_delta(u, eta), 0.0f, 1.0f);
}

// A weight is mutated on its position in [weight_min, weight_max] mapped to [0, 1], as evo_float genes
// are; a weight outside the range (from another initialisation) comes back inside it.
FOOLING_HD float mutate_weight(float w, float u, const CppnMutationParams& p) {
  const float span = p.weight_max - p.weight_min;
  const float x = (w - p.weight_min) / span;
  const float y = polynomial_mutate(x, u, p.eta);
  return math::clamp(p.weight_min + y * span, p.weight_min, p.weight_max);
}

// ---------------------------------------------------------------------------------------------
// CPPN mutation, one genome at a time.

// Per-genome scratch, as offsets into one int32 row: the out-adjacency (or, for the original rule, the
// in-adjacency) of the genome (CSR) and a search's visited flags and stack, for the cycle check of "add
// connection".
struct MutationScratchLayout {
  int32_t max_nodes;
  int32_t max_edges;
  FOOLING_HD int32_t out_begin() const { return 0; }                    // [max_nodes + 1]
  FOOLING_HD int32_t out_dst() const { return max_nodes + 1; }          // [max_edges]
  FOOLING_HD int32_t visited() const { return out_dst() + max_edges; }  // [max_nodes]
  FOOLING_HD int32_t stack() const { return visited() + max_nodes; }    // [max_nodes]
  FOOLING_HD int32_t row_size() const { return stack() + max_nodes; }
};

inline int64_t mutation_workspace_ints(int32_t max_nodes, int32_t max_edges) {
  return MutationScratchLayout{max_nodes, max_edges}.row_size();
}

// The live part of one genome's rows, with its counts as locals.
struct GenomeRows {
  int32_t* act;
  int32_t* src;
  int32_t* dst;
  float* weight;
  int32_t n;  // live nodes
  int32_t m;  // live edges
  int32_t num_outputs;
  int32_t max_nodes;
  int32_t max_edges;

  FOOLING_HD int32_t first_hidden() const { return kNumInputs + num_outputs; }

  FOOLING_HD void append_edge(int32_t s, int32_t d, float w) {
    src[m] = s;
    dst[m] = d;
    weight[m] = w;
    ++m;
  }
};

// Activation id of the k-th set bit of `mask` (k < number of set bits).
FOOLING_HD int32_t nth_activation(uint32_t mask, int32_t k) {
  for (int32_t a = 0; a < kNumActivations; ++a) {
    if (mask & (1u << a)) {
      if (k == 0) return a;
      --k;
    }
  }
  return 0;
}

FOOLING_HD int32_t count_activations(uint32_t mask) {
  int32_t count = 0;
  for (int32_t a = 0; a < kNumActivations; ++a) count += static_cast<int32_t>((mask >> a) & 1u);
  return count;
}

FOOLING_HD int32_t draw_activation(PhiloxStream& rng, uint32_t mask) {
  return nth_activation(mask, rng.next_below(count_activations(mask)));
}

FOOLING_HD bool has_edge(const GenomeRows& g, int32_t s, int32_t d) {
  for (int32_t e = 0; e < g.m; ++e) {
    if (g.src[e] == s && g.dst[e] == d) return true;
  }
  return false;
}

// Out-adjacency of the live edges: the destinations of node v's out-edges are
// out_dst[out_begin[v] .. out_begin[v + 1]).
FOOLING_HD void build_out_adjacency(const GenomeRows& g, const MutationScratchLayout& L, int32_t* scratch) {
  int32_t* begin = scratch + L.out_begin();
  int32_t* out_dst = scratch + L.out_dst();
  int32_t* cursor = scratch + L.visited();  // free until the search runs
  for (int32_t v = 0; v <= g.n; ++v) begin[v] = 0;
  for (int32_t e = 0; e < g.m; ++e) begin[g.src[e] + 1] += 1;
  for (int32_t v = 0; v < g.n; ++v) begin[v + 1] += begin[v];
  for (int32_t v = 0; v < g.n; ++v) cursor[v] = begin[v];
  for (int32_t e = 0; e < g.m; ++e) out_dst[cursor[g.src[e]]++] = g.dst[e];
}

// Whether `target` can be reached from `from` along the edges (a node reaches itself). Each node is pushed
// at most once, so the stack never holds more than n entries.
FOOLING_HD bool reaches(const GenomeRows& g, const MutationScratchLayout& L, int32_t* scratch, int32_t from,
                        int32_t target) {
  if (from == target) return true;
  const int32_t* begin = scratch + L.out_begin();
  const int32_t* out_dst = scratch + L.out_dst();
  int32_t* visited = scratch + L.visited();
  int32_t* stack = scratch + L.stack();
  for (int32_t v = 0; v < g.n; ++v) visited[v] = 0;
  int32_t top = 0;
  stack[top++] = from;
  visited[from] = 1;
  while (top > 0) {
    const int32_t u = stack[--top];
    for (int32_t k = begin[u]; k < begin[u + 1]; ++k) {
      const int32_t v = out_dst[k];
      if (v == target) return true;
      if (!visited[v]) {
        visited[v] = 1;
        stack[top++] = v;
      }
    }
  }
  return false;
}

// Add connection, rejection rule (kAddEdgeRejection): the source is an input or hidden node, the destination
// an output or hidden node. A pair that duplicates an edge or closes a cycle (the destination already reaches
// the source) is rejected and another drawn, up to add_edge_attempts pairs.
FOOLING_HD void add_random_edge_rejection(GenomeRows& g, PhiloxStream& rng, const CppnMutationParams& p,
                                          const MutationScratchLayout& L, int32_t* scratch) {
  build_out_adjacency(g, L, scratch);
  const int32_t sources = kNumInputs + (g.n - g.first_hidden());
  const int32_t destinations = g.n - kNumInputs;
  for (int32_t attempt = 0; attempt < p.add_edge_attempts; ++attempt) {
    int32_t s = rng.next_below(sources);
    if (s >= kNumInputs) s += g.num_outputs;
    const int32_t d = kNumInputs + rng.next_below(destinations);
    if (has_edge(g, s, d) || reaches(g, L, scratch, d, s)) continue;
    const float w = p.weight_min + (p.weight_max - p.weight_min) * rng.next_uniform();
    g.append_edge(s, d, math::clamp(w, p.weight_min, p.weight_max));
    return;
  }
}

// Marks in scratch[L.visited()] the ancestors of `from` (itself included): a search backwards along the
// edges, on the in-adjacency (sources of node v's in-edges in out_dst[out_begin[v] .. out_begin[v + 1])).
FOOLING_HD void mark_ancestors(const GenomeRows& g, const MutationScratchLayout& L, int32_t* scratch, int32_t from) {
  int32_t* begin = scratch + L.out_begin();
  int32_t* in_src = scratch + L.out_dst();
  int32_t* visited = scratch + L.visited();
  int32_t* stack = scratch + L.stack();
  for (int32_t v = 0; v <= g.n; ++v) begin[v] = 0;
  for (int32_t e = 0; e < g.m; ++e) begin[g.dst[e] + 1] += 1;
  for (int32_t v = 0; v < g.n; ++v) begin[v + 1] += begin[v];
  for (int32_t v = 0; v < g.n; ++v) stack[v] = begin[v];  // fill cursors
  for (int32_t e = 0; e < g.m; ++e) in_src[stack[g.dst[e]]++] = g.src[e];
  for (int32_t v = 0; v < g.n; ++v) visited[v] = 0;
  int32_t top = 0;
  stack[top++] = from;
  visited[from] = 1;
  while (top > 0) {
    const int32_t u = stack[--top];
    for (int32_t k = begin[u]; k < begin[u + 1]; ++k) {
      const int32_t v = in_src[k];
      if (!visited[v]) {
        visited[v] = 1;
        stack[top++] = v;
      }
    }
  }
}

// Add connection, the original's rule (kAddEdgeOriginal): draws the source uniformly among the inputs and
// hidden nodes; the candidates are the non-input nodes that are not ancestors of the source (nor the source),
// in index order; when there is one, draws the target uniformly among them, then the weight. Never closes a
// cycle; may add an edge parallel to an existing one.
FOOLING_HD void add_random_edge_original(GenomeRows& g, PhiloxStream& rng, const CppnMutationParams& p,
                                         const MutationScratchLayout& L, int32_t* scratch) {
  int32_t s = rng.next_below(kNumInputs + (g.n - g.first_hidden()));
  if (s >= kNumInputs) s += g.num_outputs;
  mark_ancestors(g, L, scratch, s);
  const int32_t* ancestor = scratch + L.visited();
  int32_t candidates = 0;
  for (int32_t v = kNumInputs; v < g.n; ++v) candidates += !ancestor[v];
  if (candidates == 0) return;
  int32_t k = rng.next_below(candidates);
  int32_t d = kNumInputs;
  for (;; ++d) {
    if (!ancestor[d] && k-- == 0) break;
  }
  const float w = p.weight_min + (p.weight_max - p.weight_min) * rng.next_uniform();
  g.append_edge(s, d, math::clamp(w, p.weight_min, p.weight_max));
}

FOOLING_HD void add_random_edge(GenomeRows& g, PhiloxStream& rng, const CppnMutationParams& p,
                                const MutationScratchLayout& L, int32_t* scratch) {
  if (p.add_edge == kAddEdgeRejection) {
    add_random_edge_rejection(g, rng, p, L, scratch);
  } else {
    add_random_edge_original(g, rng, p, L, scratch);
  }
}

// Delete connection e; the edges after it move down one place, keeping their order.
FOOLING_HD void delete_edge(GenomeRows& g, int32_t e) {
  for (int32_t k = e + 1; k < g.m; ++k) {
    g.src[k - 1] = g.src[k];
    g.dst[k - 1] = g.dst[k];
    g.weight[k - 1] = g.weight[k];
  }
  --g.m;
}

// Add node: edge e = s -> d (weight w) becomes s -> h in place, and h -> d (weight w) is appended; h is a
// new hidden node at index n. Splitting an edge cannot close a cycle.
FOOLING_HD void split_edge(GenomeRows& g, int32_t e, int32_t activation) {
  const int32_t h = g.n++;
  g.act[h] = activation;
  const int32_t d = g.dst[e];
  g.dst[e] = h;
  g.append_edge(h, d, g.weight[e]);
}

// Delete hidden node v with every edge that touches it. Nodes above v move down one index and edge
// endpoints are renumbered to match; the remaining edges keep their order.
FOOLING_HD void delete_node(GenomeRows& g, int32_t v) {
  int32_t kept = 0;
  for (int32_t e = 0; e < g.m; ++e) {
    const int32_t s = g.src[e], d = g.dst[e];
    if (s == v || d == v) continue;
    g.src[kept] = s > v ? s - 1 : s;
    g.dst[kept] = d > v ? d - 1 : d;
    g.weight[kept] = g.weight[e];
    ++kept;
  }
  g.m = kept;
  for (int32_t i = v + 1; i < g.n; ++i) g.act[i - 1] = g.act[i];
  --g.n;
}

// Checks that genome b (whose counts and fields are valid) has no cycle: Kahn's algorithm on the scratch
// row (out-adjacency in out_begin/out_dst, in-degrees in `visited`, the queue in `stack`). Returns the same
// error as compile_program for a cyclic genome (index: the lowest node left unordered, value: how many).
FOOLING_HD GenomeError check_acyclic(const CppnBatchView& view, int32_t b, const MutationScratchLayout& L,
                                     int32_t* scratch) {
  const int32_t n = view.num_nodes[b];
  const int32_t m = view.num_edges[b];
  const int64_t row = static_cast<int64_t>(b) * view.max_edges;
  const int32_t* src = view.edge_src + row;
  const int32_t* dst = view.edge_dst + row;
  int32_t* out_begin = scratch + L.out_begin();
  int32_t* out_dst = scratch + L.out_dst();
  int32_t* indeg = scratch + L.visited();
  int32_t* queue = scratch + L.stack();
  for (int32_t i = 0; i <= n; ++i) out_begin[i] = 0;
  for (int32_t i = 0; i < n; ++i) indeg[i] = 0;
  for (int32_t e = 0; e < m; ++e) {
    out_begin[src[e] + 1] += 1;
    indeg[dst[e]] += 1;
  }
  for (int32_t i = 0; i < n; ++i) out_begin[i + 1] += out_begin[i];
  for (int32_t i = 0; i < n; ++i) queue[i] = out_begin[i];  // fill cursors
  for (int32_t e = 0; e < m; ++e) out_dst[queue[src[e]]++] = dst[e];
  int32_t head = 0, tail = 0;
  for (int32_t i = 0; i < n; ++i) {
    if (indeg[i] == 0) queue[tail++] = i;
  }
  while (head < tail) {
    const int32_t u = queue[head++];
    for (int32_t k = out_begin[u]; k < out_begin[u + 1]; ++k) {
      if (--indeg[out_dst[k]] == 0) queue[tail++] = out_dst[k];
    }
  }
  if (tail == n) return {kGenomeOk, 0, 0};
  int32_t culprit = 0;
  for (int32_t i = n - 1; i >= 0; --i) {
    if (indeg[i] > 0) culprit = i;
  }
  return {kCycle, culprit, n - tail};
}

// Mutates genome b of `view` in place with the draws of (seed, generation, genome_index). A genome whose
// counts or fields are invalid (validate_counts_and_fields) or that has a cycle is left untouched and its error
// returned; from a valid genome the result is always valid (acyclic included) and within capacity.
//
// Each operator draws one uniform to decide whether it fires, then its own draws only when it applies:
// weights: per live edge, decision [+ polynomial draw]; activations: per non-input node, decision
// [+ activation]; add connection: decision [+ original rule: source, target when there is a candidate,
// weight; rejection rule: per attempt source, destination, + weight on success] (skipped when the edges are
// at capacity); delete connection: decision [+ edge] (needs an edge); add node: decision [+ edge, activation]
// (needs an edge and a free node and edge slot); delete node: decision [+ hidden node] (needs a hidden node).
// *blocked receives the BlockedMutation bits of the operators that fired but were skipped for capacity
// (0 for an invalid genome).
FOOLING_HD GenomeError mutate_cppn_genome(const CppnBatchView& view, int32_t b, const CppnMutationParams& p,
                                          uint64_t seed, uint32_t generation, uint32_t genome_index, int32_t* scratch,
                                          int32_t* blocked) {
  *blocked = 0;
  GenomeError err = validate_counts_and_fields(view, b);
  if (err.code != kGenomeOk) return err;
  const MutationScratchLayout L{view.max_nodes, view.max_edges};
  err = check_acyclic(view, b, L, scratch);
  if (err.code != kGenomeOk) return err;
  const int64_t node_row = static_cast<int64_t>(b) * view.max_nodes;
  const int64_t edge_row = static_cast<int64_t>(b) * view.max_edges;
  GenomeRows g{view.node_activation + node_row,
               view.edge_src + edge_row,
               view.edge_dst + edge_row,
               view.edge_weight + edge_row,
               view.num_nodes[b],
               view.num_edges[b],
               view.num_outputs,
               view.max_nodes,
               view.max_edges};
  PhiloxStream rng(seed, generation, genome_index, kPurposeCppnMutation);

  for (int32_t e = 0; e < g.m; ++e) {
    if (rng.next_uniform() < p.p_weight) g.weight[e] = mutate_weight(g.weight[e], rng.next_uniform(), p);
  }
  for (int32_t i = kNumInputs; i < g.n; ++i) {
    if (rng.next_uniform() < p.p_activation) g.act[i] = draw_activation(rng, p.activations);
  }
  int32_t flags = 0;
  if (rng.next_uniform() < p.p_add_edge) {
    if (g.m < g.max_edges)
      add_random_edge(g, rng, p, L, scratch);
    else
      flags |= kBlockedAddEdge;
  }
  if (rng.next_uniform() < p.p_delete_edge && g.m > 0) delete_edge(g, rng.next_below(g.m));
  if (rng.next_uniform() < p.p_add_node && g.m > 0) {
    if (g.n < g.max_nodes && g.m < g.max_edges) {
      const int32_t e = rng.next_below(g.m);
      split_edge(g, e, draw_activation(rng, p.activations));
    } else {
      flags |= kBlockedAddNode;
    }
  }
  if (rng.next_uniform() < p.p_delete_node && g.n > g.first_hidden()) {
    delete_node(g, g.first_hidden() + rng.next_below(g.n - g.first_hidden()));
  }
  view.num_nodes[b] = g.n;
  view.num_edges[b] = g.m;
  *blocked = flags;
  return {kGenomeOk, 0, 0};
}

// ---------------------------------------------------------------------------------------------
// Pixel genomes, one group of kGenesPerBlock genes at a time. `genes` points at the genome's first gene.

FOOLING_HD int32_t genes_in_group(int64_t genes_per_genome, int64_t group) {
  const int64_t left = genes_per_genome - group * kGenesPerBlock;
  return static_cast<int32_t>(left < kGenesPerBlock ? left : kGenesPerBlock);
}

FOOLING_HD PhiloxBlock gene_block(PhiloxKey key, uint32_t generation, uint32_t genome, uint32_t purpose,
                                  int64_t group) {
  return philox4x32_10(generation, genome, purpose, static_cast<uint32_t>(group), key);
}

// Initial genes: uniform in [0, 1) (counter generation word 0).
FOOLING_HD void init_pixel_group(float* genes, int64_t genes_per_genome, int64_t group, PhiloxKey key,
                                 uint32_t genome) {
  const PhiloxBlock r = gene_block(key, 0, genome, kPurposePixelInit, group);
  const int32_t count = genes_in_group(genes_per_genome, group);
  for (int32_t k = 0; k < count; ++k) genes[group * kGenesPerBlock + k] = uniform_float(r.x[k]);
}

// Polynomial mutation of each gene of the group with probability `rate`. The polynomial draws are only
// computed when some gene of the group mutates (they do not depend on whether they are computed).
FOOLING_HD void mutate_pixel_group(float* genes, int64_t genes_per_genome, int64_t group, float rate, float eta,
                                   PhiloxKey key, uint32_t generation, uint32_t genome) {
  const PhiloxBlock decide = gene_block(key, generation, genome, kPurposePixelDecide, group);
  const int32_t count = genes_in_group(genes_per_genome, group);
  bool any = false;
  for (int32_t k = 0; k < count; ++k) any = any || uniform_float(decide.x[k]) < rate;
  if (!any) return;
  const PhiloxBlock delta = gene_block(key, generation, genome, kPurposePixelDelta, group);
  for (int32_t k = 0; k < count; ++k) {
    if (uniform_float(decide.x[k]) < rate) {
      float& x = genes[group * kGenesPerBlock + k];
      x = polynomial_mutate(x, uniform_float(delta.x[k]), eta);
    }
  }
}

// SBX spread factor for one offspring: `room` is the distance from the nearer parent to its bound
// (Deb's bounded SBX, as in NSGA-II and evo_float).
FOOLING_HD float sbx_betaq(float room, float diff, float u, float eta_c) {
  const float beta = 1.0f + 2.0f * room / diff;
  const float alpha = 2.0f - math::pow(beta, -(eta_c + 1.0f));
  const float exponent = 1.0f / (eta_c + 1.0f);
  return u <= 1.0f / alpha ? math::pow(u * alpha, exponent) : math::pow(1.0f / (2.0f - u * alpha), exponent);
}

// The two offspring values of parent values y1 < y2 (y2 - y1 > kSbxMinDistance), clipped to [0, 1].
FOOLING_HD void sbx_offspring(float y1, float y2, float u_spread, float eta_c, float* c1, float* c2) {
  const float diff = y2 - y1;
  *c1 = math::clamp(0.5f * ((y1 + y2) - sbx_betaq(y1, diff, u_spread, eta_c) * diff), 0.0f, 1.0f);
  *c2 = math::clamp(0.5f * ((y1 + y2) + sbx_betaq(1.0f - y2, diff, u_spread, eta_c) * diff), 0.0f, 1.0f);
}

// Bounded SBX of one gene on [0, 1]: parents x1, x2 give two offspring values, assigned to the children in
// either order with equal probability. Parents closer than kSbxMinDistance are left as they are (the
// original writes nothing to the children there, so they keep the 0.5 their constructor fills in; a
// deliberate difference, see docs/fidelity.md).
FOOLING_HD void sbx_gene(float* x1, float* x2, float u_spread, float u_swap, float eta_c) {
  const float y1 = *x1 < *x2 ? *x1 : *x2;
  const float y2 = *x1 < *x2 ? *x2 : *x1;
  if (!(y2 - y1 > kSbxMinDistance)) return;
  float c1, c2;
  sbx_offspring(y1, y2, u_spread, eta_c, &c1, &c2);
  const bool swap = u_swap < 0.5f;
  *x1 = swap ? c2 : c1;
  *x2 = swap ? c1 : c2;
}

// Whether the pair whose first child has global index `first` crosses over.
FOOLING_HD bool pair_crosses(PhiloxKey key, uint32_t generation, uint32_t first, float crossover_rate) {
  return uniform_float(philox4x32_10(generation, first, kPurposeSbxPair, 0, key).x[0]) < crossover_rate;
}

// SBX of one gene group of a crossing pair: every gene crosses, as in the original's CrossOver_f<sbx> (genes
// whose parents agree to within kSbxMinDistance keep their values; see sbx_gene).
FOOLING_HD void crossover_pixel_group(float* genes_a, float* genes_b, int64_t genes_per_genome, int64_t group,
                                      float eta_c, PhiloxKey key, uint32_t generation, uint32_t first) {
  const PhiloxBlock spread = gene_block(key, generation, first, kPurposeSbxSpread, group);
  const PhiloxBlock swap = gene_block(key, generation, first, kPurposeSbxSwap, group);
  const int32_t count = genes_in_group(genes_per_genome, group);
  for (int32_t k = 0; k < count; ++k) {
    const int64_t i = group * kGenesPerBlock + k;
    sbx_gene(genes_a + i, genes_b + i, uniform_float(spread.x[k]), uniform_float(swap.x[k]), eta_c);
  }
}

// One unit of pixel work: gene group `group` of child `unit` (no crossover) or of the pair
// (2 unit, 2 unit + 1) (crossover; a last unpaired child is only mutated). Children are rows of `genes`.
FOOLING_HD void pixel_unit_group(float* genes, int64_t batch, int64_t genes_per_genome, int64_t unit, int64_t group,
                                 const PixelMutationParams& p, PhiloxKey key, uint32_t generation,
                                 uint32_t genome_offset) {
  if (!p.crossover) {
    mutate_pixel_group(genes + unit * genes_per_genome, genes_per_genome, group, p.rate, p.eta, key, generation,
                       genome_offset + static_cast<uint32_t>(unit));
    return;
  }
  const int64_t a = 2 * unit, b = a + 1;
  const uint32_t first = genome_offset + static_cast<uint32_t>(a);
  float* genes_a = genes + a * genes_per_genome;
  float* genes_b = genes + b * genes_per_genome;
  const bool paired = b < batch;
  if (paired && pair_crosses(key, generation, first, p.crossover_rate)) {
    crossover_pixel_group(genes_a, genes_b, genes_per_genome, group, p.eta_c, key, generation, first);
  }
  mutate_pixel_group(genes_a, genes_per_genome, group, p.rate, p.eta, key, generation, first);
  if (paired) mutate_pixel_group(genes_b, genes_per_genome, group, p.rate, p.eta, key, generation, first + 1);
}

FOOLING_HD int64_t pixel_units(int64_t batch, const PixelMutationParams& p) {
  return p.crossover ? (batch + 1) / 2 : batch;
}

FOOLING_HD int64_t gene_groups(int64_t genes_per_genome) {
  return (genes_per_genome + kGenesPerBlock - 1) / kGenesPerBlock;
}

// A child whose parent index is out of range: inputs and outputs only, no edges (a valid genome).
FOOLING_HD void write_bare_genome(const CppnBatchView& g, int32_t b) {
  g.num_nodes[b] = g.first_hidden();
  g.num_edges[b] = 0;
  for (int32_t i = 0; i < g.first_hidden(); ++i) g.node_activation[static_cast<int64_t>(b) * g.max_nodes + i] = 0;
}

// ---------------------------------------------------------------------------------------------
// Entry points. CPU: host pointers, runs on the calling thread and the worker pool. CUDA: device pointers
// on the current device, asynchronous on `stream`; returns "" or an error message. Callers check the
// parameters and shapes first (the check_* functions); the CUDA entry points check them again.

// Mutates every genome in place; errors: [batch] (kGenomeOk or why the genome was left untouched); blocked:
// int32 [batch], the BlockedMutation bits of each genome. Returns the number of invalid genomes.
int32_t mutate_cppn_cpu(const CppnBatchView& g, const CppnMutationParams& p, uint64_t seed, uint32_t generation,
                        uint32_t genome_offset, GenomeError* errors, int32_t* blocked);
// workspace: int32 [workspace_rows, mutation_workspace_ints]; errors, blocked: device [batch].
std::string mutate_cppn_cuda(const CppnBatchView& g, const CppnMutationParams& p, uint64_t seed, uint32_t generation,
                             uint32_t genome_offset, GenomeError* errors, int32_t* blocked, int32_t* workspace,
                             int64_t workspace_rows, void* stream);

// Selection: child i is a copy of parent index[i] (children.batch entries of index). An index outside
// [0, parents.batch) gives a bare genome (CPPN) or zeros (pixels) and is reported: the CPU functions
// return the first such position (-1 when none); the CUDA functions write it to the device int64
// *first_bad (-1 when none).
int64_t select_cppn_cpu(const CppnBatchView& parents, const int64_t* index, const CppnBatchView& children);
std::string select_cppn_cuda(const CppnBatchView& parents, const int64_t* index, const CppnBatchView& children,
                             int64_t* first_bad, void* stream);
int64_t select_rows_cpu(const float* parents, int64_t parent_rows, int64_t row_size, const int64_t* index,
                        int64_t count, float* children);
std::string select_rows_cuda(const float* parents, int64_t parent_rows, int64_t row_size, const int64_t* index,
                             int64_t count, float* children, int64_t* first_bad, void* stream);

// Pixel genomes: genes float32 [batch, genes_per_genome].
void init_pixels_cpu(float* genes, int64_t batch, int64_t genes_per_genome, uint64_t seed, uint32_t genome_offset);
std::string init_pixels_cuda(float* genes, int64_t batch, int64_t genes_per_genome, uint64_t seed,
                             uint32_t genome_offset, void* stream);
void mutate_pixels_cpu(float* genes, int64_t batch, int64_t genes_per_genome, const PixelMutationParams& p,
                       uint64_t seed, uint32_t generation, uint32_t genome_offset);
std::string mutate_pixels_cuda(float* genes, int64_t batch, int64_t genes_per_genome, const PixelMutationParams& p,
                               uint64_t seed, uint32_t generation, uint32_t genome_offset, void* stream);

}  // namespace fooling
