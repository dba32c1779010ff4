// CUDA renderer parity with the CPU renderer (skipped without a device or without the CUDA build).
#include <gtest/gtest.h>

#include <vector>

#include "fooling/render.h"
#include "genome_builder.h"

#if defined(FOOLING_WITH_CUDA)
#include <cuda_runtime.h>
#endif

using namespace fooling;
using fooling_test::HostBatch;

#if defined(FOOLING_WITH_CUDA)
namespace {

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

template <typename T>
T* upload(const std::vector<T>& v) {
  T* d = nullptr;
  cudaMalloc(&d, v.size() * sizeof(T) + 1);
  cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  return d;
}

// Renders hb on the device with a workspace of `rows` genomes (so small values exercise chunking).
std::vector<float> render_on_device(HostBatch& hb, const RenderParams& p, int64_t rows, std::vector<GenomeError>* errs) {
  CppnBatchView v = hb.view();
  v.num_nodes = upload(hb.num_nodes);
  v.num_edges = upload(hb.num_edges);
  v.node_activation = upload(hb.act);
  v.edge_src = upload(hb.src);
  v.edge_dst = upload(hb.dst);
  v.edge_weight = upload(hb.weight);
  const size_t n = static_cast<size_t>(hb.batch) * hb.num_outputs * p.height * p.width;
  float* out = nullptr;
  GenomeError* errors = nullptr;
  int32_t* ws = nullptr;
  cudaMalloc(&out, n * sizeof(float));
  cudaMalloc(&errors, hb.batch * sizeof(GenomeError));
  cudaMalloc(&ws, rows * program_workspace_ints(hb.max_nodes, hb.max_edges) * sizeof(int32_t));
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  const std::string err = render_cuda(v, p, out, errors, ws, rows, stream);
  EXPECT_EQ(err, "");
  cudaStreamSynchronize(stream);
  std::vector<float> host(n);
  cudaMemcpy(host.data(), out, n * sizeof(float), cudaMemcpyDeviceToHost);
  errs->resize(hb.batch);
  cudaMemcpy(errs->data(), errors, hb.batch * sizeof(GenomeError), cudaMemcpyDeviceToHost);
  cudaStreamDestroy(stream);
  for (void* ptr : {static_cast<void*>(v.num_nodes), static_cast<void*>(v.num_edges),
                    static_cast<void*>(v.node_activation), static_cast<void*>(v.edge_src),
                    static_cast<void*>(v.edge_dst), static_cast<void*>(v.edge_weight), static_cast<void*>(out),
                    static_cast<void*>(errors), static_cast<void*>(ws)})
    cudaFree(ptr);
  return host;
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
