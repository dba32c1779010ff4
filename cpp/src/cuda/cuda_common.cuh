// Helpers shared by the CUDA sources.
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace fooling {

inline std::string cuda_error_message(cudaError_t err, const char* what) {
  return std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
}

#define FOOLING_CUDA_RETURN_IF_ERROR(call, what)                \
  do {                                                          \
    const cudaError_t fooling_err_ = (call);                    \
    if (fooling_err_ != cudaSuccess) {                          \
      (void)cudaGetLastError();                                 \
      return ::fooling::cuda_error_message(fooling_err_, what); \
    }                                                           \
  } while (0)

}  // namespace fooling
