// CUDA backend of the batched CPPN renderer: one thread compiles each genome's program (the same
// compile_program as the CPU backend), then one thread per pixel evaluates it, with the node values of a
// block's pixels in shared memory. Images are written straight into the caller's device buffer.
#include <algorithm>

#include "cuda_common.cuh"
#include "fooling/render.h"

namespace fooling {
namespace {

__global__ void compile_kernel(CppnBatchView g, int32_t* workspace, int64_t row_size, GenomeError* errors) {
  const int32_t b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= g.batch) return;
  errors[b] = compile_program(g, b, workspace + b * row_size);
}

__global__ void render_kernel(const int32_t* workspace, int64_t row_size, ProgramLayout L, RenderParams p,
                              int32_t channels, const GenomeError* errors, float* out) {
  extern __shared__ float vals[];  // [slots][blockDim.x]
  const int32_t b = blockIdx.y;
  const int64_t plane = static_cast<int64_t>(p.height) * p.width;
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (pix >= plane) return;
  float* out_b = out + static_cast<int64_t>(b) * channels * plane + pix;
  if (errors[b].code != kGenomeOk) {
    for (int32_t c = 0; c < channels; ++c) out_b[c * plane] = 0.0f;
    return;
  }
  const int32_t* prog = workspace + b * row_size;
  const int32_t stride = blockDim.x;
  float* v = vals + threadIdx.x;
  const int32_t row = static_cast<int32_t>(pix / p.width);
  const int32_t col = static_cast<int32_t>(pix % p.width);
  float x, y, d;
  pixel_inputs(p, row, col, &x, &y, &d);
  v[kInputX * stride] = x;
  v[kInputY * stride] = y;
  v[kInputD * stride] = d;
  v[kInputBias * stride] = 1.0f;
  const int32_t steps = prog[0];
  const int32_t* step_act = prog + L.step_act();
  const int32_t* step_begin = prog + L.step_begin();
  const int32_t* src_slot = prog + L.in_src_slot();
  const float* weight = reinterpret_cast<const float*>(prog + L.in_weight());
  for (int32_t s = 0; s < steps; ++s) {
    float acc = 0.0f;
    const int32_t end = step_begin[s + 1];
    for (int32_t e = step_begin[s]; e < end; ++e) acc = __fadd_rn(acc, __fmul_rn(weight[e], v[src_slot[e] * stride]));
    v[(kNumInputs + s) * stride] = apply_activation(step_act[s], acc);
  }
  const int32_t* out_slot = prog + L.out_slot();
  const float o0 = v[out_slot[0] * stride];
  const float o1 = channels == 3 ? v[out_slot[1] * stride] : 0.0f;
  const float o2 = channels == 3 ? v[out_slot[2] * stride] : 0.0f;
  write_pixel(p, channels, o0, o1, o2, out_b, plane);
}

}  // namespace

std::string render_cuda(const CppnBatchView& g, const RenderParams& p, float* out, GenomeError* errors,
                        int32_t* workspace, int64_t workspace_rows, void* stream_ptr) {
  const std::string bad = check_render_call(g, p);
  if (!bad.empty()) return bad;
  if (g.batch == 0) return "";
  if (workspace_rows < 1) return "workspace must hold at least one genome";
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  int device = 0;
  FOOLING_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device), "cudaGetDevice");
  int smem_optin = 0;
  FOOLING_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
                               "cudaDeviceGetAttribute");
  // Largest block (128 threads down to 32) whose node values fit in shared memory.
  int threads = 128;
  while (threads > 32 && static_cast<int64_t>(g.max_nodes) * threads * 4 > 48 * 1024) threads /= 2;
  const int64_t smem = static_cast<int64_t>(g.max_nodes) * threads * 4;
  if (smem > smem_optin) {
    return "max_nodes = " + std::to_string(g.max_nodes) + " needs " + std::to_string(smem) +
           " bytes of shared memory per block; this device allows " + std::to_string(smem_optin);
  }
  if (smem > 48 * 1024) {
    FOOLING_CUDA_RETURN_IF_ERROR(
        cudaFuncSetAttribute(render_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
        "cudaFuncSetAttribute");
  }
  const ProgramLayout L{g.max_nodes, g.max_edges};
  const int64_t row_size = L.row_size();
  const int64_t plane = static_cast<int64_t>(p.height) * p.width;
  const int64_t image = plane * g.num_outputs;
  const int64_t chunk = std::min<int64_t>(workspace_rows, 65535);
  for (int64_t start = 0; start < g.batch; start += chunk) {
    const int32_t count = static_cast<int32_t>(std::min<int64_t>(chunk, g.batch - start));
    const CppnBatchView part = g.slice(start, count);
    compile_kernel<<<(count + 127) / 128, 128, 0, stream>>>(part, workspace, row_size, errors + start);
    FOOLING_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "compile_kernel launch");
    const dim3 grid(static_cast<unsigned>((plane + threads - 1) / threads), static_cast<unsigned>(count));
    render_kernel<<<grid, threads, smem, stream>>>(workspace, row_size, L, p, g.num_outputs, errors + start,
                                                   out + start * image);
    FOOLING_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "render_kernel launch");
  }
  return "";
}

}  // namespace fooling
