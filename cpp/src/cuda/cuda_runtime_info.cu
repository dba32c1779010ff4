#include "cuda_common.cuh"
#include "fooling/cuda_info.h"

#ifndef FOOLING_CUDA_ARCHITECTURES
#define FOOLING_CUDA_ARCHITECTURES ""
#endif

namespace fooling {

CudaInfo cuda_info() {
  CudaInfo info;
  info.compiled = true;
  info.architectures = FOOLING_CUDA_ARCHITECTURES;
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    info.error = cuda_error_message(err, "cudaGetDeviceCount");
    return info;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    CudaDevice dev;
    dev.name = prop.name;
    dev.major = prop.major;
    dev.minor = prop.minor;
    dev.total_memory = static_cast<long long>(prop.totalGlobalMem);
    dev.max_shared_per_block_optin = static_cast<int>(prop.sharedMemPerBlockOptin);
    info.devices.push_back(dev);
  }
  if (info.devices.empty()) info.error = "no CUDA device found";
  return info;
}

}  // namespace fooling
