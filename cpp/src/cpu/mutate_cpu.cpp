// CPU backend of batched mutation and parent selection: one CPPN genome, or one block of genes of one
// child (or pair of children), per task, spread over the cores. CPPN genomes go through the same
// mutate_cppn_genome as on CUDA. Pixel genes go through the same per-gene functions (Philox block, polynomial,
// SBX) as on CUDA, arranged in tiles that vectorise; each gene's result depends only on its own counter, so
// the arrangement cannot change it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <vector>

#include "fooling/mutation.h"
#include "fooling/parallel.h"
#include "fooling/render.h"

namespace fooling {

namespace {

bool is_probability(float v) { return v >= 0.0f && v <= 1.0f; }  // false for NaN
bool is_positive_finite(float v) { return v > 0.0f && std::isfinite(v); }

// Gene groups per parallel task: large enough to amortise the task, small enough to spread one big genome
// over the cores.
constexpr int64_t kGroupsPerTask = 4096;

}  // namespace

std::string check_cppn_mutation_params(const CppnMutationParams& p) {
  std::ostringstream msg;
  const std::pair<const char*, float> probabilities[] = {
      {"p_weight", p.p_weight},           {"p_activation", p.p_activation}, {"p_add_edge", p.p_add_edge},
      {"p_delete_edge", p.p_delete_edge}, {"p_add_node", p.p_add_node},     {"p_delete_node", p.p_delete_node},
  };
  for (const auto& [name, value] : probabilities) {
    if (!is_probability(value)) {
      msg << name << " must be a probability in [0, 1], got " << value;
      return msg.str();
    }
  }
  if (!is_positive_finite(p.eta)) {
    msg << "eta must be finite and > 0, got " << p.eta;
  } else if (!std::isfinite(p.weight_min) || !std::isfinite(p.weight_max) || !(p.weight_min < p.weight_max) ||
             !std::isfinite(p.weight_max - p.weight_min)) {
    msg << "weight_min and weight_max must be finite with weight_min < weight_max, got " << p.weight_min << " and "
        << p.weight_max;
  } else if (p.activations == 0 || (p.activations & ~kAllActivations) != 0) {
    msg << "activations must be a non-empty subset of the " << kNumActivations << " activations, got mask "
        << p.activations;
  } else if (p.add_edge != kAddEdgeOriginal && p.add_edge != kAddEdgeRejection) {
    msg << "add_edge must be " << kAddEdgeOriginal << " (original) or " << kAddEdgeRejection << " (rejection), got "
        << p.add_edge;
  } else if (p.add_edge_attempts < 1) {
    msg << "add_edge_attempts must be >= 1, got " << p.add_edge_attempts;
  }
  return msg.str();
}

std::string check_pixel_mutation_params(const PixelMutationParams& p) {
  std::ostringstream msg;
  if (!is_probability(p.rate))
    msg << "rate must be a probability in [0, 1], got " << p.rate;
  else if (!is_positive_finite(p.eta))
    msg << "eta must be finite and > 0, got " << p.eta;
  else if (p.crossover != 0 && p.crossover != 1)
    msg << "crossover must be 0 or 1, got " << p.crossover;
  else if (!is_probability(p.crossover_rate))
    msg << "crossover_rate must be a probability in [0, 1], got " << p.crossover_rate;
  else if (!is_positive_finite(p.eta_c))
    msg << "eta_c must be finite and > 0, got " << p.eta_c;
  return msg.str();
}

std::string check_cppn_batch(const CppnBatchView& g) { return check_render_call(g, RenderParams{}); }

std::string check_genome_range(int64_t batch, int64_t genome_offset) {
  std::ostringstream msg;
  constexpr int64_t kGenomeCounterLimit = int64_t{1} << 32;
  if (batch < 0)
    msg << "batch must be >= 0, got " << batch;
  else if (genome_offset < 0 || genome_offset > kGenomeCounterLimit - batch)
    msg << "genome_offset + batch must be within [0, 2^32], got genome_offset = " << genome_offset
        << " and batch = " << batch;
  return msg.str();
}

std::string check_pixel_batch(int64_t batch, int64_t genes_per_genome, int64_t genome_offset) {
  if (genes_per_genome < 1 || genes_per_genome > kMaxGenesPerGenome) {
    return "genes per genome must be in [1, 2^31 - 1], got " + std::to_string(genes_per_genome);
  }
  return check_genome_range(batch, genome_offset);
}

std::string check_select_call(const CppnBatchView& parents, const CppnBatchView& children) {
  std::string bad = check_cppn_batch(parents);
  if (bad.empty()) bad = check_cppn_batch(children);
  if (!bad.empty()) return bad;
  if (parents.num_outputs != children.num_outputs || parents.max_nodes != children.max_nodes ||
      parents.max_edges != children.max_edges) {
    std::ostringstream msg;
    msg << "children must have the parents' num_outputs, max_nodes and max_edges: parents (" << parents.num_outputs
        << ", " << parents.max_nodes << ", " << parents.max_edges << "), children (" << children.num_outputs << ", "
        << children.max_nodes << ", " << children.max_edges << ")";
    return msg.str();
  }
  return "";
}

int32_t mutate_cppn_cpu(const CppnBatchView& g, const CppnMutationParams& p, uint64_t seed, uint32_t generation,
                        uint32_t genome_offset, GenomeError* errors, int32_t* blocked) {
  const int64_t row_size = mutation_workspace_ints(g.max_nodes, g.max_edges);
  const int threads = num_threads();
  std::vector<int32_t> scratch(static_cast<size_t>(threads) * row_size);
  parallel_for(
      g.batch,
      [&](int64_t b, int worker) {
        int32_t flags = 0;
        errors[b] =
            mutate_cppn_genome(g, static_cast<int32_t>(b), p, seed, generation,
                               genome_offset + static_cast<uint32_t>(b), scratch.data() + worker * row_size, &flags);
        if (blocked != nullptr) blocked[b] = flags;
      },
      threads);
  int32_t invalid = 0;
  for (int32_t b = 0; b < g.batch; ++b) invalid += errors[b].code != kGenomeOk;
  return invalid;
}

namespace {

int64_t first_out_of_range(const int64_t* index, int64_t count, int64_t parent_rows) {
  for (int64_t i = 0; i < count; ++i) {
    if (index[i] < 0 || index[i] >= parent_rows) return i;
  }
  return -1;
}

template <typename T>
void copy_row(const T* from, T* to, int64_t row_size, int64_t parent, int64_t child) {
  // Rows of no elements (max_edges = 0) may come with null pointers, which memcpy must not be given.
  if (row_size <= 0) return;
  std::memcpy(to + child * row_size, from + parent * row_size, static_cast<size_t>(row_size) * sizeof(T));
}

}  // namespace

int64_t select_cppn_cpu(const CppnBatchView& parents, const int64_t* index, const CppnBatchView& children) {
  parallel_for(children.batch, [&](int64_t i, int) {
    const int64_t b = index[i];
    if (b < 0 || b >= parents.batch) {
      write_bare_genome(children, static_cast<int32_t>(i));
      return;
    }
    copy_row(parents.num_nodes, children.num_nodes, 1, b, i);
    copy_row(parents.num_edges, children.num_edges, 1, b, i);
    copy_row(parents.node_activation, children.node_activation, parents.max_nodes, b, i);
    copy_row(parents.edge_src, children.edge_src, parents.max_edges, b, i);
    copy_row(parents.edge_dst, children.edge_dst, parents.max_edges, b, i);
    copy_row(parents.edge_weight, children.edge_weight, parents.max_edges, b, i);
  });
  return first_out_of_range(index, children.batch, parents.batch);
}

int64_t select_rows_cpu(const float* parents, int64_t parent_rows, int64_t row_size, const int64_t* index,
                        int64_t count, float* children) {
  parallel_for(count, [&](int64_t i, int) {
    const int64_t b = index[i];
    if (b < 0 || b >= parent_rows) {
      std::fill(children + i * row_size, children + (i + 1) * row_size, 0.0f);
      return;
    }
    copy_row(parents, children, row_size, b, i);
  });
  return first_out_of_range(index, count, parent_rows);
}

namespace {

// Pixel genomes are processed in tiles of kTileGroups gene groups, so that a tile's Philox blocks and
// polynomials are independent loop iterations the compiler vectorises.
constexpr int32_t kTileGroups = 256;
constexpr int32_t kTileGenes = kTileGroups * kGenesPerBlock;

int32_t tile_genes(int64_t genes_per_genome, int64_t group0, int32_t groups) {
  return static_cast<int32_t>(
      std::min<int64_t>(int64_t{groups} * kGenesPerBlock, genes_per_genome - group0 * kGenesPerBlock));
}

uint32_t word(const PhiloxBlock& r, int32_t lane) {
  return lane == 0 ? r.x[0] : lane == 1 ? r.x[1] : lane == 2 ? r.x[2] : r.x[3];
}

// Initial genes of groups [group0, group0 + groups) of one genome: the values of init_pixel_group.
FOOLING_VECTOR_CLONES
void init_pixel_tile(float* genes, int64_t genes_per_genome, int64_t group0, int32_t groups, PhiloxKey key,
                     uint32_t genome) {
  uint32_t words[kTileGenes];
  for (int32_t t = 0; t < groups; ++t) {
    const PhiloxBlock r = gene_block(key, 0, genome, kPurposePixelInit, group0 + t);
    for (int32_t k = 0; k < kGenesPerBlock; ++k) words[t * kGenesPerBlock + k] = r.x[k];
  }
  float* out = genes + group0 * kGenesPerBlock;
  const int32_t count = tile_genes(genes_per_genome, group0, groups);
  for (int32_t i = 0; i < count; ++i) out[i] = uniform_float(words[i]);
}

// Polynomial mutation of groups [group0, group0 + groups) of one genome: the decisions of the tile in one
// loop, then the genes that mutate gathered into a list and their draws and new values computed in straight
// loops. Every gene gets the values mutate_pixel_group gives it.
FOOLING_VECTOR_CLONES
void mutate_pixel_tile(float* genes, int64_t genes_per_genome, int64_t group0, int32_t groups, float rate, float eta,
                       PhiloxKey key, uint32_t generation, uint32_t genome) {
  uint32_t words[kTileGenes];
  for (int32_t t = 0; t < groups; ++t) {
    const PhiloxBlock r = gene_block(key, generation, genome, kPurposePixelDecide, group0 + t);
    for (int32_t k = 0; k < kGenesPerBlock; ++k) words[t * kGenesPerBlock + k] = r.x[k];
  }
  const int64_t gene0 = group0 * kGenesPerBlock;
  const int32_t count = tile_genes(genes_per_genome, group0, groups);
  int32_t picked[kTileGenes];
  int32_t mutated = 0;
  for (int32_t i = 0; i < count; ++i) {
    picked[mutated] = i;
    mutated += uniform_float(words[i]) < rate;
  }
  float x[kTileGenes], u[kTileGenes];
  for (int32_t k = 0; k < mutated; ++k) {
    const int64_t g = gene0 + picked[k];
    const PhiloxBlock r = gene_block(key, generation, genome, kPurposePixelDelta, g / kGenesPerBlock);
    u[k] = uniform_float(word(r, static_cast<int32_t>(g % kGenesPerBlock)));
    x[k] = genes[g];
  }
  for (int32_t k = 0; k < mutated; ++k) x[k] = polynomial_mutate(x[k], u[k], eta);
  for (int32_t k = 0; k < mutated; ++k) genes[gene0 + picked[k]] = x[k];
}

// SBX of groups [group0, group0 + groups) of a crossing pair of genomes: the two draws of each gene of the
// tile in one loop, then the genes whose parents differ gathered into a list and their offspring computed in
// a straight loop. Every gene gets the values crossover_pixel_group gives it.
FOOLING_VECTOR_CLONES
void crossover_pixel_tile(float* genes_a, float* genes_b, int64_t genes_per_genome, int64_t group0, int32_t groups,
                          float eta_c, PhiloxKey key, uint32_t generation, uint32_t first) {
  uint32_t spread[kTileGenes], swap[kTileGenes];
  for (int32_t t = 0; t < groups; ++t) {
    const PhiloxBlock s = gene_block(key, generation, first, kPurposeSbxSpread, group0 + t);
    const PhiloxBlock w = gene_block(key, generation, first, kPurposeSbxSwap, group0 + t);
    for (int32_t k = 0; k < kGenesPerBlock; ++k) {
      spread[t * kGenesPerBlock + k] = s.x[k];
      swap[t * kGenesPerBlock + k] = w.x[k];
    }
  }
  float* a = genes_a + group0 * kGenesPerBlock;
  float* b = genes_b + group0 * kGenesPerBlock;
  const int32_t count = tile_genes(genes_per_genome, group0, groups);
  int32_t picked[kTileGenes];
  int32_t crossing = 0;
  for (int32_t i = 0; i < count; ++i) {
    const float diff = a[i] < b[i] ? b[i] - a[i] : a[i] - b[i];
    picked[crossing] = i;
    crossing += diff > kSbxMinDistance;
  }
  float y1[kTileGenes], y2[kTileGenes], u[kTileGenes], c1[kTileGenes], c2[kTileGenes];
  for (int32_t k = 0; k < crossing; ++k) {
    const int32_t i = picked[k];
    y1[k] = a[i] < b[i] ? a[i] : b[i];
    y2[k] = a[i] < b[i] ? b[i] : a[i];
    u[k] = uniform_float(spread[i]);
  }
  for (int32_t k = 0; k < crossing; ++k) sbx_offspring(y1[k], y2[k], u[k], eta_c, c1 + k, c2 + k);
  for (int32_t k = 0; k < crossing; ++k) {
    const int32_t i = picked[k];
    const bool swapped = uniform_float(swap[i]) < 0.5f;
    a[i] = swapped ? c2[k] : c1[k];
    b[i] = swapped ? c1[k] : c2[k];
  }
}

// Calls fn(row, group0, groups) for every tile of each of `rows` rows, in parallel tasks of up to
// kGroupsPerTask groups.
template <typename Fn>
void for_each_tile(int64_t rows, int64_t genes_per_genome, const Fn& fn) {
  const int64_t groups = gene_groups(genes_per_genome);
  const int64_t tasks_per_row = (groups + kGroupsPerTask - 1) / kGroupsPerTask;
  parallel_for(rows * tasks_per_row, [&](int64_t task, int) {
    const int64_t row = task / tasks_per_row;
    const int64_t begin = (task % tasks_per_row) * kGroupsPerTask;
    const int64_t end = std::min(groups, begin + kGroupsPerTask);
    for (int64_t group = begin; group < end; group += kTileGroups) {
      fn(row, group, static_cast<int32_t>(std::min<int64_t>(kTileGroups, end - group)));
    }
  });
}

}  // namespace

void init_pixels_cpu(float* genes, int64_t batch, int64_t genes_per_genome, uint64_t seed, uint32_t genome_offset) {
  const PhiloxKey key = philox_key(seed);
  for_each_tile(batch, genes_per_genome, [&](int64_t b, int64_t group0, int32_t groups) {
    init_pixel_tile(genes + b * genes_per_genome, genes_per_genome, group0, groups, key,
                    genome_offset + static_cast<uint32_t>(b));
  });
}

void mutate_pixels_cpu(float* genes, int64_t batch, int64_t genes_per_genome, const PixelMutationParams& p,
                       uint64_t seed, uint32_t generation, uint32_t genome_offset) {
  const PhiloxKey key = philox_key(seed);
  auto mutate_row = [&](int64_t b, int64_t group0, int32_t groups) {
    mutate_pixel_tile(genes + b * genes_per_genome, genes_per_genome, group0, groups, p.rate, p.eta, key, generation,
                      genome_offset + static_cast<uint32_t>(b));
  };
  if (!p.crossover) {
    for_each_tile(batch, genes_per_genome, mutate_row);
    return;
  }
  // Pairs (2 i, 2 i + 1): SBX of the tile's genes when the pair crosses, then each child's mutation.
  for_each_tile(pixel_units(batch, p), genes_per_genome, [&](int64_t pair, int64_t group0, int32_t groups) {
    const int64_t a = 2 * pair, b = a + 1;
    const uint32_t first = genome_offset + static_cast<uint32_t>(a);
    if (b < batch && pair_crosses(key, generation, first, p.crossover_rate)) {
      crossover_pixel_tile(genes + a * genes_per_genome, genes + b * genes_per_genome, genes_per_genome, group0, groups,
                           p.eta_c, key, generation, first);
    }
    mutate_row(a, group0, groups);
    if (b < batch) mutate_row(b, group0, groups);
  });
}

}  // namespace fooling
