// What the CUDA backend was built with and what it can use now.
#pragma once

#include <string>
#include <vector>

namespace fooling {

struct CudaDevice {
  std::string name;
  int major = 0;
  int minor = 0;
  long long total_memory = 0;
  int max_shared_per_block_optin = 0;
};

struct CudaInfo {
  bool compiled = false;            // the CUDA backend is part of this build
  int runtime_version = 0;          // CUDA runtime the module was linked with (statically)
  int driver_version = 0;           // 0 when there is no driver
  std::string architectures;        // CMAKE_CUDA_ARCHITECTURES of the build
  std::vector<CudaDevice> devices;  // devices usable now
  std::string error;                // why no device can be used, if none
};

CudaInfo cuda_info();

}  // namespace fooling
