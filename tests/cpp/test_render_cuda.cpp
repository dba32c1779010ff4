// CUDA renderer parity with the CPU renderer (skipped without a device or without the CUDA build).
#include <gtest/gtest.h>

#include <vector>

#include "cuda_test_utils.h"
#include "fooling/render.h"
#include "genome_builder.h"

using namespace fooling;

#if defined(FOOLING_WITH_CUDA)
namespace {

using fooling_test::DeviceArray;
using fooling_test::DeviceBatch;
using fooling_test::have_device;
using fooling_test::HostBatch;

// Renders hb on the device with a workspace of `rows` genomes (so small values exercise chunking).
std::vector<float> render_on_device(const HostBatch& hb, const RenderParams& p, int64_t rows,
                                    std::vector<GenomeError>* errs) {
  DeviceBatch genomes(hb);
  DeviceArray<float> out(static_cast<size_t>(hb.batch) * hb.num_outputs * p.height * p.width);
  DeviceArray<GenomeError> errors(static_cast<size_t>(hb.batch));
  DeviceArray<int32_t> workspace(static_cast<size_t>(rows * program_workspace_ints(hb.max_nodes, hb.max_edges)));
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  EXPECT_EQ(render_cuda(genomes.view(), p, out.get(), errors.get(), workspace.get(), rows, stream), "");
  cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  *errs = errors.download();
  return out.download();
}

}  // namespace
#endif

TEST(RenderCuda, MatchesCpuOnRandomGenomes) {
#if !defined(FOOLING_WITH_CUDA)
  GTEST_SKIP() << "built without the CUDA backend";
#else
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  std::mt19937 rng(21);
  for (int32_t outputs : {1, 3}) {
    for (int32_t coords : {kCoordsNormalized, kCoordsPixel}) {
      HostBatch hb(37, outputs, 64, 500);
      for (int32_t b = 0; b < hb.batch; ++b) hb.randomize(b, rng, b % 31, 0.15f);
      hb.add_edge(5, 4, 4, 1.0f);  // one invalid genome: its image must be zeros on both backends
      const RenderParams p{45, 61, coords, kColorHsl};
      std::vector<float> cpu(static_cast<size_t>(hb.batch) * outputs * p.height * p.width);
      std::vector<GenomeError> cpu_err(hb.batch), gpu_err;
      render_cpu(hb.view(), p, cpu.data(), cpu_err.data());
      const std::vector<float> gpu = render_on_device(hb, p, 8, &gpu_err);
      double worst = 0.0;
      for (size_t i = 0; i < cpu.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(cpu[i] - gpu[i])));
      EXPECT_LE(worst, 1e-5) << "outputs " << outputs << " coords " << coords;
      for (int32_t b = 0; b < hb.batch; ++b) EXPECT_EQ(cpu_err[b].code, gpu_err[b].code) << b;
      EXPECT_EQ(gpu_err[5].code, kCycle);
    }
  }
#endif
}

TEST(RenderCuda, EightBitModesMatchTheCpuBackend) {
#if !defined(FOOLING_WITH_CUDA)
  GTEST_SKIP() << "built without the CUDA backend";
#else
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  std::mt19937 rng(23);
  struct Mode {
    int32_t outputs, color, quantize;
  };
  for (const Mode m : {Mode{1, kColorHsl, 1}, Mode{3, kColorHls8, 0}, Mode{3, kColorHsl, 1}, Mode{3, kColorHsv, 1}}) {
    HostBatch hb(29, m.outputs, 64, 500);
    for (int32_t b = 0; b < hb.batch; ++b) hb.randomize(b, rng, b % 23, 0.15f);
    RenderParams p{37, 41, kCoordsNormalized, m.color};
    p.quantize = m.quantize;
    std::vector<float> cpu(static_cast<size_t>(hb.batch) * m.outputs * p.height * p.width);
    std::vector<GenomeError> cpu_err(hb.batch), gpu_err;
    render_cpu(hb.view(), p, cpu.data(), cpu_err.data());
    const std::vector<float> gpu = render_on_device(hb, p, 8, &gpu_err);
    // Both backends run the same float operations, so the bytes agree; a network value within 1e-5 of a byte
    // boundary could still land on the other side, so a few pixels may differ by a step (a hue byte: <= 9).
    size_t differ = 0;
    for (size_t i = 0; i < cpu.size(); ++i) {
      if (cpu[i] == gpu[i]) continue;
      ++differ;
      EXPECT_LE(std::fabs(cpu[i] - gpu[i]), 9.5f / 255.0f) << i;
      EXPECT_EQ(std::nearbyint(gpu[i] * 255.0f), gpu[i] * 255.0f) << "not on the 8-bit grid: " << i;
    }
    EXPECT_LE(differ, cpu.size() / 1000) << "color " << m.color << " quantize " << m.quantize;
  }
#endif
}

TEST(RenderCuda, ReportsWhenCapacityExceedsSharedMemory) {
#if !defined(FOOLING_WITH_CUDA)
  GTEST_SKIP() << "built without the CUDA backend";
#else
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  HostBatch hb(1, 1, 4096, 16);
  std::vector<GenomeError> errs;
  CppnBatchView v = hb.view();
  const std::string err = render_cuda(v, {4, 4, kCoordsNormalized, kColorHsl}, nullptr, nullptr, nullptr, 1, nullptr);
  EXPECT_NE(err.find("shared memory"), std::string::npos) << err;
#endif
}
