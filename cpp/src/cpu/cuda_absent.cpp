// Build without the CUDA backend: the same entry points, each reporting that CUDA is not compiled in.
#include "fooling/cuda_info.h"
#include "fooling/mutation.h"
#include "fooling/render.h"

namespace fooling {

namespace {
const char* kNotCompiled =
    "fooling_ext was built without the CUDA backend (no nvcc at build time, or FOOLING_CUDA=OFF)";
}

CudaInfo cuda_info() {
  CudaInfo info;
  info.error = kNotCompiled;
  return info;
}

std::string render_cuda(const CppnBatchView&, const RenderParams&, float*, GenomeError*, int32_t*, int64_t, void*) {
  return kNotCompiled;
}

std::string mutate_cppn_cuda(const CppnBatchView&, const CppnMutationParams&, uint64_t, uint32_t, uint32_t,
                             GenomeError*, int32_t*, int32_t*, int64_t, void*) {
  return kNotCompiled;
}

std::string select_cppn_cuda(const CppnBatchView&, const int64_t*, const CppnBatchView&, int64_t*, void*) {
  return kNotCompiled;
}

std::string select_rows_cuda(const float*, int64_t, int64_t, const int64_t*, int64_t, float*, int64_t*, void*) {
  return kNotCompiled;
}

std::string init_pixels_cuda(float*, int64_t, int64_t, uint64_t, uint32_t, void*) { return kNotCompiled; }

std::string mutate_pixels_cuda(float*, int64_t, int64_t, const PixelMutationParams&, uint64_t, uint32_t, uint32_t,
                               void*) {
  return kNotCompiled;
}

}  // namespace fooling
