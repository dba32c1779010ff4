// Shared definitions for the host (C++) and device (CUDA) code of fooling_ext.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FOOLING_HD __host__ __device__ __forceinline__
#else
#define FOOLING_HD inline
#endif

// CPU kernels marked with this are compiled twice, for AVX2 and for the baseline, and the loader picks the
// one the CPU supports. No FMA in either, so both give bit-identical results.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(__CUDACC__)
#define FOOLING_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FOOLING_VECTOR_CLONES
#endif

namespace fooling {

// CPPN inputs, in node-index order: x, y, d (distance from the centre), bias (= 1).
constexpr int kNumInputs = 4;
constexpr int kInputX = 0;
constexpr int kInputY = 1;
constexpr int kInputD = 2;
constexpr int kInputBias = 3;

// Upper limits on the padded capacity, so index arithmetic stays within int32.
constexpr int kMaxNodesCapacity = 4096;
constexpr int kMaxEdgesCapacity = 65536;
constexpr int kMaxImageSide = 1024;

}  // namespace fooling
