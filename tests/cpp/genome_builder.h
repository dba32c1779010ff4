// A small host-side genome batch for the C++ tests: owns its arrays, exposes a CppnBatchView.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "fooling/activations.h"
#include "fooling/genome.h"

namespace fooling_test {

struct HostBatch {
  int32_t batch, max_nodes, max_edges, num_outputs;
  std::vector<int32_t> num_nodes, num_edges, act, src, dst;
  std::vector<float> weight;

  HostBatch(int32_t b, int32_t outputs, int32_t nodes_cap = 32, int32_t edges_cap = 128)
      : batch(b),
        max_nodes(nodes_cap),
        max_edges(edges_cap),
        num_outputs(outputs),
        num_nodes(b, fooling::kNumInputs + outputs),
        num_edges(b, 0),
        act(static_cast<size_t>(b) * nodes_cap, 0),
        src(static_cast<size_t>(b) * edges_cap, 0),
        dst(static_cast<size_t>(b) * edges_cap, 0),
        weight(static_cast<size_t>(b) * edges_cap, 0.0f) {}

  fooling::CppnBatchView view() {
    fooling::CppnBatchView v;
    v.batch = batch;
    v.max_nodes = max_nodes;
    v.max_edges = max_edges;
    v.num_outputs = num_outputs;
    v.num_nodes = num_nodes.data();
    v.num_edges = num_edges.data();
    v.node_activation = act.data();
    v.edge_src = src.data();
    v.edge_dst = dst.data();
    v.edge_weight = weight.data();
    return v;
  }

  int32_t add_node(int32_t b, int32_t activation) {
    const int32_t n = num_nodes[b]++;
    act[b * max_nodes + n] = activation;
    return n;
  }

  void set_activation(int32_t b, int32_t node, int32_t activation) { act[b * max_nodes + node] = activation; }

  void add_edge(int32_t b, int32_t s, int32_t d, float w) {
    const int32_t e = num_edges[b]++;
    src[b * max_edges + e] = s;
    dst[b * max_edges + e] = d;
    weight[b * max_edges + e] = w;
  }

  // Random feed-forward genome b: hidden nodes ranked randomly, edges from lower to higher rank.
  void randomize(int32_t b, std::mt19937& rng, int32_t hidden, float density) {
    std::uniform_real_distribution<float> u(0.0f, 1.0f), w(-10.0f, 10.0f);
    std::uniform_int_distribution<int32_t> a(0, fooling::kNumActivations - 1);
    for (int32_t o = 0; o < num_outputs; ++o) set_activation(b, fooling::kNumInputs + o, a(rng));
    for (int32_t h = 0; h < hidden; ++h) add_node(b, a(rng));
    const int32_t n = num_nodes[b];
    std::vector<float> rank(n, -1.0f);
    for (int32_t i = fooling::kNumInputs; i < n; ++i) rank[i] = u(rng);
    for (int32_t s = 0; s < n; ++s)
      for (int32_t d = fooling::kNumInputs; d < n; ++d)
        if (rank[s] < rank[d] && u(rng) < density && num_edges[b] < max_edges) add_edge(b, s, d, w(rng));
  }
};

}  // namespace fooling_test
