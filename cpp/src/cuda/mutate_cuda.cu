// CUDA backend of batched mutation and parent selection. CPPN mutation runs one genome per thread (its
// topology edits are sequential; the batch gives the parallelism), pixel mutation one group of four genes
// per thread. Both call the same functions of mutation.h as the CPU backend, compiled without FMA
// contraction, so the two backends write the same bits. Everything runs asynchronously on the caller's
// stream, in place in the caller's device buffers.
#include <algorithm>

#include "cuda_common.cuh"
#include "fooling/mutation.h"

namespace fooling {
namespace {

// One CPPN genome per thread: a small block spreads a few hundred genomes over more multiprocessors.
constexpr int kGenomeThreads = 32;
constexpr int kThreads = 256;
// Grid-stride kernels need no more blocks than this to fill any current device.
constexpr int64_t kMaxBlocks = int64_t{1} << 16;
constexpr int64_t kMaxGridY = 65535;

int grid_for(int64_t work) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, kMaxBlocks)));
}

__global__ void mutate_cppn_kernel(CppnBatchView g, CppnMutationParams p, uint64_t seed, uint32_t generation,
                                   uint32_t genome_offset, int32_t* workspace, int64_t row_size, GenomeError* errors,
                                   int32_t* blocked) {
  const int32_t b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= g.batch) return;
  int32_t flags = 0;
  errors[b] = mutate_cppn_genome(g, b, p, seed, generation, genome_offset + static_cast<uint32_t>(b),
                                 workspace + b * row_size, &flags);
  if (blocked != nullptr) blocked[b] = flags;
}

// One block per child; the block's threads copy the child's rows.
__global__ void select_cppn_kernel(CppnBatchView parents, const int64_t* index, CppnBatchView children,
                                   unsigned long long* first_bad) {
  for (int64_t i = blockIdx.x; i < children.batch; i += gridDim.x) {
    const int64_t b = index[i];
    if (b < 0 || b >= parents.batch) {
      if (threadIdx.x == 0) {
        write_bare_genome(children, static_cast<int32_t>(i));
        atomicMin(first_bad, static_cast<unsigned long long>(i));
      }
      continue;
    }
    if (threadIdx.x == 0) {
      children.num_nodes[i] = parents.num_nodes[b];
      children.num_edges[i] = parents.num_edges[b];
    }
    const int64_t nodes = parents.max_nodes, edges = parents.max_edges;
    for (int64_t k = threadIdx.x; k < nodes; k += blockDim.x) {
      children.node_activation[i * nodes + k] = parents.node_activation[b * nodes + k];
    }
    for (int64_t k = threadIdx.x; k < edges; k += blockDim.x) {
      children.edge_src[i * edges + k] = parents.edge_src[b * edges + k];
      children.edge_dst[i * edges + k] = parents.edge_dst[b * edges + k];
      children.edge_weight[i * edges + k] = parents.edge_weight[b * edges + k];
    }
  }
}

// blockIdx.y: the child (within the launch's chunk); the x dimension strides over its row.
__global__ void select_rows_kernel(const float* parents, int64_t parent_rows, int64_t row_size, const int64_t* index,
                                   int64_t first_child, float* children, unsigned long long* first_bad) {
  const int64_t i = first_child + blockIdx.y;
  const int64_t b = index[i];
  const bool bad = b < 0 || b >= parent_rows;
  if (bad && blockIdx.x == 0 && threadIdx.x == 0) atomicMin(first_bad, static_cast<unsigned long long>(i));
  float* to = children + i * row_size;
  const float* from = parents + (bad ? 0 : b) * row_size;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < row_size;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    to[k] = bad ? 0.0f : from[k];
  }
}

__global__ void init_pixels_kernel(float* genes, int64_t batch, int64_t genes_per_genome, PhiloxKey key,
                                   uint32_t genome_offset) {
  const int64_t groups = gene_groups(genes_per_genome);
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < batch * groups;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = t / groups;
    init_pixel_group(genes + b * genes_per_genome, genes_per_genome, t % groups, key,
                     genome_offset + static_cast<uint32_t>(b));
  }
}

__global__ void mutate_pixels_kernel(float* genes, int64_t batch, int64_t genes_per_genome, PixelMutationParams p,
                                     PhiloxKey key, uint32_t generation, uint32_t genome_offset) {
  const int64_t groups = gene_groups(genes_per_genome);
  const int64_t work = pixel_units(batch, p) * groups;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < work;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    pixel_unit_group(genes, batch, genes_per_genome, t / groups, t % groups, p, key, generation, genome_offset);
  }
}

}  // namespace

std::string mutate_cppn_cuda(const CppnBatchView& g, const CppnMutationParams& p, uint64_t seed, uint32_t generation,
                             uint32_t genome_offset, GenomeError* errors, int32_t* blocked, int32_t* workspace,
                             int64_t workspace_rows, void* stream_ptr) {
  std::string bad = check_cppn_batch(g);
  if (bad.empty()) bad = check_cppn_mutation_params(p);
  if (bad.empty()) bad = check_genome_range(g.batch, genome_offset);
  if (!bad.empty()) return bad;
  if (g.batch == 0) return "";
  if (workspace_rows < 1) return "workspace must hold at least one genome";
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const int64_t row_size = mutation_workspace_ints(g.max_nodes, g.max_edges);
  for (int64_t start = 0; start < g.batch; start += workspace_rows) {
    const int32_t count = static_cast<int32_t>(std::min<int64_t>(workspace_rows, g.batch - start));
    const CppnBatchView part = g.slice(start, count);
    const int blocks = (count + kGenomeThreads - 1) / kGenomeThreads;
    mutate_cppn_kernel<<<blocks, kGenomeThreads, 0, stream>>>(
        part, p, seed, generation, genome_offset + static_cast<uint32_t>(start), workspace, row_size, errors + start,
        blocked == nullptr ? nullptr : blocked + start);
    FOOLING_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "mutate_cppn_kernel launch");
  }
  return "";
}

std::string select_cppn_cuda(const CppnBatchView& parents, const int64_t* index, const CppnBatchView& children,
                             int64_t* first_bad, void* stream_ptr) {
  const std::string bad = check_select_call(parents, children);
  if (!bad.empty()) return bad;
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  FOOLING_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(first_bad, 0xff, sizeof(int64_t), stream), "cudaMemsetAsync");
  if (children.batch == 0) return "";
  const int blocks = static_cast<int>(std::min<int64_t>(children.batch, kMaxBlocks));
  select_cppn_kernel<<<blocks, 128, 0, stream>>>(parents, index, children,
                                                 reinterpret_cast<unsigned long long*>(first_bad));
  FOOLING_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "select_cppn_kernel launch");
  return "";
}

std::string select_rows_cuda(const float* parents, int64_t parent_rows, int64_t row_size, const int64_t* index,
                             int64_t count, float* children, int64_t* first_bad, void* stream_ptr) {
  if (parent_rows < 0 || count < 0 || row_size < 1) return "select_rows: bad shape";
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  FOOLING_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(first_bad, 0xff, sizeof(int64_t), stream), "cudaMemsetAsync");
  const int blocks_x = static_cast<int>(std::min<int64_t>((row_size + kThreads - 1) / kThreads, 1024));
  for (int64_t start = 0; start < count; start += kMaxGridY) {
    const dim3 grid(blocks_x, static_cast<unsigned>(std::min<int64_t>(kMaxGridY, count - start)));
    select_rows_kernel<<<grid, kThreads, 0, stream>>>(parents, parent_rows, row_size, index, start, children,
                                                      reinterpret_cast<unsigned long long*>(first_bad));
    FOOLING_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "select_rows_kernel launch");
  }
  return "";
}

std::string init_pixels_cuda(float* genes, int64_t batch, int64_t genes_per_genome, uint64_t seed,
                             uint32_t genome_offset, void* stream_ptr) {
  const std::string bad = check_pixel_batch(batch, genes_per_genome, genome_offset);
  if (!bad.empty()) return bad;
  if (batch == 0) return "";
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  init_pixels_kernel<<<grid_for(batch * gene_groups(genes_per_genome)), kThreads, 0, stream>>>(
      genes, batch, genes_per_genome, philox_key(seed), genome_offset);
  FOOLING_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "init_pixels_kernel launch");
  return "";
}

std::string mutate_pixels_cuda(float* genes, int64_t batch, int64_t genes_per_genome, const PixelMutationParams& p,
                               uint64_t seed, uint32_t generation, uint32_t genome_offset, void* stream_ptr) {
  std::string bad = check_pixel_batch(batch, genes_per_genome, genome_offset);
  if (bad.empty()) bad = check_pixel_mutation_params(p);
  if (!bad.empty()) return bad;
  if (batch == 0) return "";
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const int64_t work = pixel_units(batch, p) * gene_groups(genes_per_genome);
  mutate_pixels_kernel<<<grid_for(work), kThreads, 0, stream>>>(genes, batch, genes_per_genome, p, philox_key(seed),
                                                                generation, genome_offset);
  FOOLING_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "mutate_pixels_kernel launch");
  return "";
}

}  // namespace fooling
