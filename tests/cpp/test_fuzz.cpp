// Fuzz driver for the C++ entry points that the Python package calls, run by the suite under AddressSanitizer
// and UndefinedBehaviorSanitizer like every other test here.
//
// Fuzzed: validate_cpu, render_cpu (both coordinate and colour modes, greyscale and colour genomes, images
// from 1x1 to a few dozen pixels a side), mutate_cppn_cpu, select_cppn_cpu, select_rows_cpu,
// init_pixels_cpu, mutate_pixels_cpu, set_num_threads (and FOOLING_NUM_THREADS), and the call checks the
// bindings run first (check_render_call, check_cppn_mutation_params, check_pixel_mutation_params,
// check_select_call, check_genome_range, check_pixel_batch). Batches hold 0..8 genomes with capacities from
// the smallest legal one to a few hundred (now and then the largest, kMaxNodesCapacity and
// kMaxEdgesCapacity). Each genome is one of: (a) a random feed-forward genome (genome_builder.h) with
// shuffled edges, extreme finite weights and garbage in its padding; (b) the same with random corruption
// (counts out of range, unknown activations, edge ends out of range or into an input, NaN/Inf weights,
// cycles, padding edges made live); (c) random bits in every field, or small random values that get past
// the count checks.
//
// Properties checked, against plain reference code in this file:
//   - validate_cpu reports exactly the error (code, index, value) of a direct reading of the rules in
//     genome.h, and returns the number of invalid genomes; render_cpu reports the same, leaves zeros for
//     invalid genomes and, for valid ones, writes exactly the values of a direct per-pixel evaluation
//     (all finite, in [0, 1]); the genome and its padding garbage do not change the image, and neither
//     call changes the genomes;
//   - mutate_cppn_cpu keeps a valid genome valid (acyclic, counts within capacity) and leaves an invalid
//     one byte-for-byte unchanged with validate_cpu's error reported; the result does not depend on the
//     thread count or on how the batch is split into calls; parameters the check rejects are named by it;
//   - select_cppn_cpu and select_rows_cpu return the first out-of-range position as a plain loop finds it
//     (-1 for none), copy in-range rows exactly and write bare genomes / zero rows for the others;
//   - init_pixels_cpu gives genes in [0, 1) and mutate_pixels_cpu keeps genes in [0, 1], each exactly as
//     the per-group functions of the CUDA backend compute them;
//   - set_num_threads takes any int (n <= 0: the default, n > kMaxThreads: kMaxThreads), FOOLING_NUM_THREADS
//     is read strictly, and no result depends on the thread count (1 and 3 threads give identical bytes).
//
// Inputs come from std::mt19937_64 with a fixed seed, so a run is reproducible. FOOLING_FUZZ_ITERATIONS
// (default kDefaultIterations: the rounds of most tests, about 15 s for all of them under the sanitizers on
// two cores) runs longer, FOOLING_FUZZ_SEED explores other inputs:
//   FOOLING_FUZZ_ITERATIONS=20000 ./fooling_cpp_tests --gtest_filter='Fuzz*'
// A failure names the seed and the iteration.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "fooling/genome.h"
#include "fooling/mutation.h"
#include "fooling/parallel.h"
#include "fooling/program.h"
#include "fooling/render.h"
#include "genome_builder.h"

using namespace fooling;
using fooling_test::HostBatch;

namespace {

constexpr int64_t kDefaultIterations = 300;
constexpr uint64_t kDefaultSeed = 0x5eedf001u;
constexpr int32_t kI32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kFloatMax = std::numeric_limits<float>::max();

// A positive whole number from the environment, or `fallback` when the variable is unset.
int64_t env_count(const char* name, int64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr) return fallback;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < 1) {
    throw std::invalid_argument(std::string(name) + " must be a whole number >= 1, got '" + text + "'");
  }
  return v;
}

int64_t iterations() { return env_count("FOOLING_FUZZ_ITERATIONS", kDefaultIterations); }

uint64_t base_seed() { return static_cast<uint64_t>(env_count("FOOLING_FUZZ_SEED", kDefaultSeed)); }

// ------------------------------------------------------------------------------------------------
// Random values.

using Rng = std::mt19937_64;

int64_t uniform(Rng& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
bool chance(Rng& rng, double p) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p; }
template <typename T>
T pick(Rng& rng, std::initializer_list<T> values) {
  return values.begin()[uniform(rng, 0, static_cast<int64_t>(values.size()) - 1)];
}
int32_t raw_int(Rng& rng) { return static_cast<int32_t>(static_cast<uint32_t>(rng())); }
float bits_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
float raw_float(Rng& rng) { return bits_float(static_cast<uint32_t>(rng())); }
float uniform_float01(Rng& rng) { return std::uniform_real_distribution<float>(0.0f, 1.0f)(rng); }

// A probability: often exactly 0 or 1, the values that mean "never" and "always".
float probability(Rng& rng) {
  const int k = static_cast<int>(uniform(rng, 0, 9));
  return k == 0 ? 0.0f : k == 1 ? 1.0f : uniform_float01(rng);
}

// A value outside [lo, hi] (lo > INT32_MIN, hi < INT32_MAX).
int32_t outside(Rng& rng, int32_t lo, int32_t hi) {
  switch (uniform(rng, 0, 5)) {
    case 0: return kI32Min;
    case 1: return kI32Max;
    case 2: return lo - 1;
    case 3: return hi + 1;
    case 4: return static_cast<int32_t>(uniform(rng, int64_t{hi} + 1, int64_t{hi} + 1000));
    default: {
      const int32_t v = raw_int(rng);
      return v >= lo && v <= hi ? kI32Min : v;
    }
  }
}

float non_finite(Rng& rng) {
  switch (uniform(rng, 0, 4)) {
    case 0: return kInf;
    case 1: return -kInf;
    case 2: return std::numeric_limits<float>::quiet_NaN();
    case 3: return bits_float(0x7f800001u);                                                      // signalling NaN
    default: return bits_float(0xff800000u | static_cast<uint32_t>(uniform(rng, 1, 0x7fffff)));  // negative NaN
  }
}

// A finite weight: usually ordinary, sometimes extreme (huge, subnormal, negative zero).
float finite_weight(Rng& rng) {
  switch (uniform(rng, 0, 9)) {
    case 0: return pick(rng, {kFloatMax, -kFloatMax, 1e30f, -1e30f});
    case 1: return pick(rng, {std::numeric_limits<float>::denorm_min(), -0.0f, 1e-38f, 0.0f});
    case 2: {
      float w = raw_float(rng);
      return std::isfinite(w) ? w : 1.0f;
    }
    default: return std::uniform_real_distribution<float>(-10.0f, 10.0f)(rng);
  }
}

// ------------------------------------------------------------------------------------------------
// The rules of genome.h read directly: the error validate_cpu must report, and an evaluation order.

struct Reference {
  GenomeError error{kGenomeOk, 0, 0};
  std::vector<int32_t> order;  // valid genomes: every node, each after all its sources
};

Reference reference_check(const HostBatch& hb, int32_t b) {
  Reference ref;
  const int32_t first_hidden = kNumInputs + hb.num_outputs;
  const int32_t n = hb.num_nodes[b], m = hb.num_edges[b];
  if (n < first_hidden || n > hb.max_nodes) {
    ref.error = {kNodeCountOutOfRange, -1, n};
    return ref;
  }
  if (m < 0 || m > hb.max_edges) {
    ref.error = {kEdgeCountOutOfRange, -1, m};
    return ref;
  }
  const int32_t* act = hb.act.data() + static_cast<size_t>(b) * hb.max_nodes;
  const int32_t* src = hb.src.data() + static_cast<size_t>(b) * hb.max_edges;
  const int32_t* dst = hb.dst.data() + static_cast<size_t>(b) * hb.max_edges;
  const float* weight = hb.weight.data() + static_cast<size_t>(b) * hb.max_edges;
  for (int32_t i = kNumInputs; i < n; ++i) {
    if (act[i] < 0 || act[i] >= kNumActivations) {
      ref.error = {kUnknownActivation, i, act[i]};
      return ref;
    }
  }
  for (int32_t e = 0; e < m; ++e) {
    if (src[e] < 0 || src[e] >= n)
      ref.error = {kEdgeSrcOutOfRange, e, src[e]};
    else if (dst[e] < 0 || dst[e] >= n)
      ref.error = {kEdgeDstOutOfRange, e, dst[e]};
    else if (dst[e] < kNumInputs)
      ref.error = {kEdgeIntoInput, e, dst[e]};
    else if (!std::isfinite(weight[e]))
      ref.error = {kNonFiniteWeight, e, 0};
    if (ref.error.code != kGenomeOk) return ref;
  }
  // A node can be evaluated once all its sources can; what never can is on a cycle or behind one. Sweep
  // until nothing changes; nodes evaluable in sweep k come after those of earlier sweeps.
  std::vector<char> done(n, 0), blocked(n);
  for (bool changed = true; changed;) {
    changed = false;
    std::fill(blocked.begin(), blocked.end(), 0);
    for (int32_t e = 0; e < m; ++e) {
      if (!done[src[e]]) blocked[dst[e]] = 1;
    }
    for (int32_t v = 0; v < n; ++v) {
      if (!done[v] && !blocked[v]) {
        done[v] = 1;
        ref.order.push_back(v);
        changed = true;
      }
    }
  }
  if (static_cast<int32_t>(ref.order.size()) < n) {
    int32_t lowest = 0;
    while (done[lowest]) ++lowest;
    ref.error = {kCycle, lowest, n - static_cast<int32_t>(ref.order.size())};
    ref.order.clear();
  }
  return ref;
}

// Whether `to` can be reached from `from` along live edges of a genome whose fields are valid.
bool reachable(const HostBatch& hb, int32_t b, int32_t from, int32_t to) {
  const int32_t n = hb.num_nodes[b], m = hb.num_edges[b];
  std::vector<char> seen(n, 0);
  std::vector<int32_t> stack = {from};
  seen[from] = 1;
  while (!stack.empty()) {
    const int32_t u = stack.back();
    stack.pop_back();
    if (u == to) return true;
    for (int32_t e = 0; e < m; ++e) {
      const int32_t s = hb.src[b * hb.max_edges + e], d = hb.dst[b * hb.max_edges + e];
      if (s == u && !seen[d]) {
        seen[d] = 1;
        stack.push_back(d);
      }
    }
  }
  return false;
}

// One genome evaluated at every pixel, node by node in `order`, each node's incoming edges summed in storage
// order (as the program does), through the per-pixel helpers of render.h. out: [num_outputs, height, width].
std::vector<float> reference_image(const HostBatch& hb, int32_t b, const std::vector<int32_t>& order,
                                   const RenderParams& p) {
  const int32_t n = hb.num_nodes[b], m = hb.num_edges[b];
  std::vector<std::vector<int32_t>> incoming(n);
  for (int32_t e = 0; e < m; ++e) incoming[hb.dst[b * hb.max_edges + e]].push_back(e);
  const int64_t plane = int64_t{p.height} * p.width;
  std::vector<float> out(static_cast<size_t>(plane * hb.num_outputs));
  std::vector<float> value(n);
  for (int32_t row = 0; row < p.height; ++row) {
    for (int32_t col = 0; col < p.width; ++col) {
      pixel_inputs(p, row, col, &value[kInputX], &value[kInputY], &value[kInputD]);
      value[kInputBias] = 1.0f;
      for (const int32_t v : order) {
        if (v < kNumInputs) continue;
        float acc = 0.0f;
        for (const int32_t e : incoming[v]) {
          acc += hb.weight[b * hb.max_edges + e] * value[hb.src[b * hb.max_edges + e]];
        }
        value[v] = apply_activation(hb.act[b * hb.max_nodes + v], acc);
      }
      const float o0 = value[kNumInputs];
      const float o1 = hb.num_outputs == 3 ? value[kNumInputs + 1] : 0.0f;
      const float o2 = hb.num_outputs == 3 ? value[kNumInputs + 2] : 0.0f;
      write_pixel(p, hb.num_outputs, o0, o1, o2, out.data() + int64_t{row} * p.width + col, plane);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Genome batches.

struct Shape {
  int32_t batch, num_outputs, max_nodes, max_edges;
};

Shape random_shape(Rng& rng, int32_t max_batch = 8) {
  Shape s{};
  s.num_outputs = pick(rng, {1, 3});
  const int32_t first_hidden = kNumInputs + s.num_outputs;
  const bool huge = chance(rng, 0.03);  // the largest capacities, with few genomes
  s.batch = static_cast<int32_t>(uniform(rng, 0, huge ? std::min(2, max_batch) : max_batch));
  if (huge) {
    s.max_nodes = pick(rng, {first_hidden, 64, kMaxNodesCapacity});
    s.max_edges = pick(rng, {0, 64, kMaxEdgesCapacity});
    return s;
  }
  s.max_nodes = chance(rng, 0.1)
                    ? first_hidden
                    : static_cast<int32_t>(uniform(rng, first_hidden, first_hidden + pick(rng, {8, 32, 300})));
  s.max_edges = chance(rng, 0.1) ? 0 : static_cast<int32_t>(uniform(rng, 0, pick(rng, {8, 64, 300})));
  return s;
}

HostBatch make_batch(const Shape& s) { return HostBatch(s.batch, s.num_outputs, s.max_nodes, s.max_edges); }

size_t node_at(const HostBatch& hb, int32_t b, int64_t i) { return static_cast<size_t>(b * int64_t{hb.max_nodes} + i); }
size_t edge_at(const HostBatch& hb, int32_t b, int64_t e) { return static_cast<size_t>(b * int64_t{hb.max_edges} + e); }

// Random bits in the padding of genome b (whose counts are in range): validity must not depend on them.
void fill_padding(HostBatch& hb, int32_t b, Rng& rng) {
  for (int32_t i = hb.num_nodes[b]; i < hb.max_nodes; ++i) hb.act[node_at(hb, b, i)] = raw_int(rng);
  for (int32_t e = hb.num_edges[b]; e < hb.max_edges; ++e) {
    hb.src[edge_at(hb, b, e)] = raw_int(rng);
    hb.dst[edge_at(hb, b, e)] = raw_int(rng);
    hb.weight[edge_at(hb, b, e)] = raw_float(rng);
  }
}

// (a) A valid genome in row b (which holds the bare genome of the constructor).
void build_valid(HostBatch& hb, int32_t b, Rng& rng) {
  const int32_t room = hb.max_nodes - (kNumInputs + hb.num_outputs);
  const int32_t hidden = static_cast<int32_t>(uniform(rng, 0, std::min(room, chance(rng, 0.05) ? 200 : 12)));
  const float density = pick(rng, {0.0f, 0.05f, 0.2f, 0.5f, 1.0f});
  std::mt19937 builder(static_cast<uint32_t>(rng()));
  hb.randomize(b, builder, hidden, density);
  // Input activations are ignored: any value is fine.
  for (int32_t i = 0; i < kNumInputs; ++i) {
    if (chance(rng, 0.2)) hb.act[node_at(hb, b, i)] = raw_int(rng);
  }
  // Storage order is free, and so are the weights' magnitudes.
  const int32_t m = hb.num_edges[b];
  for (int32_t e = m - 1; e > 0; --e) {
    if (!chance(rng, 0.5)) continue;
    const int32_t k = static_cast<int32_t>(uniform(rng, 0, e));
    std::swap(hb.src[edge_at(hb, b, e)], hb.src[edge_at(hb, b, k)]);
    std::swap(hb.dst[edge_at(hb, b, e)], hb.dst[edge_at(hb, b, k)]);
    std::swap(hb.weight[edge_at(hb, b, e)], hb.weight[edge_at(hb, b, k)]);
  }
  for (int32_t e = 0; e < m; ++e) {
    if (chance(rng, 0.1)) hb.weight[edge_at(hb, b, e)] = finite_weight(rng);
  }
  fill_padding(hb, b, rng);
}

// Appends edge s -> d to genome b when there is room, else overwrites a random edge of the row (if any).
void put_edge(HostBatch& hb, int32_t b, int32_t s, int32_t d, Rng& rng) {
  int32_t e;
  if (hb.num_edges[b] >= 0 && hb.num_edges[b] < hb.max_edges) {
    e = hb.num_edges[b]++;
  } else if (hb.max_edges > 0) {
    e = static_cast<int32_t>(uniform(rng, 0, hb.max_edges - 1));
  } else {
    return;
  }
  hb.src[edge_at(hb, b, e)] = s;
  hb.dst[edge_at(hb, b, e)] = d;
  hb.weight[edge_at(hb, b, e)] = finite_weight(rng);
}

// (b) A valid genome with 1 to 3 corruptions (a later one may undo an earlier one's effect: the reference
// decides what the genome is).
void build_corrupt(HostBatch& hb, int32_t b, Rng& rng) {
  build_valid(hb, b, rng);
  const int32_t first_hidden = kNumInputs + hb.num_outputs;
  const int64_t corruptions = uniform(rng, 1, 3);
  for (int64_t c = 0; c < corruptions; ++c) {
    // Counts as they are now, clipped to the rows, for picking entries.
    const int32_t n = std::clamp(hb.num_nodes[b], 0, hb.max_nodes);
    const int32_t m = std::clamp(hb.num_edges[b], 0, hb.max_edges);
    switch (uniform(rng, 0, 10)) {
      case 0:
        hb.num_nodes[b] = chance(rng, 0.3) ? static_cast<int32_t>(uniform(rng, 0, first_hidden - 1))
                                           : outside(rng, first_hidden, hb.max_nodes);
        break;
      case 1:  // fewer nodes: edges may now name nodes that are gone
        hb.num_nodes[b] = static_cast<int32_t>(uniform(rng, first_hidden, std::max(first_hidden, n)));
        break;
      case 2: hb.num_edges[b] = outside(rng, 0, hb.max_edges); break;
      case 3:  // padding garbage becomes live
        hb.num_edges[b] = static_cast<int32_t>(uniform(rng, m, hb.max_edges));
        hb.num_nodes[b] = static_cast<int32_t>(uniform(rng, std::max(n, first_hidden), hb.max_nodes));
        break;
      case 4:
        if (n > kNumInputs) {
          hb.act[node_at(hb, b, uniform(rng, kNumInputs, n - 1))] = outside(rng, 0, kNumActivations - 1);
        }
        break;
      case 5:
        if (m > 0) hb.src[edge_at(hb, b, uniform(rng, 0, m - 1))] = outside(rng, 0, std::max(n - 1, 0));
        break;
      case 6:
        if (m > 0) {
          hb.dst[edge_at(hb, b, uniform(rng, 0, m - 1))] = chance(rng, 0.5)
                                                               ? static_cast<int32_t>(uniform(rng, 0, kNumInputs - 1))
                                                               : outside(rng, 0, std::max(n - 1, 0));
        }
        break;
      case 7:
        if (m > 0) hb.weight[edge_at(hb, b, uniform(rng, 0, m - 1))] = non_finite(rng);
        break;
      case 8:  // self-loop
        if (n > kNumInputs) {
          const int32_t v = static_cast<int32_t>(uniform(rng, kNumInputs, n - 1));
          put_edge(hb, b, v, v, rng);
        }
        break;
      case 9:  // an edge back along an existing edge, or along a longer path when there is one
        if (m > 0 && reference_check(hb, b).error.code == kGenomeOk) {
          const int32_t e = static_cast<int32_t>(uniform(rng, 0, m - 1));
          const int32_t s = hb.src[edge_at(hb, b, e)], d = hb.dst[edge_at(hb, b, e)];
          if (s >= kNumInputs) put_edge(hb, b, d, s, rng);
        }
        break;
      default:
        if (reference_check(hb, b).error.code == kGenomeOk && n > kNumInputs) {
          const int32_t u = static_cast<int32_t>(uniform(rng, kNumInputs, n - 1));
          const int32_t w = static_cast<int32_t>(uniform(rng, kNumInputs, n - 1));
          if (reachable(hb, b, u, w)) put_edge(hb, b, w, u, rng);
        }
        break;
    }
  }
}

// (c) Random bits in every field of row b.
void build_raw(HostBatch& hb, int32_t b, Rng& rng) {
  hb.num_nodes[b] = raw_int(rng);
  hb.num_edges[b] = raw_int(rng);
  for (int32_t i = 0; i < hb.max_nodes; ++i) hb.act[node_at(hb, b, i)] = raw_int(rng);
  for (int32_t e = 0; e < hb.max_edges; ++e) {
    hb.src[edge_at(hb, b, e)] = raw_int(rng);
    hb.dst[edge_at(hb, b, e)] = raw_int(rng);
    hb.weight[edge_at(hb, b, e)] = raw_float(rng);
  }
}

// (c') Random small values in every field of row b: they get past the count checks and often form cycles.
void build_raw_small(HostBatch& hb, int32_t b, Rng& rng) {
  const int32_t first_hidden = kNumInputs + hb.num_outputs;
  const int32_t n = static_cast<int32_t>(uniform(rng, first_hidden - 1, std::min(hb.max_nodes, first_hidden + 12) + 1));
  hb.num_nodes[b] = n;
  hb.num_edges[b] = static_cast<int32_t>(uniform(rng, -1, std::min(hb.max_edges, 24) + 1));
  const bool clean = chance(rng, 0.5);  // fields in range: only cycles can make it invalid
  for (int32_t i = 0; i < hb.max_nodes; ++i) {
    hb.act[node_at(hb, b, i)] = static_cast<int32_t>(uniform(rng, clean ? 0 : -1, clean ? 3 : 4));
  }
  for (int32_t e = 0; e < hb.max_edges; ++e) {
    hb.src[edge_at(hb, b, e)] = static_cast<int32_t>(uniform(rng, clean ? 0 : -1, std::max(n - (clean ? 1 : 0), 0)));
    hb.dst[edge_at(hb, b, e)] =
        static_cast<int32_t>(uniform(rng, clean ? kNumInputs : -1, std::max(n - (clean ? 1 : 0), kNumInputs)));
    hb.weight[edge_at(hb, b, e)] = !clean && chance(rng, 0.05) ? non_finite(rng) : finite_weight(rng);
  }
}

// A batch of the given shape, each genome of a random kind; valid genomes are the most common.
HostBatch random_batch(const Shape& s, Rng& rng, double valid_share = 0.45) {
  HostBatch hb = make_batch(s);
  for (int32_t b = 0; b < s.batch; ++b) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const double rest = (1.0 - valid_share) / 11.0;
    if (u < valid_share)
      build_valid(hb, b, rng);
    else if (u < valid_share + 6 * rest)
      build_corrupt(hb, b, rng);
    else if (u < valid_share + 9 * rest)
      build_raw_small(hb, b, rng);
    else
      build_raw(hb, b, rng);
  }
  return hb;
}

bool same_bits(const void* a, const void* b, size_t bytes) { return bytes == 0 || std::memcmp(a, b, bytes) == 0; }

// Whether genome b of `a` and of `c` (same shape) are identical, padding included.
bool same_genome(const HostBatch& a, const HostBatch& c, int32_t b) {
  const size_t nodes = static_cast<size_t>(a.max_nodes), edges = static_cast<size_t>(a.max_edges);
  return a.num_nodes[b] == c.num_nodes[b] && a.num_edges[b] == c.num_edges[b] &&
         same_bits(&a.act[node_at(a, b, 0)], &c.act[node_at(c, b, 0)], nodes * sizeof(int32_t)) &&
         (edges == 0 || (same_bits(&a.src[edge_at(a, b, 0)], &c.src[edge_at(c, b, 0)], edges * sizeof(int32_t)) &&
                         same_bits(&a.dst[edge_at(a, b, 0)], &c.dst[edge_at(c, b, 0)], edges * sizeof(int32_t)) &&
                         same_bits(&a.weight[edge_at(a, b, 0)], &c.weight[edge_at(c, b, 0)], edges * sizeof(float))));
}

bool same_batch(const HostBatch& a, const HostBatch& c) {
  for (int32_t b = 0; b < a.batch; ++b) {
    if (!same_genome(a, c, b)) return false;
  }
  return true;
}

// An error as text, to compare and print whole records.
std::string text(const GenomeError& e) {
  return "{code " + std::to_string(e.code) + ", index " + std::to_string(e.index) + ", value " +
         std::to_string(e.value) + "}";
}
const std::string kOk = text(GenomeError{kGenomeOk, 0, 0});

std::string describe(const Shape& s) {
  return "batch " + std::to_string(s.batch) + ", outputs " + std::to_string(s.num_outputs) + ", max_nodes " +
         std::to_string(s.max_nodes) + ", max_edges " + std::to_string(s.max_edges);
}

// Restores the default thread count when a test ends, however it ends.
struct DefaultThreadsAfter {
  DefaultThreadsAfter() = default;
  DefaultThreadsAfter(const DefaultThreadsAfter&) = delete;
  DefaultThreadsAfter& operator=(const DefaultThreadsAfter&) = delete;
  ~DefaultThreadsAfter() {
    try {
      set_num_threads(0);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "restoring the default thread count: " << e.what();
    }
  }
};

// Restores an environment variable as the test found it.
class EnvRestore {
 public:
  explicit EnvRestore(const char* name) : name_(name) {
    const char* value = std::getenv(name);
    if (value != nullptr) saved_ = value;
    had_ = value != nullptr;
  }
  EnvRestore(const EnvRestore&) = delete;
  EnvRestore& operator=(const EnvRestore&) = delete;
  ~EnvRestore() {
    if (had_)
      ::setenv(name_, saved_.c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string saved_;
  bool had_;
};

#define FUZZ_TRACE(seed, it) \
  SCOPED_TRACE("FOOLING_FUZZ_SEED " + std::to_string(seed) + ", iteration " + std::to_string(it))

// ------------------------------------------------------------------------------------------------
// Call checks: what the bindings accept is what these plain predicates accept.

bool render_call_ok(const CppnBatchView& g, const RenderParams& p) {
  return g.batch >= 0 && (g.num_outputs == 1 || g.num_outputs == 3) && g.max_nodes >= kNumInputs + g.num_outputs &&
         g.max_nodes <= kMaxNodesCapacity && g.max_edges >= 0 && g.max_edges <= kMaxEdgesCapacity && p.height >= 1 &&
         p.height <= kMaxImageSide && p.width >= 1 && p.width <= kMaxImageSide &&
         (p.coords == kCoordsNormalized || p.coords == kCoordsPixel) &&
         (p.color == kColorHsl || p.color == kColorHsv || p.color == kColorHls8) &&
         (p.quantize == 0 || p.quantize == 1);
}

// An int32 near the interesting bounds, or anything.
int32_t header_value(Rng& rng, std::initializer_list<int32_t> bounds) {
  if (chance(rng, 0.2)) return raw_int(rng);
  const int32_t at = pick(rng, bounds);
  const int32_t step = static_cast<int32_t>(uniform(rng, -1, 1));
  return (at == kI32Min && step < 0) || (at == kI32Max && step > 0) ? at : at + step;
}

RenderParams random_render_params(Rng& rng) {
  RenderParams p;
  const int32_t side = pick(rng, {1, 2, 5, 17, 40});
  p.height = static_cast<int32_t>(uniform(rng, 1, side));
  p.width = static_cast<int32_t>(uniform(rng, 1, pick(rng, {1, 2, 5, 17, 40})));
  p.coords = pick(rng, {int32_t{kCoordsNormalized}, int32_t{kCoordsPixel}});
  p.color = pick(rng, {int32_t{kColorHsl}, int32_t{kColorHsv}, int32_t{kColorHls8}});
  p.quantize = pick(rng, {0, 1});
  return p;
}

}  // namespace

// ------------------------------------------------------------------------------------------------

TEST(FuzzCalls, ChecksAcceptExactlyTheWellFormedCalls) {
  const uint64_t seed = base_seed() ^ 0x1;
  Rng rng(seed);
  const int64_t rounds = iterations() * 20;
  for (int64_t it = 0; it < rounds; ++it) {
    FUZZ_TRACE(seed, it);
    CppnBatchView g;
    g.batch = header_value(rng, {0, 8, kI32Min, kI32Max});
    g.num_outputs = header_value(rng, {1, 3, 0, kI32Max, kI32Min});
    g.max_nodes = header_value(rng, {5, 7, kMaxNodesCapacity, 0, kI32Max});
    g.max_edges = header_value(rng, {0, kMaxEdgesCapacity, kI32Min});
    RenderParams p;
    p.height = header_value(rng, {1, kMaxImageSide, 0, kI32Max});
    p.width = header_value(rng, {1, kMaxImageSide, kI32Min});
    p.coords = header_value(rng, {0, 1, kI32Max});
    p.color = header_value(rng, {0, 1, 2, kI32Min});
    p.quantize = header_value(rng, {0, 1, kI32Max});
    const bool ok = render_call_ok(g, p);
    ASSERT_EQ(check_render_call(g, p).empty(), ok)
        << check_render_call(g, p) << " for batch " << g.batch << ", outputs " << g.num_outputs << ", max_nodes "
        << g.max_nodes << ", max_edges " << g.max_edges << ", image " << p.height << "x" << p.width << ", coords "
        << p.coords << ", color " << p.color;
    ASSERT_EQ(check_cppn_batch(g).empty(), render_call_ok(g, RenderParams{}));

    CppnBatchView other = g;
    if (chance(rng, 0.5)) other.num_outputs = pick(rng, {1, 3});
    if (chance(rng, 0.5)) other.max_nodes = static_cast<int32_t>(uniform(rng, 7, 64));
    if (chance(rng, 0.5)) other.max_edges = static_cast<int32_t>(uniform(rng, 0, 64));
    other.batch = static_cast<int32_t>(uniform(rng, 0, 8));
    const bool select_ok = render_call_ok(g, RenderParams{}) && render_call_ok(other, RenderParams{}) &&
                           g.num_outputs == other.num_outputs && g.max_nodes == other.max_nodes &&
                           g.max_edges == other.max_edges;
    const std::string select_message = check_select_call(g, other);
    ASSERT_EQ(select_message.empty(), select_ok) << select_message;
    if (!select_ok && render_call_ok(g, RenderParams{}) && render_call_ok(other, RenderParams{})) {
      ASSERT_NE(select_message.find("num_outputs, max_nodes and max_edges"), std::string::npos) << select_message;
    }

    const int64_t batch =
        pick(rng, {uniform(rng, -2, 10), uniform(rng, 0, int64_t{1} << 33), -(int64_t{1} << 40), kI64Max});
    const int64_t limit = int64_t{1} << 32;
    const int64_t offset = pick(rng, {int64_t{0}, limit - std::max<int64_t>(batch, 0), limit - batch + 1, int64_t{-1},
                                      uniform(rng, 0, limit), kI64Max, kI64Min});
    const bool range_ok = batch >= 0 && offset >= 0 && batch <= limit && offset <= limit - batch;
    ASSERT_EQ(check_genome_range(batch, offset).empty(), range_ok) << "batch " << batch << ", offset " << offset;
    const int64_t genes = pick(rng, {int64_t{1}, int64_t{0}, int64_t{-1}, kMaxGenesPerGenome, kMaxGenesPerGenome + 1,
                                     kI64Min, kI64Max, uniform(rng, 1, 1 << 20)});
    ASSERT_EQ(check_pixel_batch(batch, genes, offset).empty(), range_ok && genes >= 1 && genes <= kMaxGenesPerGenome)
        << "batch " << batch << ", genes " << genes << ", offset " << offset;
  }
}

TEST(FuzzGenomes, ValidateAndRenderAgreeWithTheRulesAndAPlainEvaluation) {
  DefaultThreadsAfter restore;
  const uint64_t seed = base_seed() ^ 0x2;
  Rng rng(seed);
  int64_t valid = 0, invalid = 0, compared_pixels = 0;
  std::vector<int64_t> codes(kCycle + 1, 0);
  for (int64_t it = 0; it < iterations(); ++it) {
    FUZZ_TRACE(seed, it);
    const Shape shape = random_shape(rng);
    SCOPED_TRACE(describe(shape));
    HostBatch hb = random_batch(shape, rng);
    const HostBatch before = hb;
    std::vector<Reference> refs;
    int32_t expected_invalid = 0;
    for (int32_t b = 0; b < hb.batch; ++b) {
      refs.push_back(reference_check(hb, b));
      expected_invalid += refs.back().error.code != kGenomeOk;
      codes[refs.back().error.code] += 1;
    }
    valid += hb.batch - expected_invalid;
    invalid += expected_invalid;

    // validate_cpu, with 1 and 3 threads.
    for (const int threads : {1, 3}) {
      set_num_threads(threads);
      std::vector<GenomeError> errors(hb.batch, GenomeError{-1, -1, -1});
      ASSERT_EQ(validate_cpu(hb.view(), errors.data()), expected_invalid) << threads << " threads";
      for (int32_t b = 0; b < hb.batch; ++b) ASSERT_EQ(text(errors[b]), text(refs[b].error)) << "genome " << b;
      ASSERT_TRUE(same_batch(hb, before)) << "validate_cpu changed a genome";
    }

    // render_cpu: every mode, 1 and 3 threads give the same bytes.
    const RenderParams p = random_render_params(rng);
    SCOPED_TRACE("image " + std::to_string(p.height) + "x" + std::to_string(p.width) + ", coords " +
                 std::to_string(p.coords) + ", color " + std::to_string(p.color));
    ASSERT_EQ(check_render_call(hb.view(), p), "");
    const int64_t plane = int64_t{p.height} * p.width, image = plane * hb.num_outputs;
    std::vector<float> images[2];
    int k = 0;
    for (const int threads : {1, 3}) {
      set_num_threads(threads);
      std::vector<float>& out = images[k++];
      out.assign(static_cast<size_t>(image * hb.batch), threads == 1 ? std::nanf("") : -7.0f);
      std::vector<GenomeError> errors(hb.batch, GenomeError{-1, -1, -1});
      ASSERT_EQ(render_cpu(hb.view(), p, out.data(), errors.data()), expected_invalid) << threads << " threads";
      for (int32_t b = 0; b < hb.batch; ++b) ASSERT_EQ(text(errors[b]), text(refs[b].error)) << "genome " << b;
      ASSERT_TRUE(same_batch(hb, before)) << "render_cpu changed a genome";
    }
    ASSERT_TRUE(same_bits(images[0].data(), images[1].data(), images[0].size() * sizeof(float)))
        << "1 and 3 threads rendered different images";

    for (int32_t b = 0; b < hb.batch; ++b) {
      const float* img = images[0].data() + b * image;
      if (refs[b].error.code != kGenomeOk) {
        for (int64_t i = 0; i < image; ++i) {
          ASSERT_EQ(float_bits(img[i]), 0u) << "invalid genome " << b << ", value " << i << ": " << img[i];
        }
        continue;
      }
      for (int64_t i = 0; i < image; ++i) {
        ASSERT_TRUE(std::isfinite(img[i]) && img[i] >= 0.0f && img[i] <= 1.0f) << "genome " << b << ": " << img[i];
      }
      // A direct evaluation, where it is cheap enough.
      if (plane * (hb.num_nodes[b] + hb.num_edges[b]) <= 400000) {
        const std::vector<float> ref = reference_image(hb, b, refs[b].order, p);
        for (int64_t i = 0; i < image; ++i) {
          ASSERT_EQ(float_bits(img[i]), float_bits(ref[i]))
              << "genome " << b << ", channel " << i / plane << ", pixel " << i % plane << ": rendered " << img[i]
              << ", evaluated " << ref[i];
        }
        compared_pixels += image;
      }
    }

    // The padding does not change anything: fresh garbage there, same errors and the same image.
    if (chance(rng, 0.3)) {
      for (int32_t b = 0; b < hb.batch; ++b) {
        if (refs[b].error.code == kGenomeOk) fill_padding(hb, b, rng);
      }
      set_num_threads(static_cast<int>(uniform(rng, 1, 3)));
      std::vector<float> again(images[0].size(), 5.0f);
      std::vector<GenomeError> errors(hb.batch);
      ASSERT_EQ(render_cpu(hb.view(), p, again.data(), errors.data()), expected_invalid);
      ASSERT_TRUE(same_bits(again.data(), images[0].data(), again.size() * sizeof(float)))
          << "the padding changed the image";
    }
  }
  // The inputs reached both sides and every error.
  EXPECT_GT(valid, 0);
  EXPECT_GT(invalid, 0);
  EXPECT_GT(compared_pixels, 0);
  if (iterations() >= kDefaultIterations) {
    for (int32_t code = kNodeCountOutOfRange; code <= kCycle; ++code)
      EXPECT_GT(codes[code], 0) << "error code " << code;
  }
}

namespace {

// Valid mutation parameters, from the ordinary to the extreme.
CppnMutationParams random_cppn_params(Rng& rng) {
  CppnMutationParams p;
  p.p_weight = probability(rng);
  p.p_activation = probability(rng);
  p.p_add_edge = probability(rng);
  p.p_delete_edge = probability(rng);
  p.p_add_node = probability(rng);
  p.p_delete_node = probability(rng);
  p.eta = pick(rng, {15.0f, 1.0f, 0.01f, 1000.0f, kFloatMax, std::numeric_limits<float>::denorm_min(),
                     std::uniform_real_distribution<float>(0.1f, 100.0f)(rng)});
  switch (uniform(rng, 0, 4)) {
    case 0:
      p.weight_min = -1.5e38f;
      p.weight_max = 1.5e38f;
      break;
    case 1:
      p.weight_min = std::uniform_real_distribution<float>(-100.0f, 100.0f)(rng);
      p.weight_max = std::nextafter(p.weight_min, kInf);
      break;
    case 2:
      p.weight_min = std::uniform_real_distribution<float>(-100.0f, 100.0f)(rng);
      p.weight_max = p.weight_min + std::uniform_real_distribution<float>(0.5f, 50.0f)(rng);
      break;
    default: break;  // the defaults, -10 and 10
  }
  p.activations = static_cast<uint32_t>(uniform(rng, 1, kAllActivations));
  p.add_edge_attempts = static_cast<int32_t>(chance(rng, 0.1) ? uniform(rng, 1, 200) : uniform(rng, 1, 12));
  p.add_edge = static_cast<int32_t>(uniform(rng, kAddEdgeOriginal, kAddEdgeRejection));
  return p;
}

// Valid parameters with one field made invalid; `field` is the name the check's message must start with.
CppnMutationParams rejected_cppn_params(Rng& rng, std::string* field) {
  CppnMutationParams p = random_cppn_params(rng);
  const float bad_probability =
      pick(rng, {-0.1f, std::nextafter(1.0f, 2.0f), 2.0f, -kInf, kInf, std::numeric_limits<float>::quiet_NaN(),
                 -std::numeric_limits<float>::denorm_min()});
  switch (uniform(rng, 0, 9)) {
    case 0:
      p.p_weight = bad_probability;
      *field = "p_weight";
      break;
    case 1:
      p.p_activation = bad_probability;
      *field = "p_activation";
      break;
    case 2:
      p.p_add_edge = bad_probability;
      *field = "p_add_edge";
      break;
    case 3:
      p.p_delete_edge = bad_probability;
      *field = "p_delete_edge";
      break;
    case 4:
      p.p_add_node = bad_probability;
      *field = "p_add_node";
      break;
    case 5:
      p.p_delete_node = bad_probability;
      *field = "p_delete_node";
      break;
    case 6:
      p.eta = pick(rng, {0.0f, -0.0f, -1.0f, kInf, -kInf, std::numeric_limits<float>::quiet_NaN()});
      *field = "eta";
      break;
    case 7:
      switch (uniform(rng, 0, 4)) {
        case 0: p.weight_max = p.weight_min; break;
        case 1: std::swap(p.weight_min, p.weight_max); break;
        case 2: p.weight_min = non_finite(rng); break;
        case 3: p.weight_max = non_finite(rng); break;
        default:
          p.weight_min = -3e38f;
          p.weight_max = 3e38f;
          break;  // the span overflows
      }
      *field = "weight_min";
      break;
    case 8:
      p.activations = pick(rng, {0u, 1u << kNumActivations, 0x80000000u, 0xffffffffu, kAllActivations + 1u});
      *field = "activations";
      break;
    default:
      if (chance(rng, 0.5)) {
        p.add_edge = pick(rng, {-1, 2, kI32Min, std::numeric_limits<int32_t>::max()});
        *field = "add_edge";
      } else {
        p.add_edge_attempts = pick(rng, {0, -1, kI32Min});
        *field = "add_edge_attempts";
      }
      break;
  }
  return p;
}

std::vector<GenomeError> mutate_with(HostBatch& hb, const CppnMutationParams& p, uint64_t seed, uint32_t generation,
                                     uint32_t offset, int threads, int32_t* invalid) {
  set_num_threads(threads);
  std::vector<GenomeError> errors(hb.batch, GenomeError{-1, -1, -1});
  std::vector<int32_t> blocked(hb.batch, -1);
  *invalid = mutate_cppn_cpu(hb.view(), p, seed, generation, offset, errors.data(), blocked.data());
  for (int32_t b = 0; b < hb.batch; ++b) {
    // Only the two capacity bits, and none for a genome left untouched.
    EXPECT_EQ(blocked[b] & ~(kBlockedAddEdge | kBlockedAddNode), 0) << "genome " << b;
    if (errors[b].code != kGenomeOk) EXPECT_EQ(blocked[b], 0) << "genome " << b;
  }
  return errors;
}

uint32_t random_offset(Rng& rng, int32_t batch) {
  const int64_t top = (int64_t{1} << 32) - batch;
  return static_cast<uint32_t>(chance(rng, 0.2) ? top : uniform(rng, 0, top));
}

}  // namespace

TEST(FuzzMutation, ValidGenomesStayValidAndInvalidOnesAreUntouched) {
  DefaultThreadsAfter restore;
  const uint64_t seed = base_seed() ^ 0x3;
  Rng rng(seed);
  int64_t mutated = 0, refused = 0, changed = 0;
  for (int64_t it = 0; it < iterations(); ++it) {
    FUZZ_TRACE(seed, it);
    const Shape shape = random_shape(rng);
    SCOPED_TRACE(describe(shape));
    HostBatch hb = random_batch(shape, rng, 0.6);
    ASSERT_EQ(check_cppn_batch(hb.view()), "");
    const CppnMutationParams p = random_cppn_params(rng);
    ASSERT_EQ(check_cppn_mutation_params(p), "");
    const uint64_t run_seed = rng();
    const int64_t generations = uniform(rng, 1, 4);
    for (int64_t gen = 0; gen < generations; ++gen) {
      SCOPED_TRACE("generation " + std::to_string(gen));
      const uint32_t generation = static_cast<uint32_t>(rng());
      const uint32_t offset = random_offset(rng, hb.batch);
      ASSERT_EQ(check_genome_range(hb.batch, offset), "");
      const HostBatch before = hb;
      std::vector<GenomeError> expected(hb.batch);
      int32_t expected_invalid = 0;
      {
        std::vector<GenomeError> validated(hb.batch);
        expected_invalid = validate_cpu(hb.view(), validated.data());
        for (int32_t b = 0; b < hb.batch; ++b) {
          expected[b] = reference_check(hb, b).error;
          ASSERT_EQ(text(validated[b]), text(expected[b])) << "genome " << b;
        }
      }

      int32_t invalid_one = -1, invalid_three = -1;
      const std::vector<GenomeError> errors = mutate_with(hb, p, run_seed, generation, offset, 1, &invalid_one);
      HostBatch three = before;
      const std::vector<GenomeError> errors_three =
          mutate_with(three, p, run_seed, generation, offset, 3, &invalid_three);
      ASSERT_EQ(invalid_one, expected_invalid);
      ASSERT_EQ(invalid_three, expected_invalid);
      ASSERT_TRUE(same_batch(hb, three)) << "1 and 3 threads mutated differently";

      // Two calls on two parts of the batch, with the offsets of the parts, give the same children.
      if (hb.batch > 0 && chance(rng, 0.3)) {
        HostBatch parts = before;
        const int32_t split = static_cast<int32_t>(uniform(rng, 0, hb.batch));
        std::vector<GenomeError> part_errors(hb.batch);
        set_num_threads(static_cast<int>(uniform(rng, 1, 3)));
        const CppnBatchView all = parts.view();
        const int32_t a =
            mutate_cppn_cpu(all.slice(0, split), p, run_seed, generation, offset, part_errors.data(), nullptr);
        const int32_t c = mutate_cppn_cpu(all.slice(split, hb.batch - split), p, run_seed, generation,
                                          offset + static_cast<uint32_t>(split), part_errors.data() + split, nullptr);
        ASSERT_EQ(a + c, expected_invalid);
        ASSERT_TRUE(same_batch(parts, hb)) << "split at " << split << " mutated differently";
      }

      for (int32_t b = 0; b < hb.batch; ++b) {
        ASSERT_EQ(text(errors_three[b]), text(errors[b])) << "genome " << b;
        if (expected[b].code != kGenomeOk) {
          ASSERT_EQ(text(errors[b]), text(expected[b])) << "genome " << b;
          ASSERT_TRUE(same_genome(hb, before, b)) << "invalid genome " << b << " was changed";
          ++refused;
          continue;
        }
        ASSERT_EQ(text(errors[b]), kOk) << "genome " << b;
        const Reference after = reference_check(hb, b);
        ASSERT_EQ(text(after.error), kOk) << "valid genome " << b << " became invalid: " << before.num_nodes[b]
                                          << " nodes, " << before.num_edges[b] << " edges before";
        ASSERT_GE(hb.num_nodes[b], kNumInputs + hb.num_outputs);
        ASSERT_LE(hb.num_nodes[b], hb.max_nodes);
        ASSERT_GE(hb.num_edges[b], 0);
        ASSERT_LE(hb.num_edges[b], hb.max_edges);
        ++mutated;
        changed += !same_genome(hb, before, b);
      }
      std::vector<GenomeError> validated(hb.batch);
      int32_t still_invalid = 0;
      for (int32_t b = 0; b < hb.batch; ++b) still_invalid += expected[b].code != kGenomeOk;
      ASSERT_EQ(validate_cpu(hb.view(), validated.data()), still_invalid);
    }
  }
  EXPECT_GT(mutated, 0);
  EXPECT_GT(refused, 0);
  EXPECT_GT(changed, 0);
}

TEST(FuzzMutation, RejectedParametersAreNamedAndCannotBreakMemory) {
  DefaultThreadsAfter restore;
  const uint64_t seed = base_seed() ^ 0x4;
  Rng rng(seed);
  for (int64_t it = 0; it < iterations(); ++it) {
    FUZZ_TRACE(seed, it);
    std::string field;
    const CppnMutationParams p = rejected_cppn_params(rng, &field);
    const std::string message = check_cppn_mutation_params(p);
    ASSERT_EQ(message.rfind(field + " ", 0), 0u) << "expected a message about " << field << ", got: " << message;

    // The bindings never pass such parameters to the core; if a caller did, the core would still stay within
    // its rows, leave invalid genomes alone and keep counts within capacity (the values are then unspecified).
    const Shape shape = random_shape(rng, 4);
    SCOPED_TRACE(describe(shape));
    HostBatch hb = random_batch(shape, rng, 0.6);
    const HostBatch before = hb;
    std::vector<GenomeError> expected(hb.batch);
    for (int32_t b = 0; b < hb.batch; ++b) expected[b] = reference_check(hb, b).error;
    int32_t invalid = -1;
    const std::vector<GenomeError> errors =
        mutate_with(hb, p, rng(), static_cast<uint32_t>(rng()), random_offset(rng, hb.batch),
                    static_cast<int>(uniform(rng, 1, 3)), &invalid);
    int32_t expected_invalid = 0;
    for (int32_t b = 0; b < hb.batch; ++b) {
      if (expected[b].code != kGenomeOk) {
        ++expected_invalid;
        ASSERT_EQ(text(errors[b]), text(expected[b]));
        ASSERT_TRUE(same_genome(hb, before, b));
      } else {
        ASSERT_EQ(errors[b].code, kGenomeOk);
        ASSERT_GE(hb.num_nodes[b], kNumInputs + hb.num_outputs);
        ASSERT_LE(hb.num_nodes[b], hb.max_nodes);
        ASSERT_GE(hb.num_edges[b], 0);
        ASSERT_LE(hb.num_edges[b], hb.max_edges);
      }
    }
    ASSERT_EQ(invalid, expected_invalid);
  }
}

TEST(FuzzSelection, FirstBadIndexAndCopiesMatchAPlainLoop) {
  DefaultThreadsAfter restore;
  const uint64_t seed = base_seed() ^ 0x5;
  Rng rng(seed);
  int64_t copied = 0, bare = 0;
  for (int64_t it = 0; it < iterations(); ++it) {
    FUZZ_TRACE(seed, it);
    const Shape shape = random_shape(rng);
    SCOPED_TRACE(describe(shape));
    HostBatch parents = random_batch(shape, rng);  // selection copies invalid genomes as they are
    Shape child_shape = shape;
    child_shape.batch = static_cast<int32_t>(uniform(rng, 0, 8));
    HostBatch children = make_batch(child_shape);
    for (int32_t i = 0; i < children.batch; ++i) build_raw(children, i, rng);
    ASSERT_EQ(check_select_call(parents.view(), children.view()), "");

    const int64_t rows = parents.batch;
    const auto random_index = [&](int64_t parent_rows) -> int64_t {
      if (parent_rows > 0 && chance(rng, 0.7)) return uniform(rng, 0, parent_rows - 1);
      return pick(rng, {int64_t{-1}, parent_rows, parent_rows + 1, kI64Min, kI64Max, int64_t{1} << 31, int64_t{1} << 32,
                        -(int64_t{1} << 31) - 1, static_cast<int64_t>(rng())});
    };
    std::vector<int64_t> index(children.batch);
    for (int64_t& i : index) i = random_index(rows);
    int64_t expected_first = -1;
    for (size_t i = 0; i < index.size(); ++i) {
      if (index[i] < 0 || index[i] >= rows) {
        expected_first = static_cast<int64_t>(i);
        break;
      }
    }
    const HostBatch parents_before = parents;
    set_num_threads(pick(rng, {1, 3}));
    ASSERT_EQ(select_cppn_cpu(parents.view(), index.data(), children.view()), expected_first);
    ASSERT_TRUE(same_batch(parents, parents_before)) << "selection changed a parent";
    const int32_t first_hidden = kNumInputs + shape.num_outputs;
    for (int32_t i = 0; i < children.batch; ++i) {
      const int64_t b = index[i];
      if (b >= 0 && b < rows) {
        // The whole row, padding included, bit for bit.
        ASSERT_EQ(children.num_nodes[i], parents.num_nodes[b]) << "child " << i;
        ASSERT_EQ(children.num_edges[i], parents.num_edges[b]) << "child " << i;
        ASSERT_TRUE(same_bits(&children.act[node_at(children, i, 0)],
                              &parents.act[node_at(parents, static_cast<int32_t>(b), 0)],
                              shape.max_nodes * sizeof(int32_t)));
        if (shape.max_edges > 0) {
          const size_t from = edge_at(parents, static_cast<int32_t>(b), 0), to = edge_at(children, i, 0);
          ASSERT_TRUE(same_bits(&children.src[to], &parents.src[from], shape.max_edges * sizeof(int32_t)));
          ASSERT_TRUE(same_bits(&children.dst[to], &parents.dst[from], shape.max_edges * sizeof(int32_t)));
          ASSERT_TRUE(same_bits(&children.weight[to], &parents.weight[from], shape.max_edges * sizeof(float)));
        }
        ++copied;
      } else {
        ASSERT_EQ(children.num_nodes[i], first_hidden) << "child " << i << " of index " << b;
        ASSERT_EQ(children.num_edges[i], 0) << "child " << i << " of index " << b;
        for (int32_t k = 0; k < first_hidden; ++k) ASSERT_EQ(children.act[node_at(children, i, k)], 0);
        ASSERT_EQ(reference_check(children, i).error.code, kGenomeOk);
        ++bare;
      }
    }

    // Rows of floats (pixel genomes).
    const int64_t parent_rows = uniform(rng, 0, 8);
    const int64_t row_size = pick(rng, {int64_t{1}, int64_t{3}, uniform(rng, 1, 64)});
    const int64_t count = uniform(rng, 0, 8);
    std::vector<float> from(static_cast<size_t>(parent_rows * row_size));
    for (float& x : from) x = raw_float(rng);  // NaNs included: rows are copied, not computed
    std::vector<float> to(static_cast<size_t>(count * row_size));
    for (float& x : to) x = raw_float(rng);
    std::vector<int64_t> pick_rows(static_cast<size_t>(count));
    for (int64_t& i : pick_rows) i = random_index(parent_rows);
    int64_t first_bad = -1;
    for (int64_t i = 0; i < count; ++i) {
      if (pick_rows[i] < 0 || pick_rows[i] >= parent_rows) {
        first_bad = i;
        break;
      }
    }
    const std::vector<float> from_before = from;
    set_num_threads(pick(rng, {1, 3}));
    ASSERT_EQ(select_rows_cpu(from.data(), parent_rows, row_size, pick_rows.data(), count, to.data()), first_bad);
    ASSERT_TRUE(same_bits(from.data(), from_before.data(), from.size() * sizeof(float)));
    for (int64_t i = 0; i < count; ++i) {
      const int64_t b = pick_rows[i];
      for (int64_t k = 0; k < row_size; ++k) {
        const uint32_t want = b >= 0 && b < parent_rows ? float_bits(from[b * row_size + k]) : 0u;
        ASSERT_EQ(float_bits(to[i * row_size + k]), want) << "row " << i << " (index " << b << "), element " << k;
      }
    }
  }
  EXPECT_GT(copied, 0);
  EXPECT_GT(bare, 0);
}

namespace {

PixelMutationParams random_pixel_params(Rng& rng) {
  PixelMutationParams p;
  p.rate = probability(rng);
  p.eta = pick(rng, {15.0f, 0.01f, 0.5f, 1000.0f, kFloatMax, std::numeric_limits<float>::denorm_min(),
                     std::uniform_real_distribution<float>(0.1f, 100.0f)(rng)});
  p.crossover = pick(rng, {0, 1});
  p.crossover_rate = probability(rng);
  p.eta_c = pick(rng, {10.0f, 0.01f, 0.5f, 1000.0f, kFloatMax, std::numeric_limits<float>::denorm_min(),
                       std::uniform_real_distribution<float>(0.1f, 100.0f)(rng)});
  return p;
}

PixelMutationParams rejected_pixel_params(Rng& rng, std::string* field) {
  PixelMutationParams p = random_pixel_params(rng);
  const float bad_probability =
      pick(rng, {-0.1f, std::nextafter(1.0f, 2.0f), kInf, -kInf, std::numeric_limits<float>::quiet_NaN()});
  const float bad_eta = pick(rng, {0.0f, -0.0f, -1.0f, kInf, -kInf, std::numeric_limits<float>::quiet_NaN()});
  switch (uniform(rng, 0, 4)) {
    case 0:
      p.rate = bad_probability;
      *field = "rate";
      break;
    case 1:
      p.eta = bad_eta;
      *field = "eta";
      break;
    case 2:
      p.crossover = pick(rng, {2, -1, kI32Min, kI32Max});
      *field = "crossover";
      break;
    case 3:
      p.crossover_rate = bad_probability;
      *field = "crossover_rate";
      break;
    default:
      p.eta_c = bad_eta;
      *field = "eta_c";
      break;
  }
  return p;
}

// Genes in [0, 1], the bounds and the smallest steps off them included.
std::vector<float> random_genes(Rng& rng, int64_t count) {
  std::vector<float> genes(static_cast<size_t>(count));
  for (float& x : genes) {
    switch (uniform(rng, 0, 9)) {
      case 0:
        x = pick(rng, {0.0f, 1.0f, -0.0f, std::numeric_limits<float>::denorm_min(), std::nextafter(1.0f, 0.0f)});
        break;
      case 1: x = 0.5f; break;
      default: x = uniform_float01(rng); break;
    }
  }
  return genes;
}

int64_t random_gene_count(Rng& rng) {
  switch (uniform(rng, 0, 9)) {
    case 0: return pick(rng, {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}});
    case 1: return pick(rng, {int64_t{1023}, int64_t{1024}, int64_t{1025}, int64_t{3 * 28 * 28}});
    case 2: return chance(rng, 0.2) ? uniform(rng, 16380, 16400) : uniform(rng, 1, 4000);  // spans tasks
    default: return uniform(rng, 1, 300);
  }
}

}  // namespace

TEST(FuzzPixels, GenesStayInTheUnitIntervalAndMatchThePerGroupFunctions) {
  DefaultThreadsAfter restore;
  const uint64_t seed = base_seed() ^ 0x6;
  Rng rng(seed);
  int64_t moved = 0;
  for (int64_t it = 0; it < iterations(); ++it) {
    FUZZ_TRACE(seed, it);
    const int64_t batch = uniform(rng, 0, 8);
    int64_t genes = random_gene_count(rng);
    if (genes > 4000) genes = batch > 2 ? uniform(rng, 1, 300) : genes;
    const uint32_t offset = random_offset(rng, static_cast<int32_t>(batch));
    const uint64_t run_seed = rng();
    const uint32_t generation = static_cast<uint32_t>(rng());
    SCOPED_TRACE("batch " + std::to_string(batch) + ", genes " + std::to_string(genes) + ", offset " +
                 std::to_string(offset));
    ASSERT_EQ(check_pixel_batch(batch, genes, offset), "");
    const size_t total = static_cast<size_t>(batch * genes);

    // Initial genes.
    std::vector<float> init_one(total, -1.0f), init_three(total, -2.0f), init_groups(total, -3.0f);
    set_num_threads(1);
    init_pixels_cpu(init_one.data(), batch, genes, run_seed, offset);
    set_num_threads(3);
    init_pixels_cpu(init_three.data(), batch, genes, run_seed, offset);
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t group = 0; group < gene_groups(genes); ++group) {
        init_pixel_group(init_groups.data() + b * genes, genes, group, philox_key(run_seed),
                         offset + static_cast<uint32_t>(b));
      }
    }
    ASSERT_TRUE(same_bits(init_one.data(), init_three.data(), total * sizeof(float)));
    ASSERT_TRUE(same_bits(init_one.data(), init_groups.data(), total * sizeof(float)));
    for (const float x : init_one) ASSERT_TRUE(x >= 0.0f && x < 1.0f) << x;

    // Mutation (and crossover) of genes in [0, 1].
    const PixelMutationParams p = random_pixel_params(rng);
    SCOPED_TRACE("rate " + std::to_string(p.rate) + ", eta " + std::to_string(p.eta) + ", crossover " +
                 std::to_string(p.crossover) + ", crossover_rate " + std::to_string(p.crossover_rate) + ", eta_c " +
                 std::to_string(p.eta_c));
    ASSERT_EQ(check_pixel_mutation_params(p), "");
    const std::vector<float> start = chance(rng, 0.2) ? init_one : random_genes(rng, static_cast<int64_t>(total));
    std::vector<float> one = start, three = start, groups = start;
    set_num_threads(1);
    mutate_pixels_cpu(one.data(), batch, genes, p, run_seed, generation, offset);
    set_num_threads(3);
    mutate_pixels_cpu(three.data(), batch, genes, p, run_seed, generation, offset);
    for (int64_t unit = 0; unit < pixel_units(batch, p); ++unit) {
      for (int64_t group = 0; group < gene_groups(genes); ++group) {
        pixel_unit_group(groups.data(), batch, genes, unit, group, p, philox_key(run_seed), generation, offset);
      }
    }
    ASSERT_TRUE(same_bits(one.data(), three.data(), total * sizeof(float))) << "1 and 3 threads differ";
    for (size_t i = 0; i < total; ++i) {
      ASSERT_TRUE(one[i] >= 0.0f && one[i] <= 1.0f) << "gene " << i << ": " << start[i] << " -> " << one[i];
      ASSERT_EQ(float_bits(one[i]), float_bits(groups[i]))
          << "gene " << i << ": tiles give " << one[i] << ", the per-group functions " << groups[i];
      moved += float_bits(one[i]) != float_bits(start[i]);
    }
    if (p.rate == 0.0f && (p.crossover == 0 || p.crossover_rate == 0.0f)) {
      ASSERT_TRUE(same_bits(one.data(), start.data(), total * sizeof(float))) << "nothing may change";
    }

    // Parameters the check rejects are named; the core, were it called with them, stays within its rows.
    std::string field;
    const PixelMutationParams bad = rejected_pixel_params(rng, &field);
    const std::string message = check_pixel_mutation_params(bad);
    ASSERT_EQ(message.rfind(field + " ", 0), 0u) << "expected a message about " << field << ", got: " << message;
    std::vector<float> scratch = start;
    mutate_pixels_cpu(scratch.data(), batch, genes, bad, run_seed, generation, offset);
  }
  EXPECT_GT(moved, 0);
}

TEST(FuzzThreads, AnyThreadCountIsTakenAndChangesNoResult) {
  DefaultThreadsAfter restore;
  const uint64_t seed = base_seed() ^ 0x7;
  Rng rng(seed);

  // The default: FOOLING_NUM_THREADS as the process found it (the suite may set it), else the CPUs.
  set_num_threads(0);
  const int default_threads = num_threads();
  ASSERT_GE(default_threads, 1);

  const RenderParams p{9, 13, kCoordsNormalized, kColorHsv};
  HostBatch reference_batch = make_batch({6, 3, 24, 64});
  for (int32_t b = 0; b < reference_batch.batch; ++b) build_valid(reference_batch, b, rng);
  const size_t image_values = static_cast<size_t>(reference_batch.batch) * 3 * p.height * p.width;
  std::vector<float> expected(image_values);
  std::vector<GenomeError> errors(reference_batch.batch);
  set_num_threads(1);
  ASSERT_EQ(render_cpu(reference_batch.view(), p, expected.data(), errors.data()), 0);

  const int64_t rounds = std::max<int64_t>(iterations() / 10, 10);
  for (int64_t it = 0; it < rounds; ++it) {
    FUZZ_TRACE(seed, it);
    const int n = pick(rng, {0, -1, kI32Min, 1, 2, 3, 7, kMaxThreads - 1, kMaxThreads, kMaxThreads + 1, 100000, kI32Max,
                             raw_int(rng)});
    set_num_threads(n);
    const int want = n <= 0 ? default_threads : std::min(n, kMaxThreads);
    ASSERT_EQ(num_threads(), want) << "set_num_threads(" << n << ")";
    std::vector<float> out(image_values, -1.0f);
    ASSERT_EQ(render_cpu(reference_batch.view(), p, out.data(), errors.data()), 0);
    ASSERT_TRUE(same_bits(out.data(), expected.data(), out.size() * sizeof(float))) << num_threads() << " threads";
  }

  // FOOLING_NUM_THREADS: a whole number >= 1 (capped at the CPUs), anything else refused with its name.
  EnvRestore restore_env("FOOLING_NUM_THREADS");  // destroyed before `restore` runs
  ::unsetenv("FOOLING_NUM_THREADS");
  set_num_threads(0);
  const int cpus = num_threads();
  set_num_threads(2);
  for (int64_t it = 0; it < rounds; ++it) {
    FUZZ_TRACE(seed, it);
    std::string text;
    switch (uniform(rng, 0, 5)) {
      case 0: text = std::to_string(uniform(rng, 0, 1000)); break;
      case 1:
        text = std::string(static_cast<size_t>(uniform(rng, 0, 12)), '0') + std::to_string(uniform(rng, 0, 5));
        break;
      case 2: text = std::to_string(static_cast<uint64_t>(rng())) + std::to_string(rng()); break;
      case 3:
        text = pick<const char*>(rng, {"", " 3", "3 ", "+2", "-1", "-0", "1e3", "0x10", "2.0", "two", "1_0", "\t1",
                                       "4294967297", "99999999999999999999999"});
        break;
      default:
        for (int64_t k = uniform(rng, 1, 6); k > 0; --k) text.push_back(static_cast<char>(uniform(rng, 1, 127)));
        break;
    }
    const bool digits =
        !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    const size_t first = text.find_first_not_of('0');
    const bool zero = digits && first == std::string::npos;
    const bool long_number = digits && !zero && text.size() - first > 9;
    ::setenv("FOOLING_NUM_THREADS", text.c_str(), 1);
    const int before = num_threads();
    if (!digits || zero) {
      bool refused = false;
      try {
        set_num_threads(0);
      } catch (const std::invalid_argument& e) {
        refused = std::string(e.what()).find("FOOLING_NUM_THREADS") != std::string::npos;
      }
      ASSERT_TRUE(refused) << "FOOLING_NUM_THREADS='" << text << "' was taken";
      ASSERT_EQ(num_threads(), before) << "a refused value changed the thread count";
    } else {
      set_num_threads(0);
      const long value = long_number ? cpus : std::stol(text);
      ASSERT_EQ(num_threads(), static_cast<int>(std::min<long>(value, cpus))) << "FOOLING_NUM_THREADS='" << text << "'";
    }
  }
}
