// The CPPN genome batch: a population of B networks in one padded struct-of-arrays layout.
//
// Node indices: 0..3 are the inputs (x, y, d, bias), the next num_outputs are the outputs, then the hidden
// nodes. Per genome b, nodes [0, num_nodes[b]) and edges [0, num_edges[b]) are live; the rest of each row
// is padding. Arrays are row-major [batch, capacity]. The view does not own its memory: it points at host
// memory for the CPU backend or device memory for the CUDA backend.
#pragma once

#include <cstdint>

#include "fooling/common.h"

namespace fooling {

struct CppnBatchView {
  int32_t batch = 0;
  int32_t max_nodes = 0;
  int32_t max_edges = 0;
  int32_t num_outputs = 1;
  int32_t* num_nodes = nullptr;        // [batch]
  int32_t* num_edges = nullptr;        // [batch]
  int32_t* node_activation = nullptr;  // [batch, max_nodes]; entries of input nodes are ignored
  int32_t* edge_src = nullptr;         // [batch, max_edges]
  int32_t* edge_dst = nullptr;         // [batch, max_edges]
  float* edge_weight = nullptr;        // [batch, max_edges]

  FOOLING_HD int32_t first_hidden() const { return kNumInputs + num_outputs; }

  // The view of genomes [start, start + count), for backends that process a batch in chunks.
  FOOLING_HD CppnBatchView slice(int64_t start, int32_t count) const {
    CppnBatchView part = *this;
    part.batch = count;
    part.num_nodes += start;
    part.num_edges += start;
    part.node_activation += start * max_nodes;
    part.edge_src += start * max_edges;
    part.edge_dst += start * max_edges;
    part.edge_weight += start * max_edges;
    return part;
  }
};

// Why a genome is invalid. Each record names the genome, the field, the entry and the offending value;
// fooling_ext.genome turns it into a ValueError message.
enum GenomeErrorCode : int32_t {
  kGenomeOk = 0,
  kNodeCountOutOfRange = 1,  // index: -1, value: num_nodes[b]
  kEdgeCountOutOfRange = 2,  // index: -1, value: num_edges[b]
  kUnknownActivation = 3,    // index: node, value: node_activation
  kEdgeSrcOutOfRange = 4,    // index: edge, value: edge_src
  kEdgeDstOutOfRange = 5,    // index: edge, value: edge_dst
  kEdgeIntoInput = 6,        // index: edge, value: edge_dst
  kNonFiniteWeight = 7,      // index: edge, value: 0
  kCycle = 8,                // index: a node on or behind the cycle, value: number of unordered nodes
};

struct GenomeError {
  int32_t code;
  int32_t index;
  int32_t value;
};

}  // namespace fooling
