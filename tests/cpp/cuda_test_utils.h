// Device-side helpers for the CUDA tests: owned device copies of host arrays and of a HostBatch.
#pragma once

#if defined(FOOLING_WITH_CUDA)
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <vector>

#include "fooling/genome.h"
#include "genome_builder.h"

namespace fooling_test {

inline bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// A device copy of a host vector, freed on destruction.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(const std::vector<T>& host) : size_(host.size()) {
    EXPECT_EQ(cudaMalloc(&ptr_, bytes() + 1), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr_, host.data(), bytes(), cudaMemcpyHostToDevice), cudaSuccess);
  }
  explicit DeviceArray(size_t size) : DeviceArray(std::vector<T>(size)) {}
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(ptr_); }

  T* get() const { return ptr_; }
  std::vector<T> download() const {
    std::vector<T> host(size_);
    EXPECT_EQ(cudaMemcpy(host.data(), ptr_, bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }

 private:
  size_t bytes() const { return size_ * sizeof(T); }
  T* ptr_ = nullptr;
  size_t size_;
};

// A HostBatch's arrays on the device.
struct DeviceBatch {
  explicit DeviceBatch(const HostBatch& hb)
      : host(hb),
        num_nodes(hb.num_nodes),
        num_edges(hb.num_edges),
        act(hb.act),
        src(hb.src),
        dst(hb.dst),
        weight(hb.weight) {}

  fooling::CppnBatchView view() {
    fooling::CppnBatchView v = host.view();
    v.num_nodes = num_nodes.get();
    v.num_edges = num_edges.get();
    v.node_activation = act.get();
    v.edge_src = src.get();
    v.edge_dst = dst.get();
    v.edge_weight = weight.get();
    return v;
  }

  HostBatch download() const {
    HostBatch out = host;
    out.num_nodes = num_nodes.download();
    out.num_edges = num_edges.download();
    out.act = act.download();
    out.src = src.download();
    out.dst = dst.download();
    out.weight = weight.download();
    return out;
  }

  HostBatch host;
  DeviceArray<int32_t> num_nodes, num_edges, act, src, dst;
  DeviceArray<float> weight;
};

}  // namespace fooling_test
#endif
