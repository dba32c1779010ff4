// CUDA mutation and selection are bit-identical to the CPU backend (skipped without a device or without the
// CUDA build).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cuda_test_utils.h"
#include "fooling/mutation.h"
#include "genome_builder.h"

using namespace fooling;
#if defined(FOOLING_WITH_CUDA)
using fooling_test::DeviceArray;
using fooling_test::DeviceBatch;
using fooling_test::have_device;
using fooling_test::HostBatch;
#endif

#if defined(FOOLING_WITH_CUDA)
namespace {

void expect_same_genomes(const HostBatch& a, const HostBatch& b, const std::string& when) {
  EXPECT_EQ(a.num_nodes, b.num_nodes) << when;
  EXPECT_EQ(a.num_edges, b.num_edges) << when;
  EXPECT_EQ(a.act, b.act) << when;
  EXPECT_EQ(a.src, b.src) << when;
  EXPECT_EQ(a.dst, b.dst) << when;
  EXPECT_EQ(a.weight, b.weight) << when;
}

}  // namespace
#endif

TEST(MutationCuda, CppnMutationMatchesCpuOverManyGenerations) {
#if !defined(FOOLING_WITH_CUDA)
  GTEST_SKIP() << "built without the CUDA backend";
#else
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  std::mt19937 rng(12);
  HostBatch cpu(70, 3, 40, 160);
  for (int32_t b = 0; b < cpu.batch; ++b) cpu.randomize(b, rng, b % 20, 0.2f);
  cpu.add_edge(3, 99, 4, 1.0f);  // one invalid genome: reported and left alone on both backends
  DeviceBatch gpu(cpu);
  const int64_t rows = 16;  // fewer than the batch: exercises chunking and the genome offsets
  DeviceArray<int32_t> workspace(rows * mutation_workspace_ints(cpu.max_nodes, cpu.max_edges));
  DeviceArray<GenomeError> gpu_errors(cpu.batch);
  DeviceArray<int32_t> gpu_blocked(cpu.batch);
  std::vector<GenomeError> cpu_errors(cpu.batch);
  std::vector<int32_t> cpu_blocked(cpu.batch);
  int64_t blocked_seen = 0;
  for (const int32_t mode : {kAddEdgeOriginal, kAddEdgeRejection}) {
    CppnMutationParams p;
    p.add_edge = mode;
    p.activations = (1u << kSine) | (1u << kSigmoid) | (1u << kLinear);
    for (uint32_t gen = 0; gen < 40; ++gen) {
      mutate_cppn_cpu(cpu.view(), p, 2024, gen, 1000, cpu_errors.data(), cpu_blocked.data());
      ASSERT_EQ(mutate_cppn_cuda(gpu.view(), p, 2024, gen, 1000, gpu_errors.get(), gpu_blocked.get(), workspace.get(),
                                 rows, nullptr),
                "");
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(gpu_blocked.download(), cpu_blocked) << "mode " << mode << " generation " << gen;
      for (int32_t flags : cpu_blocked) blocked_seen += flags != 0;
    }
    expect_same_genomes(cpu, gpu.download(),
                        mode == kAddEdgeOriginal ? "original, 40 generations" : "rejection, 40 more generations");
  }
  EXPECT_GT(blocked_seen, 0);  // 40 nodes and 160 edges fill up within 80 generations of growth
  const std::vector<GenomeError> errors = gpu_errors.download();
  for (int32_t b = 0; b < cpu.batch; ++b) EXPECT_EQ(errors[b].code, cpu_errors[b].code) << b;
  EXPECT_EQ(errors[3].code, kEdgeSrcOutOfRange);
#endif
}

TEST(MutationCuda, PixelInitAndMutationMatchCpu) {
#if !defined(FOOLING_WITH_CUDA)
  GTEST_SKIP() << "built without the CUDA backend";
#else
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  for (const int64_t genes : {int64_t{5}, int64_t{3 * 37 * 41}}) {
    for (const int32_t crossover : {0, 1}) {
      const int64_t batch = 9;
      std::vector<float> cpu(batch * genes);
      init_pixels_cpu(cpu.data(), batch, genes, 77, 3);
      DeviceArray<float> gpu(batch * genes);
      ASSERT_EQ(init_pixels_cuda(gpu.get(), batch, genes, 77, 3, nullptr), "");
      EXPECT_EQ(gpu.download(), cpu) << "initial genes";
      PixelMutationParams p;
      p.rate = 0.2f;
      p.crossover = crossover;
      for (uint32_t gen = 0; gen < 5; ++gen) {
        mutate_pixels_cpu(cpu.data(), batch, genes, p, 77, gen, 3);
        ASSERT_EQ(mutate_pixels_cuda(gpu.get(), batch, genes, p, 77, gen, 3, nullptr), "");
      }
      EXPECT_EQ(gpu.download(), cpu) << genes << " genes, crossover " << crossover;
    }
  }
#endif
}

TEST(MutationCuda, SelectionMatchesCpuAndFlagsTheFirstBadIndex) {
#if !defined(FOOLING_WITH_CUDA)
  GTEST_SKIP() << "built without the CUDA backend";
#else
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  std::mt19937 rng(6);
  HostBatch parents(6, 1), cpu(5, 1);
  for (int32_t b = 0; b < parents.batch; ++b) parents.randomize(b, rng, b, 0.3f);
  const std::vector<int64_t> index = {5, 0, 9, 5, -2};
  EXPECT_EQ(select_cppn_cpu(parents.view(), index.data(), cpu.view()), 2);
  DeviceBatch gpu_parents(parents), gpu(cpu);
  DeviceArray<int64_t> gpu_index(index), first_bad(1);
  ASSERT_EQ(select_cppn_cuda(gpu_parents.view(), gpu_index.get(), gpu.view(), first_bad.get(), nullptr), "");
  EXPECT_EQ(first_bad.download()[0], 2);
  const HostBatch from_gpu = gpu.download();
  EXPECT_EQ(from_gpu.num_nodes, cpu.num_nodes);
  EXPECT_EQ(from_gpu.num_edges, cpu.num_edges);
  for (int32_t i : {0, 1, 3}) {
    const int32_t b = static_cast<int32_t>(index[i]);
    for (int32_t e = 0; e < parents.num_edges[b]; ++e) {
      EXPECT_EQ(from_gpu.src[i * cpu.max_edges + e], parents.src[b * parents.max_edges + e]);
      EXPECT_EQ(from_gpu.weight[i * cpu.max_edges + e], parents.weight[b * parents.max_edges + e]);
    }
  }

  const std::vector<float> rows = {1, 2, 3, 4, 5, 6};
  const std::vector<int64_t> pick = {2, 0, 1};
  DeviceArray<float> gpu_rows(rows), out(6);
  DeviceArray<int64_t> gpu_pick(pick);
  ASSERT_EQ(select_rows_cuda(gpu_rows.get(), 3, 2, gpu_pick.get(), 3, out.get(), first_bad.get(), nullptr), "");
  EXPECT_EQ(out.download(), (std::vector<float>{5, 6, 1, 2, 3, 4}));
  EXPECT_EQ(first_bad.download()[0], -1);
#endif
}

TEST(MutationCuda, BadParametersAreReportedNotLaunched) {
#if !defined(FOOLING_WITH_CUDA)
  GTEST_SKIP() << "built without the CUDA backend";
#else
  HostBatch hb(2, 1);
  CppnMutationParams p;
  p.eta = -1.0f;
  EXPECT_NE(mutate_cppn_cuda(hb.view(), p, 0, 0, 0, nullptr, nullptr, nullptr, 1, nullptr).find("eta"),
            std::string::npos);
  PixelMutationParams q;
  q.rate = 2.0f;
  EXPECT_NE(mutate_pixels_cuda(nullptr, 1, 4, q, 0, 0, 0, nullptr).find("rate"), std::string::npos);
  EXPECT_NE(init_pixels_cuda(nullptr, 1, 0, 0, 0, nullptr).find("genes per genome"), std::string::npos);
#endif
}
