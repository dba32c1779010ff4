// Genome validation and compilation into a program: topological order, pruning, every error code.
#include <gtest/gtest.h>

#include <vector>

#include "fooling/program.h"
#include "genome_builder.h"

using namespace fooling;
using fooling_test::HostBatch;

namespace {

struct Compiled {
  GenomeError err{};
  std::vector<int32_t> w;
};

Compiled compile(HostBatch& hb, int32_t b = 0) {
  Compiled c;
  c.w.assign(ProgramLayout{hb.max_nodes, hb.max_edges}.row_size(), -7);
  c.err = compile_program(hb.view(), b, c.w.data());
  return c;
}

}  // namespace

TEST(Program, ChainStoredBackwardsIsOrderedForward) {
  HostBatch hb(1, 1);
  const int32_t h1 = hb.add_node(0, kSine), h2 = hb.add_node(0, kGaussian), h3 = hb.add_node(0, kLinear);
  hb.add_edge(0, h3, kNumInputs, 1.0f);  // h3 -> out
  hb.add_edge(0, h2, h3, 2.0f);          // h2 -> h3
  hb.add_edge(0, h1, h2, 3.0f);          // h1 -> h2
  hb.add_edge(0, kInputX, h1, 4.0f);     // x -> h1
  const Compiled c = compile(hb);
  ASSERT_EQ(c.err.code, kGenomeOk);
  const ProgramLayout L{hb.max_nodes, hb.max_edges};
  ASSERT_EQ(c.w[0], 4);  // h1, h2, h3, out
  const int32_t* act = c.w.data() + L.step_act();
  EXPECT_EQ(act[0], kSine);
  EXPECT_EQ(act[1], kGaussian);
  EXPECT_EQ(act[2], kLinear);
  const int32_t* begin = c.w.data() + L.step_begin();
  const int32_t* src_slot = c.w.data() + L.in_src_slot();
  // Each step reads the slot written by the step before it.
  EXPECT_EQ(src_slot[begin[0]], kInputX);
  EXPECT_EQ(src_slot[begin[1]], kNumInputs + 0);
  EXPECT_EQ(src_slot[begin[2]], kNumInputs + 1);
  EXPECT_EQ(src_slot[begin[3]], kNumInputs + 2);
  EXPECT_EQ(c.w[L.out_slot()], kNumInputs + 3);
  const float* weight = reinterpret_cast<const float*>(c.w.data() + L.in_weight());
  EXPECT_EQ(weight[begin[0]], 4.0f);
  EXPECT_EQ(weight[begin[3]], 1.0f);
}

TEST(Program, DiamondKeepsIncomingEdgesInStorageOrder) {
  HostBatch hb(1, 1);
  const int32_t a = hb.add_node(0, kSine), b = hb.add_node(0, kSine);
  hb.add_edge(0, b, kNumInputs, 5.0f);
  hb.add_edge(0, kInputY, a, 1.0f);
  hb.add_edge(0, a, kNumInputs, 6.0f);
  hb.add_edge(0, kInputX, b, 1.0f);
  hb.add_edge(0, kInputBias, kNumInputs, 7.0f);
  const Compiled c = compile(hb);
  ASSERT_EQ(c.err.code, kGenomeOk);
  const ProgramLayout L{hb.max_nodes, hb.max_edges};
  ASSERT_EQ(c.w[0], 3);
  const int32_t* begin = c.w.data() + L.step_begin();
  const float* weight = reinterpret_cast<const float*>(c.w.data() + L.in_weight());
  ASSERT_EQ(begin[3] - begin[2], 3);  // the output is last, with its 3 edges in storage order
  EXPECT_EQ(weight[begin[2]], 5.0f);
  EXPECT_EQ(weight[begin[2] + 1], 6.0f);
  EXPECT_EQ(weight[begin[2] + 2], 7.0f);
}

TEST(Program, NodesNoOutputNeedsArePruned) {
  HostBatch hb(1, 3);
  const int32_t used = hb.add_node(0, kSine), dead = hb.add_node(0, kSine), dead2 = hb.add_node(0, kSine);
  hb.add_edge(0, kInputX, used, 1.0f);
  hb.add_edge(0, used, kNumInputs + 1, 1.0f);
  hb.add_edge(0, kInputY, dead, 1.0f);
  hb.add_edge(0, dead, dead2, 1.0f);
  const Compiled c = compile(hb);
  ASSERT_EQ(c.err.code, kGenomeOk);
  EXPECT_EQ(c.w[0], 4);  // three outputs and `used`
}

TEST(Program, EveryErrorCodeNamesTheEntry) {
  struct Case {
    const char* what;
    void (*make)(HostBatch&);
    GenomeErrorCode code;
    int32_t index, value;
  };
  const Case cases[] = {
      {"too many nodes", [](HostBatch& h) { h.num_nodes[0] = 33; }, kNodeCountOutOfRange, -1, 33},
      {"too few nodes", [](HostBatch& h) { h.num_nodes[0] = 4; }, kNodeCountOutOfRange, -1, 4},
      {"negative edges", [](HostBatch& h) { h.num_edges[0] = -1; }, kEdgeCountOutOfRange, -1, -1},
      {"unknown activation", [](HostBatch& h) { h.set_activation(0, 4, 17); }, kUnknownActivation, 4, 17},
      {"dangling src", [](HostBatch& h) { h.add_edge(0, 9, 4, 1.0f); }, kEdgeSrcOutOfRange, 0, 9},
      {"dangling dst", [](HostBatch& h) { h.add_edge(0, 0, 5, 1.0f); }, kEdgeDstOutOfRange, 0, 5},
      {"into input", [](HostBatch& h) { h.add_edge(0, 4, 1, 1.0f); }, kEdgeIntoInput, 0, 1},
      {"nan weight", [](HostBatch& h) { h.add_edge(0, 0, 4, NAN); }, kNonFiniteWeight, 0, 0},
      {"self loop", [](HostBatch& h) { h.add_edge(0, 4, 4, 1.0f); }, kCycle, 4, 1},
      {"two-cycle",
       [](HostBatch& h) {
         h.add_node(0, kSine);
         h.add_node(0, kSine);
         h.add_edge(0, 5, 6, 1.0f);
         h.add_edge(0, 6, 5, 1.0f);
         h.add_edge(0, 6, 4, 1.0f);
       },
       kCycle, 4, 3},
  };
  for (const Case& c : cases) {
    HostBatch hb(1, 1);
    c.make(hb);
    const Compiled out = compile(hb);
    EXPECT_EQ(out.err.code, c.code) << c.what;
    EXPECT_EQ(out.err.index, c.index) << c.what;
    EXPECT_EQ(out.err.value, c.value) << c.what;
    EXPECT_EQ(out.w[0], 0) << c.what;  // an invalid genome has an empty program
  }
}

TEST(Program, RandomGenomesCompileToValidOrders) {
  std::mt19937 rng(3);
  HostBatch hb(50, 3, 48, 400);
  for (int32_t b = 0; b < hb.batch; ++b) hb.randomize(b, rng, b % 40, 0.3f);
  const ProgramLayout L{hb.max_nodes, hb.max_edges};
  for (int32_t b = 0; b < hb.batch; ++b) {
    const Compiled c = compile(hb, b);
    ASSERT_EQ(c.err.code, kGenomeOk) << "genome " << b;
    const int32_t steps = c.w[0];
    const int32_t* begin = c.w.data() + L.step_begin();
    const int32_t* src_slot = c.w.data() + L.in_src_slot();
    for (int32_t s = 0; s < steps; ++s)
      for (int32_t e = begin[s]; e < begin[s + 1]; ++e)
        EXPECT_LT(src_slot[e], kNumInputs + s) << "step " << s << " reads a value not computed yet";
  }
}
