// Batched mutation and selection on the CPU: Philox known answers, invariants over many rounds of random
// mutation, each operator on hand-made genomes, capacity limits, determinism, pixel genomes, selection and
// parameter checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "fooling/mutation.h"
#include "fooling/philox.h"
#include "fooling/render.h"
#include "genome_builder.h"

using namespace fooling;
using fooling_test::HostBatch;

namespace {

// Parameters with every operator switched off, to switch on one at a time.
CppnMutationParams no_operators() {
  CppnMutationParams p;
  p.p_weight = p.p_activation = p.p_add_edge = p.p_delete_edge = p.p_add_node = p.p_delete_node = 0.0f;
  return p;
}

std::vector<GenomeError> mutate(HostBatch& hb, const CppnMutationParams& p, uint64_t seed, uint32_t generation,
                                uint32_t genome_offset = 0, std::vector<int32_t>* blocked = nullptr) {
  std::vector<GenomeError> errors(hb.batch);
  std::vector<int32_t> flags(hb.batch, -1);
  mutate_cppn_cpu(hb.view(), p, seed, generation, genome_offset, errors.data(), flags.data());
  if (blocked != nullptr) *blocked = flags;
  return errors;
}

void expect_all_valid(HostBatch& hb, const char* when) {
  std::vector<GenomeError> errors(hb.batch);
  EXPECT_EQ(validate_cpu(hb.view(), errors.data()), 0) << when;
  for (int32_t b = 0; b < hb.batch; ++b) EXPECT_EQ(errors[b].code, kGenomeOk) << when << ": genome " << b;
}

using Edge = std::pair<int32_t, int32_t>;

std::vector<Edge> edges_of(const HostBatch& hb, int32_t b) {
  std::vector<Edge> edges;
  edges.reserve(static_cast<size_t>(hb.num_edges[b]));
  for (int32_t e = 0; e < hb.num_edges[b]; ++e)
    edges.emplace_back(hb.src[b * hb.max_edges + e], hb.dst[b * hb.max_edges + e]);
  return edges;
}

// Every input wired to every output: the paper's starting genome.
void wire_inputs_to_outputs(HostBatch& hb, int32_t b, std::mt19937& rng) {
  std::uniform_real_distribution<float> w(-10.0f, 10.0f);
  for (int32_t o = 0; o < hb.num_outputs; ++o) {
    hb.set_activation(b, kNumInputs + o, o % kNumActivations);
    for (int32_t i = 0; i < kNumInputs; ++i) hb.add_edge(b, i, kNumInputs + o, w(rng));
  }
}

}  // namespace

// ----------------------------------------------------------------------------------------------------
// Philox4x32-10 and the draws built on it

TEST(Philox, MatchesRandom123KnownAnswers) {
  const PhiloxBlock zero = philox4x32_10(0, 0, 0, 0, {0, 0});
  EXPECT_EQ(zero.x[0], 0x6627e8d5u);
  EXPECT_EQ(zero.x[1], 0xe169c58du);
  EXPECT_EQ(zero.x[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.x[3], 0x9b00dbd8u);
  const PhiloxBlock ones =
      philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, {0xffffffffu, 0xffffffffu});
  EXPECT_EQ(ones.x[0], 0x408f276du);
  EXPECT_EQ(ones.x[1], 0x41c83b0eu);
  EXPECT_EQ(ones.x[2], 0xa20bc7c6u);
  EXPECT_EQ(ones.x[3], 0x6d5451fdu);
  const PhiloxBlock pi = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, {0xa4093822u, 0x299f31d0u});
  EXPECT_EQ(pi.x[0], 0xd16cfe09u);
  EXPECT_EQ(pi.x[1], 0x94fdccebu);
  EXPECT_EQ(pi.x[2], 0x5001e420u);
  EXPECT_EQ(pi.x[3], 0x24126ea1u);
}

TEST(Philox, SeedIsSplitLowWordFirst) {
  const PhiloxKey key = philox_key(0x0123456789abcdefull);
  EXPECT_EQ(key.k0, 0x89abcdefu);
  EXPECT_EQ(key.k1, 0x01234567u);
}

TEST(Philox, UniformFloatIsTheTop24BitsOnZeroToOne) {
  EXPECT_EQ(uniform_float(0u), 0.0f);
  EXPECT_EQ(uniform_float(0x000000ffu), 0.0f);
  EXPECT_EQ(uniform_float(0x80000000u), 0.5f);
  EXPECT_EQ(uniform_float(0xffffffffu), 1.0f - std::ldexp(1.0f, -24));
}

TEST(Philox, UniformBelowCoversTheRangeAndNoMore) {
  for (int32_t n : {1, 2, 3, 7, 1000}) {
    EXPECT_EQ(uniform_below(0u, n), 0);
    EXPECT_EQ(uniform_below(0xffffffffu, n), n - 1);
    EXPECT_EQ(uniform_below(0x80000000u, n), n / 2);
  }
}

TEST(Philox, StreamDrawsTheWordsOfSuccessiveBlocks) {
  const uint64_t seed = 0xfeedfacecafebeefull;
  PhiloxStream stream(seed, 7, 11, kPurposeCppnMutation);
  for (uint32_t block = 0; block < 3; ++block) {
    const PhiloxBlock r = philox4x32_10(7, 11, kPurposeCppnMutation, block, philox_key(seed));
    for (int k = 0; k < 4; ++k) EXPECT_EQ(stream.next_bits(), r.x[k]) << block << ", " << k;
  }
}

// ----------------------------------------------------------------------------------------------------
// Polynomial mutation

TEST(PolynomialMutation, DeltaFollowsDebsFormula) {
  const float eta = 15.0f;
  EXPECT_EQ(polynomial_delta(0.0f, eta), -1.0f);
  EXPECT_EQ(polynomial_delta(0.5f, eta), 0.0f);
  for (float u : {0.001f, 0.1f, 0.25f, 0.4999f, 0.5001f, 0.75f, 0.9f, 0.999f}) {
    const double want = u < 0.5 ? std::pow(2.0 * u, 1.0 / 16.0) - 1.0 : 1.0 - std::pow(2.0 * (1.0 - u), 1.0 / 16.0);
    EXPECT_NEAR(polynomial_delta(u, eta), want, 1e-6) << u;
  }
}

TEST(PolynomialMutation, ResultIsClippedToTheUnitInterval) {
  EXPECT_EQ(polynomial_mutate(0.01f, 0.0f, 15.0f), 0.0f);
  EXPECT_EQ(polynomial_mutate(0.99f, 0.99999f, 1.0f), 1.0f);
  EXPECT_EQ(polynomial_mutate(0.3f, 0.5f, 15.0f), 0.3f);
}

TEST(PolynomialMutation, WeightsAreMutatedOnTheirNormalisedPosition) {
  CppnMutationParams p;
  // u = 0.5 leaves the normalised position alone: 0 maps to the middle of [-10, 10] and back.
  EXPECT_EQ(mutate_weight(0.0f, 0.5f, p), 0.0f);
  // u = 0 moves the position by -1, to the lower bound; a weight outside the range comes back inside.
  EXPECT_EQ(mutate_weight(5.0f, 0.0f, p), -10.0f);
  EXPECT_EQ(mutate_weight(25.0f, 0.5f, p), 10.0f);
  const float w = mutate_weight(2.0f, 0.9f, p);
  EXPECT_NEAR(w, -10.0 + 20.0 * (0.6 + (1.0 - std::pow(0.2, 1.0 / 16.0))), 2e-5);
}

// ----------------------------------------------------------------------------------------------------
// CPPN mutation

TEST(CppnMutation, InvariantsHoldOverManyGenerations) {
  std::mt19937 rng(3);
  for (const int32_t mode : {kAddEdgeOriginal, kAddEdgeRejection})
    for (int32_t outputs : {1, 3}) {
      HostBatch hb(40, outputs, 24, 80);
      for (int32_t b = 0; b < hb.batch; ++b) {
        if (b % 2)
          hb.randomize(b, rng, b % 12, 0.2f);
        else
          wire_inputs_to_outputs(hb, b, rng);
      }
      CppnMutationParams p;
      p.add_edge = mode;
      p.activations = (1u << kSine) | (1u << kGaussian) | (1u << kLinear);
      const int32_t first_hidden = kNumInputs + outputs;
      int64_t grown = 0, shrunk = 0, parallel = 0;
      for (uint32_t gen = 0; gen < 300; ++gen) {
        const std::vector<int32_t> nodes_before = hb.num_nodes;
        const std::vector<GenomeError> errors = mutate(hb, p, 99, gen);
        for (int32_t b = 0; b < hb.batch; ++b) {
          ASSERT_EQ(errors[b].code, kGenomeOk) << "generation " << gen << " genome " << b;
          grown += hb.num_nodes[b] > nodes_before[b];
          shrunk += hb.num_nodes[b] < nodes_before[b];
        }
        expect_all_valid(hb, "after a generation");  // acyclic, endpoints live, no edge into an input
        for (int32_t b = 0; b < hb.batch; ++b) {
          ASSERT_GE(hb.num_nodes[b], first_hidden);  // inputs and outputs are never deleted
          ASSERT_LE(hb.num_nodes[b], hb.max_nodes);
          ASSERT_LE(hb.num_edges[b], hb.max_edges);
          const std::vector<Edge> edges = edges_of(hb, b);
          const size_t distinct = std::set<Edge>(edges.begin(), edges.end()).size();
          // The rejection rule never duplicates an edge; the original's may.
          if (mode == kAddEdgeRejection) ASSERT_EQ(distinct, edges.size()) << "duplicate edge in " << b;
          parallel += static_cast<int64_t>(edges.size() - distinct);
          for (int32_t e = 0; e < hb.num_edges[b]; ++e) {
            const float w = hb.weight[b * hb.max_edges + e];
            ASSERT_TRUE(w >= p.weight_min && w <= p.weight_max) << w;
          }
        }
      }
      // The run exercised growth and shrinking, not just weights.
      EXPECT_GT(grown, 1000);
      EXPECT_GT(shrunk, 500);
      if (mode == kAddEdgeOriginal) EXPECT_GT(parallel, 0);
    }
}

TEST(CppnMutation, GenomesAtCapacitySkipGrowthAndStayValid) {
  std::mt19937 rng(5);
  HostBatch hb(16, 1, /*nodes_cap=*/7, /*edges_cap=*/9);
  for (int32_t b = 0; b < hb.batch; ++b) wire_inputs_to_outputs(hb, b, rng);
  CppnMutationParams p = no_operators();
  p.p_add_node = 1.0f;
  p.p_add_edge = 1.0f;
  int32_t full_nodes = 0, full_edges = 0;
  int64_t blocked_edge = 0, blocked_node = 0;
  for (uint32_t gen = 0; gen < 40; ++gen) {
    const std::vector<int32_t> edges_before = hb.num_edges, nodes_before = hb.num_nodes;
    std::vector<int32_t> blocked;
    mutate(hb, p, 1, gen, 0, &blocked);
    expect_all_valid(hb, "at capacity");
    for (int32_t b = 0; b < hb.batch; ++b) {
      ASSERT_LE(hb.num_nodes[b], 7);
      ASSERT_LE(hb.num_edges[b], 9);
      // Both operators fire every time: add connection is blocked exactly when the edges were full, add node
      // exactly when, after add connection, no node or edge slot was left.
      ASSERT_EQ((blocked[b] & kBlockedAddEdge) != 0, edges_before[b] == 9) << gen << " " << b;
      const bool node_room = nodes_before[b] < 7 && std::min(edges_before[b] + 1, 9) < 9;
      ASSERT_EQ((blocked[b] & kBlockedAddNode) != 0, !node_room) << gen << " " << b;
      ASSERT_EQ(blocked[b] & ~(kBlockedAddEdge | kBlockedAddNode), 0);
      blocked_edge += (blocked[b] & kBlockedAddEdge) != 0;
      blocked_node += (blocked[b] & kBlockedAddNode) != 0;
    }
  }
  EXPECT_GT(blocked_edge, 0);
  EXPECT_GT(blocked_node, 0);
  for (int32_t b = 0; b < hb.batch; ++b) {
    full_nodes += hb.num_nodes[b] == 7;
    full_edges += hb.num_edges[b] == 9;
  }
  EXPECT_GT(full_edges, 0);
  EXPECT_GT(full_nodes + full_edges, hb.batch / 2);
}

TEST(CppnMutation, SameSeedSameChildrenAndChunksCompose) {
  std::mt19937 rng(8);
  HostBatch a(32, 3, 32, 96);
  for (int32_t b = 0; b < a.batch; ++b) a.randomize(b, rng, b % 9, 0.25f);
  HostBatch same = a, other_seed = a, chunked = a;
  const CppnMutationParams p;
  for (uint32_t gen = 0; gen < 10; ++gen) {
    mutate(a, p, 1234, gen);
    mutate(same, p, 1234, gen);
    mutate(other_seed, p, 1235, gen);
    // The second half mutated on its own, as a chunk with genome_offset 16.
    CppnBatchView whole = chunked.view();
    CppnBatchView first = whole, second = whole;
    first.batch = second.batch = 16;
    second.num_nodes += 16;
    second.num_edges += 16;
    second.node_activation += 16 * whole.max_nodes;
    second.edge_src += 16 * whole.max_edges;
    second.edge_dst += 16 * whole.max_edges;
    second.edge_weight += 16 * whole.max_edges;
    std::vector<GenomeError> errors(16);
    mutate_cppn_cpu(second, p, 1234, gen, 16, errors.data(), nullptr);
    mutate_cppn_cpu(first, p, 1234, gen, 0, errors.data(), nullptr);
  }
  EXPECT_EQ(a.num_nodes, same.num_nodes);
  EXPECT_EQ(a.act, same.act);
  EXPECT_EQ(a.src, same.src);
  EXPECT_EQ(a.weight, same.weight);
  EXPECT_EQ(a.num_edges, chunked.num_edges);
  EXPECT_EQ(a.act, chunked.act);
  EXPECT_EQ(a.dst, chunked.dst);
  EXPECT_EQ(a.weight, chunked.weight);
  EXPECT_NE(a.weight, other_seed.weight);
}

TEST(CppnMutation, AddNodeSplitsAConnectionAndBothHalvesKeepItsWeight) {
  HostBatch hb(1, 1);
  hb.set_activation(0, 4, kSine);
  hb.add_edge(0, kInputY, 4, 2.5f);
  CppnMutationParams p = no_operators();
  p.p_add_node = 1.0f;
  p.activations = 1u << kGaussian;
  mutate(hb, p, 0, 0);
  ASSERT_EQ(hb.num_nodes[0], 6);
  ASSERT_EQ(hb.num_edges[0], 2);
  EXPECT_EQ(hb.act[5], kGaussian);
  EXPECT_EQ(edges_of(hb, 0), (std::vector<Edge>{{kInputY, 5}, {5, 4}}));
  EXPECT_EQ(hb.weight[0], 2.5f);
  EXPECT_EQ(hb.weight[1], 2.5f);
}

TEST(CppnMutation, AddNodeNeedsAConnection) {
  HostBatch hb(1, 1);
  CppnMutationParams p = no_operators();
  p.p_add_node = 1.0f;
  mutate(hb, p, 0, 0);
  EXPECT_EQ(hb.num_nodes[0], 5);
}

TEST(CppnMutation, DeleteNodeRemovesItsEdgesAndRenumbersTheRest) {
  // Hidden nodes 5 and 6; edge weights are their storage positions.
  HostBatch hb(64, 1);
  for (int32_t b = 0; b < hb.batch; ++b) {
    hb.add_node(b, kSigmoid);  // 5
    hb.add_node(b, kLinear);   // 6
    const Edge edges[] = {{0, 5}, {5, 6}, {6, 4}, {1, 6}, {2, 4}};
    for (int32_t e = 0; e < 5; ++e) hb.add_edge(b, edges[e].first, edges[e].second, static_cast<float>(e));
  }
  CppnMutationParams p = no_operators();
  p.p_delete_node = 1.0f;
  mutate(hb, p, 77, 0);
  int32_t deleted_five = 0, deleted_six = 0;
  for (int32_t b = 0; b < hb.batch; ++b) {
    ASSERT_EQ(hb.num_nodes[b], 6);
    const std::vector<Edge> edges = edges_of(hb, b);
    const float* w = hb.weight.data() + b * hb.max_edges;
    if (hb.act[b * hb.max_nodes + 5] == kLinear) {  // node 5 went; node 6 became 5
      ++deleted_five;
      EXPECT_EQ(edges, (std::vector<Edge>{{5, 4}, {1, 5}, {2, 4}}));
      EXPECT_EQ(std::vector<float>(w, w + 3), (std::vector<float>{2.0f, 3.0f, 4.0f}));
    } else {
      ++deleted_six;
      EXPECT_EQ(edges, (std::vector<Edge>{{0, 5}, {2, 4}}));
      EXPECT_EQ(std::vector<float>(w, w + 2), (std::vector<float>{0.0f, 4.0f}));
    }
  }
  EXPECT_EQ(deleted_five + deleted_six, hb.batch);
  EXPECT_GT(deleted_five, 16);
  EXPECT_GT(deleted_six, 16);
}

TEST(CppnMutation, DeleteConnectionKeepsTheOrderOfTheRest) {
  HostBatch hb(32, 1);
  for (int32_t b = 0; b < hb.batch; ++b)
    for (int32_t i = 0; i < kNumInputs; ++i) hb.add_edge(b, i, 4, static_cast<float>(i));
  CppnMutationParams p = no_operators();
  p.p_delete_edge = 1.0f;
  mutate(hb, p, 3, 0);
  std::set<int32_t> deleted;
  for (int32_t b = 0; b < hb.batch; ++b) {
    ASSERT_EQ(hb.num_edges[b], 3);
    std::vector<int32_t> kept;
    for (int32_t e = 0; e < 3; ++e) {
      kept.push_back(hb.src[b * hb.max_edges + e]);
      EXPECT_EQ(hb.weight[b * hb.max_edges + e], static_cast<float>(kept.back()));
    }
    ASSERT_TRUE(std::is_sorted(kept.begin(), kept.end()));
    for (int32_t i = 0; i < kNumInputs; ++i)
      if (std::find(kept.begin(), kept.end(), i) == kept.end()) deleted.insert(i);
  }
  EXPECT_EQ(deleted.size(), 4u);  // every edge was the one deleted somewhere
}

TEST(CppnMutation, AddConnectionRejectsCyclesAndDuplicates) {
  // Every pair the operator may draw is a duplicate, a self-loop, or 6 -> 5, which would close 5 -> 6 -> 5.
  HostBatch hb(1, 1);
  hb.add_node(0, kSine);  // 5
  hb.add_node(0, kSine);  // 6
  for (int32_t i = 0; i < kNumInputs; ++i)
    for (int32_t d : {4, 5, 6}) hb.add_edge(0, i, d, 1.0f);
  hb.add_edge(0, 5, 6, 1.0f);
  hb.add_edge(0, 5, 4, 1.0f);
  hb.add_edge(0, 6, 4, 1.0f);
  const HostBatch before = hb;
  CppnMutationParams p = no_operators();
  p.p_add_edge = 1.0f;
  p.add_edge = kAddEdgeRejection;
  p.add_edge_attempts = 1000;
  for (uint32_t gen = 0; gen < 50; ++gen) mutate(hb, p, 4, gen);
  EXPECT_EQ(hb.num_edges, before.num_edges);
  EXPECT_EQ(hb.src, before.src);

  // Remove input 2 -> node 6: the one pair that can be added, with a weight in range.
  hb.num_edges[0] = 0;
  for (const Edge& e : edges_of(before, 0))
    if (e != Edge{2, 6}) hb.add_edge(0, e.first, e.second, 1.0f);
  mutate(hb, p, 4, 0);
  ASSERT_EQ(hb.num_edges[0], before.num_edges[0]);
  EXPECT_EQ(edges_of(hb, 0).back(), (Edge{2, 6}));
  const float w = hb.weight[hb.num_edges[0] - 1];
  EXPECT_TRUE(w >= -10.0f && w <= 10.0f && w != 1.0f) << w;
}

TEST(CppnMutation, AddConnectionGivesUpAfterItsAttempts) {
  // Hidden node 5 with no edges. Of the 5 x 2 pairs (source input or 5, destination 4 or 5), (i, 4) exist
  // and (5, 5) is a self-loop: 5 of 10 can be added.
  HostBatch hb(256, 1);
  std::mt19937 rng(2);
  for (int32_t b = 0; b < hb.batch; ++b) {
    wire_inputs_to_outputs(hb, b, rng);
    hb.add_node(b, kSine);
  }
  CppnMutationParams p = no_operators();
  p.p_add_edge = 1.0f;
  p.add_edge = kAddEdgeRejection;
  p.add_edge_attempts = 1;
  mutate(hb, p, 6, 0);
  int32_t added = 0;
  for (int32_t b = 0; b < hb.batch; ++b) {
    ASSERT_LE(hb.num_edges[b], 5);
    if (hb.num_edges[b] == 5) {
      ++added;
      const Edge e = edges_of(hb, b).back();
      EXPECT_TRUE((e.second == 5 && e.first < kNumInputs) || e == Edge(5, 4)) << e.first << " -> " << e.second;
    }
  }
  // One attempt succeeds with probability 1/2: 128 expected, sd 8; 5 sd either side.
  EXPECT_GT(added, 88);
  EXPECT_LT(added, 168);
}

namespace {

// Ancestors of `node` (itself included) along the edges of genome b.
std::set<int32_t> ancestors_of(const HostBatch& hb, int32_t b, int32_t node) {
  std::set<int32_t> seen{node};
  std::vector<int32_t> todo{node};
  const std::vector<Edge> edges = edges_of(hb, b);
  while (!todo.empty()) {
    const int32_t v = todo.back();
    todo.pop_back();
    for (const Edge& e : edges)
      if (e.second == v && seen.insert(e.first).second) todo.push_back(e.first);
  }
  return seen;
}

}  // namespace

TEST(CppnMutation, OriginalAddConnectionTargetsNoInputNorAncestorOfTheSource) {
  // Random genomes with hidden nodes; every genome adds one connection. The new edge's source is an input or
  // hidden node and its target is neither an input nor an ancestor of the source in the parent.
  std::mt19937 rng(12);
  HostBatch hb(400, 3, 24, 80);
  for (int32_t b = 0; b < hb.batch; ++b) hb.randomize(b, rng, 1 + b % 10, 0.3f);
  const HostBatch before = hb;
  CppnMutationParams p = no_operators();
  p.p_add_edge = 1.0f;
  ASSERT_EQ(p.add_edge, kAddEdgeOriginal);  // the default
  mutate(hb, p, 21, 0);
  int32_t added = 0, to_hidden = 0, parallel = 0;
  for (int32_t b = 0; b < hb.batch; ++b) {
    ASSERT_EQ(hb.num_nodes[b], before.num_nodes[b]);
    if (hb.num_edges[b] == before.num_edges[b]) continue;  // no candidate target
    ASSERT_EQ(hb.num_edges[b], before.num_edges[b] + 1);
    ++added;
    const Edge e = edges_of(hb, b).back();
    const int32_t first_hidden = kNumInputs + hb.num_outputs;
    ASSERT_TRUE(e.first < kNumInputs || e.first >= first_hidden) << "source " << e.first << " is an output";
    ASSERT_GE(e.second, kNumInputs) << "target is an input";
    ASSERT_EQ(ancestors_of(before, b, e.first).count(e.second), 0u)
        << "genome " << b << ": " << e.first << " -> " << e.second << " closes a cycle";
    to_hidden += e.second >= first_hidden;
    const std::vector<Edge> old = edges_of(before, b);
    parallel += std::find(old.begin(), old.end(), e) != old.end();
  }
  expect_all_valid(hb, "after adding connections");
  EXPECT_GT(added, 390);
  EXPECT_GT(to_hidden, 50);
  EXPECT_GT(parallel, 0);  // duplicates are allowed, and random genomes with few nodes draw some
}

TEST(CppnMutation, OriginalAddConnectionAddsNothingWhenEveryTargetIsAnAncestor) {
  // Output 4 -> hidden 5: from source 5 every non-input node (4, 5) is an ancestor, so nothing is added; from
  // an input, 4 and 5 are both candidates.
  HostBatch hb(1000, 1);
  for (int32_t b = 0; b < hb.batch; ++b) {
    hb.add_node(b, kSine);
    hb.add_edge(b, 4, 5, 1.0f);
  }
  CppnMutationParams p = no_operators();
  p.p_add_edge = 1.0f;
  mutate(hb, p, 3, 0);
  int32_t added = 0;
  for (int32_t b = 0; b < hb.batch; ++b) {
    if (hb.num_edges[b] == 1) continue;
    ++added;
    const Edge e = edges_of(hb, b).back();
    EXPECT_LT(e.first, kNumInputs);
    EXPECT_TRUE(e.second == 4 || e.second == 5);
  }
  // The source is 5 with probability 1/5: 800 expected, sd 12.6.
  EXPECT_GT(added, 740);
  EXPECT_LT(added, 860);
}

TEST(CppnMutation, OriginalAddConnectionDrawsItsTargetUniformlyAmongTheCandidates) {
  // Inputs -> 5 -> 6 -> 4 (one output), hidden 7 unconnected, and input 0 -> 7. Sources: inputs 0..3 and
  // hidden 5, 6, 7. Candidate targets of a source: the non-inputs {4, 5, 6, 7} minus its ancestors, so
  // an input: {4, 5, 6, 7}; 5: {4, 6, 7}; 6: {4, 7}; 7: {4, 5, 6}.
  const int32_t batch = 14000;
  HostBatch hb(batch, 1);
  for (int32_t b = 0; b < batch; ++b) {
    for (int32_t h = 0; h < 3; ++h) hb.add_node(b, kSine);  // 5, 6, 7
    for (int32_t i = 0; i < kNumInputs; ++i) hb.add_edge(b, i, 5, 1.0f);
    hb.add_edge(b, 5, 6, 1.0f);
    hb.add_edge(b, 6, 4, 1.0f);
    hb.add_edge(b, 0, 7, 1.0f);
  }
  const int32_t edges = hb.num_edges[0];
  CppnMutationParams p = no_operators();
  p.p_add_edge = 1.0f;
  mutate(hb, p, 77, 5);
  // counts[source][target]; every genome adds one edge (each source has a candidate).
  std::vector<std::vector<int64_t>> counts(8, std::vector<int64_t>(8, 0));
  for (int32_t b = 0; b < batch; ++b) {
    ASSERT_EQ(hb.num_edges[b], edges + 1);
    const Edge e = edges_of(hb, b).back();
    counts[e.first][e.second] += 1;
  }
  const std::vector<std::vector<int32_t>> candidates = {{4, 5, 6, 7}, {4, 5, 6, 7}, {4, 5, 6, 7}, {4, 5, 6, 7},
                                                        {},           {4, 6, 7},    {4, 7},       {4, 5, 6}};
  // Pearson's chi-square over every (source, candidate target) cell, expected batch / 7 / candidates. 4 x 4 +
  // 3 + 2 + 3 = 24 cells, 23 degrees of freedom: P(chi2 > 49.7) = 0.001. A source or target drawn uniformly
  // of the wrong set, or an off-by-one in picking the k-th candidate, puts counts on other cells or skews these.
  double chi2 = 0.0;
  int64_t total = 0;
  for (int32_t s = 0; s < 8; ++s) {
    if (candidates[s].empty()) {
      for (int32_t d = 0; d < 8; ++d) ASSERT_EQ(counts[s][d], 0) << "source " << s;
      continue;
    }
    for (int32_t d = 0; d < 8; ++d) {
      const bool candidate = std::count(candidates[s].begin(), candidates[s].end(), d) > 0;
      if (!candidate) {
        ASSERT_EQ(counts[s][d], 0) << s << " -> " << d;
        continue;
      }
      const double expected = double(batch) / 7.0 / double(candidates[s].size());
      chi2 += (counts[s][d] - expected) * (counts[s][d] - expected) / expected;
      total += counts[s][d];
    }
  }
  EXPECT_EQ(total, batch);
  EXPECT_LT(chi2, 49.7);
}

TEST(CppnMutation, WeightsComeBackIntoRangeAndActivationsIntoTheAllowedSet) {
  HostBatch hb(8, 3);
  for (int32_t b = 0; b < hb.batch; ++b) {
    for (int32_t o = 0; o < 3; ++o) hb.set_activation(b, 4 + o, kSigmoid);
    for (int32_t i = 0; i < kNumInputs; ++i) hb.add_edge(b, i, 4 + b % 3, i % 2 ? 9.0f : -9.0f);
  }
  CppnMutationParams p = no_operators();
  p.p_weight = 1.0f;
  p.p_activation = 1.0f;
  p.weight_min = -1.0f;
  p.weight_max = 2.0f;
  p.activations = (1u << kSine) | (1u << kLinear);
  mutate(hb, p, 10, 0);
  for (int32_t b = 0; b < hb.batch; ++b) {
    for (int32_t e = 0; e < hb.num_edges[b]; ++e) {
      const float w = hb.weight[b * hb.max_edges + e];
      EXPECT_TRUE(w >= -1.0f && w <= 2.0f) << w;
    }
    for (int32_t o = 0; o < 3; ++o) {
      const int32_t a = hb.act[b * hb.max_nodes + 4 + o];
      EXPECT_TRUE(a == kSine || a == kLinear) << a;
    }
  }
}

TEST(CppnMutation, InvalidGenomesAreReportedAndLeftUntouched) {
  HostBatch hb(3, 1);
  std::mt19937 rng(1);
  for (int32_t b = 0; b < 3; ++b) wire_inputs_to_outputs(hb, b, rng);
  hb.src[1 * hb.max_edges + 2] = 9;  // no node 9
  hb.num_nodes[2] = 2;               // fewer nodes than inputs + outputs
  const HostBatch before = hb;
  CppnMutationParams p;
  p.p_weight = 1.0f;
  std::vector<GenomeError> errors(3);
  std::vector<int32_t> blocked(3, -1);
  EXPECT_EQ(mutate_cppn_cpu(hb.view(), p, 0, 0, 0, errors.data(), blocked.data()), 2);
  EXPECT_EQ(blocked, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(errors[0].code, kGenomeOk);
  EXPECT_EQ(errors[1].code, kEdgeSrcOutOfRange);
  EXPECT_EQ(errors[1].index, 2);
  EXPECT_EQ(errors[2].code, kNodeCountOutOfRange);
  EXPECT_NE(std::vector<float>(hb.weight.begin(), hb.weight.begin() + 4),
            std::vector<float>(before.weight.begin(), before.weight.begin() + 4));
  EXPECT_TRUE(std::equal(hb.weight.begin() + hb.max_edges, hb.weight.end(), before.weight.begin() + hb.max_edges));
}

TEST(CppnMutation, ParameterChecksNameTheField) {
  EXPECT_EQ(check_cppn_mutation_params(CppnMutationParams{}), "");
  const auto message = [](void (*edit)(CppnMutationParams&)) {
    CppnMutationParams p;
    edit(p);
    return check_cppn_mutation_params(p);
  };
  EXPECT_NE(message([](CppnMutationParams& p) { p.p_weight = 1.5f; }).find("p_weight"), std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.p_delete_node = -0.1f; }).find("p_delete_node"), std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.p_add_edge = NAN; }).find("p_add_edge"), std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.eta = 0.0f; }).find("eta"), std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.weight_min = 10.0f; }).find("weight_min"), std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.weight_max = INFINITY; }).find("weight_max"), std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.activations = 0; }).find("activations"), std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.activations = 1u << 7; }).find("activations"), std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.add_edge_attempts = 0; }).find("add_edge_attempts"),
            std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.add_edge = 2; }).find("add_edge"), std::string::npos);
  EXPECT_NE(message([](CppnMutationParams& p) { p.add_edge = -1; }).find("add_edge"), std::string::npos);
}

// ----------------------------------------------------------------------------------------------------
// Pixel genomes

namespace {

std::vector<float> random_genes(int64_t batch, int64_t genes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> out(batch * genes);
  for (float& x : out) x = u(rng);
  return out;
}

}  // namespace

TEST(PixelMutation, CpuTilesMatchThePerGroupFunctionsOfTheCudaBackend) {
  for (const int64_t genes : {int64_t{1}, int64_t{6}, int64_t{1027}, int64_t{3 * 48 * 48}}) {
    for (const int32_t crossover : {0, 1}) {
      const int64_t batch = 5;
      PixelMutationParams p;
      p.rate = 0.3f;
      p.crossover = crossover;
      p.crossover_rate = 0.8f;
      std::vector<float> cpu = random_genes(batch, genes, 17), per_group = cpu;
      mutate_pixels_cpu(cpu.data(), batch, genes, p, 42, 3, 100);
      for (int64_t unit = 0; unit < pixel_units(batch, p); ++unit)
        for (int64_t group = 0; group < gene_groups(genes); ++group)
          pixel_unit_group(per_group.data(), batch, genes, unit, group, p, philox_key(42), 3, 100);
      EXPECT_EQ(cpu, per_group) << genes << " genes, crossover " << crossover;
    }
    std::vector<float> init(3 * genes), init_per_group(3 * genes);
    init_pixels_cpu(init.data(), 3, genes, 5, 7);
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t group = 0; group < gene_groups(genes); ++group)
        init_pixel_group(init_per_group.data() + b * genes, genes, group, philox_key(5), 7 + static_cast<uint32_t>(b));
    EXPECT_EQ(init, init_per_group) << genes;
  }
}

TEST(PixelMutation, InitialGenesAreUniformOnZeroToOne) {
  const int64_t genes = 3 * 64 * 64;
  std::vector<float> a(4 * genes), b(4 * genes);
  init_pixels_cpu(a.data(), 4, genes, 11, 0);
  init_pixels_cpu(b.data(), 4, genes, 11, 0);
  EXPECT_EQ(a, b);
  double sum = 0.0;
  for (float x : a) {
    ASSERT_TRUE(x >= 0.0f && x < 1.0f) << x;
    sum += x;
  }
  // Mean of n uniforms: 0.5 with sd sqrt(1 / (12 n)) = 0.0013 for n = 49152.
  EXPECT_NEAR(sum / a.size(), 0.5, 0.0065);
  init_pixels_cpu(b.data(), 4, genes, 12, 0);
  EXPECT_NE(a, b);
}

TEST(PixelMutation, GenesStayInTheUnitIntervalAndRateZeroChangesNothing) {
  const int64_t batch = 6, genes = 999;
  std::vector<float> g = random_genes(batch, genes, 3);
  const std::vector<float> start = g;
  PixelMutationParams p;
  p.rate = 0.0f;
  mutate_pixels_cpu(g.data(), batch, genes, p, 1, 0, 0);
  EXPECT_EQ(g, start);
  p.rate = 1.0f;
  p.crossover = 1;
  p.crossover_rate = 1.0f;
  p.eta = 0.5f;  // wide steps, so that clipping happens
  int64_t at_bounds = 0;
  for (uint32_t gen = 0; gen < 20; ++gen) {
    mutate_pixels_cpu(g.data(), batch, genes, p, 1, gen, 0);
    for (float x : g) {
      ASSERT_TRUE(x >= 0.0f && x <= 1.0f) << x;
      at_bounds += x == 0.0f || x == 1.0f;
    }
  }
  EXPECT_GT(at_bounds, 0);
}

TEST(PixelMutation, SbxLeavesEqualParentsAloneAndSwapsOnTheCoin) {
  float a = 0.25f, b = 0.25f;
  sbx_gene(&a, &b, 0.9f, 0.9f, 10.0f);
  EXPECT_EQ(a, 0.25f);
  EXPECT_EQ(b, 0.25f);
  float c1, c2;
  sbx_offspring(0.2f, 0.6f, 0.3f, 10.0f, &c1, &c2);
  EXPECT_LT(c1, c2);
  EXPECT_TRUE(c1 >= 0.0f && c2 <= 1.0f);
  float x1 = 0.6f, x2 = 0.2f;
  sbx_gene(&x1, &x2, 0.3f, 0.9f, 10.0f);  // no swap: the first child takes the lower offspring
  EXPECT_EQ(x1, c1);
  EXPECT_EQ(x2, c2);
  x1 = 0.6f;
  x2 = 0.2f;
  sbx_gene(&x1, &x2, 0.3f, 0.1f, 10.0f);
  EXPECT_EQ(x1, c2);
  EXPECT_EQ(x2, c1);
  // u = 1/2 is beta_q = 1 for bounds far away: the offspring are the parents.
  sbx_offspring(0.4f, 0.6f, 0.5f, 10.0f, &c1, &c2);
  EXPECT_NEAR(c1, 0.4f, 1e-3);
  EXPECT_NEAR(c2, 0.6f, 1e-3);
}

TEST(PixelMutation, SbxCrossesEveryGeneOfACrossingPair) {
  // Crossover rate 1, no mutation: every gene whose parents differ gets new offspring values (a gene crossed
  // with probability 1/2 would leave about half the genes as the parents had them), the pair's sum is kept
  // away from the bounds, and genes equal in both parents stay as they were.
  const int64_t batch = 2, genes = 4001;
  std::vector<float> g = random_genes(batch, genes, 9);
  for (int64_t i = 0; i < genes; i += 10) g[genes + i] = g[i];  // every 10th gene equal in both parents
  const std::vector<float> start = g;
  PixelMutationParams p;
  p.rate = 0.0f;
  p.crossover = 1;
  p.crossover_rate = 1.0f;
  mutate_pixels_cpu(g.data(), batch, genes, p, 31, 2, 0);
  int64_t unchanged = 0, crossed = 0;
  for (int64_t i = 0; i < genes; ++i) {
    const float a0 = start[i], b0 = start[genes + i], a = g[i], b = g[genes + i];
    if (i % 10 == 0) {
      EXPECT_EQ(a, a0);
      EXPECT_EQ(b, b0);
      continue;
    }
    ++crossed;
    const bool same_pair = (a == a0 && b == b0) || (a == b0 && b == a0);
    unchanged += same_pair;
  }
  // beta_q = 1 exactly (offspring = parents) has probability zero; allow a few from float rounding.
  EXPECT_LT(unchanged, crossed / 100) << unchanged << " of " << crossed;
}

// ----------------------------------------------------------------------------------------------------
// Selection

TEST(Selection, CopiesChosenRowsAndReportsTheFirstBadIndex) {
  std::mt19937 rng(4);
  HostBatch parents(5, 3), children(5, 3);
  for (int32_t b = 0; b < 5; ++b) parents.randomize(b, rng, b, 0.3f);
  const std::vector<int64_t> index = {4, 0, 4, 7, -1};
  EXPECT_EQ(select_cppn_cpu(parents.view(), index.data(), children.view()), 3);
  for (int32_t i = 0; i < 3; ++i) {
    const int32_t b = static_cast<int32_t>(index[i]);
    EXPECT_EQ(children.num_nodes[i], parents.num_nodes[b]);
    EXPECT_EQ(children.num_edges[i], parents.num_edges[b]);
    EXPECT_TRUE(
        std::equal(parents.act.begin() + b * 32, parents.act.begin() + (b + 1) * 32, children.act.begin() + i * 32));
    EXPECT_EQ(edges_of(children, i), edges_of(parents, b));
    EXPECT_TRUE(std::equal(parents.weight.begin() + b * 128, parents.weight.begin() + (b + 1) * 128,
                           children.weight.begin() + i * 128));
  }
  for (int32_t i = 3; i < 5; ++i) {  // bare genomes: valid, no edges
    EXPECT_EQ(children.num_nodes[i], kNumInputs + 3);
    EXPECT_EQ(children.num_edges[i], 0);
  }
  expect_all_valid(children, "after selection");

  const std::vector<float> rows = {1, 2, 3, 4, 5, 6};
  const std::vector<int64_t> pick = {2, 2, 0, 3};
  std::vector<float> out(8, -1.0f);
  EXPECT_EQ(select_rows_cpu(rows.data(), 3, 2, pick.data(), 4, out.data()), 3);
  EXPECT_EQ(out, (std::vector<float>{5, 6, 5, 6, 1, 2, 0, 0}));
  EXPECT_EQ(select_rows_cpu(rows.data(), 3, 2, pick.data(), 3, out.data()), -1);
}

TEST(Selection, GenomesWithoutEdgeRowsAreCopied) {
  // max_edges = 0: the edge arrays hold nothing and may be null pointers, which are never read or written.
  HostBatch parents(2, 1, 8, 0), children(3, 1, 8, 0);
  parents.set_activation(0, kNumInputs, kGaussian);
  parents.add_node(1, kSine);
  CppnBatchView from = parents.view(), to = children.view();
  from.edge_src = from.edge_dst = to.edge_src = to.edge_dst = nullptr;
  from.edge_weight = to.edge_weight = nullptr;
  const std::vector<int64_t> index = {1, 0, 2};
  EXPECT_EQ(select_cppn_cpu(from, index.data(), to), 2);
  EXPECT_EQ(children.num_nodes, (std::vector<int32_t>{kNumInputs + 2, kNumInputs + 1, kNumInputs + 1}));
  EXPECT_EQ(children.num_edges, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(children.act[kNumInputs + 1], kSine);
  EXPECT_EQ(children.act[8 + kNumInputs], kGaussian);
  expect_all_valid(children, "after selection without edge rows");
}

TEST(Selection, CallChecksNameTheMismatch) {
  HostBatch parents(2, 1), wrong_outputs(2, 3), wrong_capacity(2, 1, 16, 128);
  EXPECT_EQ(check_select_call(parents.view(), parents.view()), "");
  EXPECT_NE(check_select_call(parents.view(), wrong_outputs.view()).find("num_outputs"), std::string::npos);
  EXPECT_NE(check_select_call(parents.view(), wrong_capacity.view()).find("max_nodes"), std::string::npos);
  EXPECT_EQ(check_genome_range(10, (int64_t{1} << 32) - 10), "");
  EXPECT_NE(check_genome_range(10, (int64_t{1} << 32) - 9).find("genome_offset"), std::string::npos);
  EXPECT_NE(check_pixel_batch(1, 0, 0).find("genes per genome"), std::string::npos);
  PixelMutationParams p;
  p.crossover_rate = 2.0f;
  EXPECT_NE(check_pixel_mutation_params(p).find("crossover_rate"), std::string::npos);
  p = PixelMutationParams{};
  p.eta_c = -1.0f;
  EXPECT_NE(check_pixel_mutation_params(p).find("eta_c"), std::string::npos);
}
