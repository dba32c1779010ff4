// Bindings of batched mutation and parent selection. Pointers arrive as integers from fooling_ext.mutation
// and fooling_ext.pixels, which check every tensor first; parameters and shapes are checked again here
// (ValueError), CUDA failures are RuntimeError. The GIL is released while the core works.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>

#include "bindings.h"
#include "fooling/mutation.h"
#include "fooling/philox.h"

namespace py = pybind11;
using namespace fooling;

namespace fooling_bindings {

namespace {

void raise_if(const std::string& bad) {
  if (!bad.empty()) throw py::value_error(bad);
}

void raise_cuda_if(const std::string& err) {
  if (!err.empty()) throw std::runtime_error(err);
}

// Counter words are 32 bits wide.
uint32_t counter_word(const char* name, int64_t v) {
  if (v < 0 || v > INT64_C(0xffffffff))
    throw py::value_error(std::string(name) + " must be in [0, 2^32), got " + std::to_string(v));
  return static_cast<uint32_t>(v);
}

void check_cppn_call(const CppnBatchView& g, const CppnMutationParams& p, int64_t genome_offset) {
  raise_if(check_cppn_batch(g));
  raise_if(check_cppn_mutation_params(p));
  raise_if(check_genome_range(g.batch, genome_offset));
}

void check_pixel_call(int64_t batch, int64_t genes_per_genome, int64_t genome_offset) {
  raise_if(check_pixel_batch(batch, genes_per_genome, genome_offset));
}

void check_rows_call(int64_t parent_rows, int64_t row_size, int64_t count) {
  if (parent_rows < 0 || count < 0) throw py::value_error("row counts must be >= 0");
  if (row_size < 1) throw py::value_error("rows must hold at least one element, got " + std::to_string(row_size));
}

}  // namespace

void bind_mutation(py::module_& m) {
  py::class_<CppnMutationParams>(m, "CppnMutationParams", "CPPN mutation parameters (see fooling/mutation.h).")
      .def(py::init<>())
      .def_readwrite("p_weight", &CppnMutationParams::p_weight)
      .def_readwrite("eta", &CppnMutationParams::eta)
      .def_readwrite("weight_min", &CppnMutationParams::weight_min)
      .def_readwrite("weight_max", &CppnMutationParams::weight_max)
      .def_readwrite("p_activation", &CppnMutationParams::p_activation)
      .def_readwrite("activations", &CppnMutationParams::activations)
      .def_readwrite("p_add_edge", &CppnMutationParams::p_add_edge)
      .def_readwrite("p_delete_edge", &CppnMutationParams::p_delete_edge)
      .def_readwrite("p_add_node", &CppnMutationParams::p_add_node)
      .def_readwrite("p_delete_node", &CppnMutationParams::p_delete_node)
      .def_readwrite("add_edge", &CppnMutationParams::add_edge)
      .def_readwrite("add_edge_attempts", &CppnMutationParams::add_edge_attempts);

  py::class_<PixelMutationParams>(m, "PixelMutationParams", "Pixel mutation parameters (see fooling/mutation.h).")
      .def(py::init<>())
      .def_readwrite("rate", &PixelMutationParams::rate)
      .def_readwrite("eta", &PixelMutationParams::eta)
      .def_readwrite("crossover", &PixelMutationParams::crossover)
      .def_readwrite("crossover_rate", &PixelMutationParams::crossover_rate)
      .def_readwrite("eta_c", &PixelMutationParams::eta_c);

  m.attr("ALL_ACTIVATIONS_MASK") = kAllActivations;

  m.def("check_cppn_mutation_params", &check_cppn_mutation_params, py::arg("params"),
        "'' when the CPPN mutation parameters are valid, else why not (naming the field).");
  m.def("check_pixel_mutation_params", &check_pixel_mutation_params, py::arg("params"),
        "'' when the pixel mutation parameters are valid, else why not (naming the field).");
  m.def("mutation_workspace_ints", &mutation_workspace_ints, py::arg("max_nodes"), py::arg("max_edges"),
        "int32 entries of workspace one genome needs for CPPN mutation on the CUDA backend.");

  m.def(
      "philox4x32_10",
      [](const std::array<uint32_t, 4>& counter, const std::array<uint32_t, 2>& key) {
        const PhiloxBlock r = philox4x32_10(counter[0], counter[1], counter[2], counter[3], PhiloxKey{key[0], key[1]});
        return std::array<uint32_t, 4>{r.x[0], r.x[1], r.x[2], r.x[3]};
      },
      py::arg("counter"), py::arg("key"), "One Philox4x32-10 block (for tests against the NumPy reference).");

  m.def(
      "mutate_cppn_cpu",
      [](const CppnBatchView& g, const CppnMutationParams& p, uint64_t seed, int64_t generation, int64_t genome_offset,
         uintptr_t errors, uintptr_t blocked) {
        check_cppn_call(g, p, genome_offset);
        const uint32_t gen = counter_word("generation", generation);
        py::gil_scoped_release release;
        return mutate_cppn_cpu(g, p, seed, gen, static_cast<uint32_t>(genome_offset),
                               reinterpret_cast<GenomeError*>(errors), reinterpret_cast<int32_t*>(blocked));
      },
      py::arg("genomes"), py::arg("params"), py::arg("seed"), py::arg("generation"), py::arg("genome_offset"),
      py::arg("errors"), py::arg("blocked"),
      "Mutate host genomes in place; errors: int32 [B, 3]; blocked: int32 [B], the operators capacity blocked "
      "(1: add connection, 2: add node; 0 for none). Returns the number of invalid (untouched) genomes.");

  m.def(
      "mutate_cppn_cuda",
      [](const CppnBatchView& g, const CppnMutationParams& p, uint64_t seed, int64_t generation, int64_t genome_offset,
         uintptr_t errors, uintptr_t blocked, uintptr_t workspace, int64_t workspace_rows, uintptr_t stream) {
        check_cppn_call(g, p, genome_offset);
        const uint32_t gen = counter_word("generation", generation);
        std::string err;
        {
          py::gil_scoped_release release;
          err =
              mutate_cppn_cuda(g, p, seed, gen, static_cast<uint32_t>(genome_offset),
                               reinterpret_cast<GenomeError*>(errors), reinterpret_cast<int32_t*>(blocked),
                               reinterpret_cast<int32_t*>(workspace), workspace_rows, reinterpret_cast<void*>(stream));
        }
        raise_cuda_if(err);
      },
      py::arg("genomes"), py::arg("params"), py::arg("seed"), py::arg("generation"), py::arg("genome_offset"),
      py::arg("errors"), py::arg("blocked"), py::arg("workspace"), py::arg("workspace_rows"), py::arg("stream"),
      "Mutate device genomes in place, asynchronously on `stream`; errors: device int32 [B, 3]; blocked: device "
      "int32 [B] (as mutate_cppn_cpu).");

  m.def(
      "select_cppn_cpu",
      [](const CppnBatchView& parents, uintptr_t index, const CppnBatchView& children) {
        raise_if(check_select_call(parents, children));
        py::gil_scoped_release release;
        return select_cppn_cpu(parents, reinterpret_cast<const int64_t*>(index), children);
      },
      py::arg("parents"), py::arg("index"), py::arg("children"),
      "children[i] = parents[index[i]] (index: int64 [children.batch]). Returns the first out-of-range "
      "position, or -1.");

  m.def(
      "select_cppn_cuda",
      [](const CppnBatchView& parents, uintptr_t index, const CppnBatchView& children, uintptr_t first_bad,
         uintptr_t stream) {
        raise_if(check_select_call(parents, children));
        std::string err;
        {
          py::gil_scoped_release release;
          err = select_cppn_cuda(parents, reinterpret_cast<const int64_t*>(index), children,
                                 reinterpret_cast<int64_t*>(first_bad), reinterpret_cast<void*>(stream));
        }
        raise_cuda_if(err);
      },
      py::arg("parents"), py::arg("index"), py::arg("children"), py::arg("first_bad"), py::arg("stream"),
      "Device selection on `stream`; writes the first out-of-range position (or -1) to the int64 *first_bad.");

  m.def(
      "select_rows_cpu",
      [](uintptr_t parents, int64_t parent_rows, int64_t row_size, uintptr_t index, int64_t count, uintptr_t children) {
        check_rows_call(parent_rows, row_size, count);
        py::gil_scoped_release release;
        return select_rows_cpu(reinterpret_cast<const float*>(parents), parent_rows, row_size,
                               reinterpret_cast<const int64_t*>(index), count, reinterpret_cast<float*>(children));
      },
      py::arg("parents"), py::arg("parent_rows"), py::arg("row_size"), py::arg("index"), py::arg("count"),
      py::arg("children"),
      "children[i, :] = parents[index[i], :] for float32 rows. Returns the first out-of-range position, or -1.");

  m.def(
      "select_rows_cuda",
      [](uintptr_t parents, int64_t parent_rows, int64_t row_size, uintptr_t index, int64_t count, uintptr_t children,
         uintptr_t first_bad, uintptr_t stream) {
        check_rows_call(parent_rows, row_size, count);
        std::string err;
        {
          py::gil_scoped_release release;
          err = select_rows_cuda(reinterpret_cast<const float*>(parents), parent_rows, row_size,
                                 reinterpret_cast<const int64_t*>(index), count, reinterpret_cast<float*>(children),
                                 reinterpret_cast<int64_t*>(first_bad), reinterpret_cast<void*>(stream));
        }
        raise_cuda_if(err);
      },
      py::arg("parents"), py::arg("parent_rows"), py::arg("row_size"), py::arg("index"), py::arg("count"),
      py::arg("children"), py::arg("first_bad"), py::arg("stream"),
      "Device row selection on `stream`; writes the first out-of-range position (or -1) to *first_bad.");

  m.def(
      "init_pixels_cpu",
      [](uintptr_t genes, int64_t batch, int64_t genes_per_genome, uint64_t seed, int64_t genome_offset) {
        check_pixel_call(batch, genes_per_genome, genome_offset);
        py::gil_scoped_release release;
        init_pixels_cpu(reinterpret_cast<float*>(genes), batch, genes_per_genome, seed,
                        static_cast<uint32_t>(genome_offset));
      },
      py::arg("genes"), py::arg("batch"), py::arg("genes_per_genome"), py::arg("seed"), py::arg("genome_offset"),
      "Fill float32 [batch, genes_per_genome] with uniform [0, 1) genes drawn from the seed.");

  m.def(
      "init_pixels_cuda",
      [](uintptr_t genes, int64_t batch, int64_t genes_per_genome, uint64_t seed, int64_t genome_offset,
         uintptr_t stream) {
        check_pixel_call(batch, genes_per_genome, genome_offset);
        std::string err;
        {
          py::gil_scoped_release release;
          err = init_pixels_cuda(reinterpret_cast<float*>(genes), batch, genes_per_genome, seed,
                                 static_cast<uint32_t>(genome_offset), reinterpret_cast<void*>(stream));
        }
        raise_cuda_if(err);
      },
      py::arg("genes"), py::arg("batch"), py::arg("genes_per_genome"), py::arg("seed"), py::arg("genome_offset"),
      py::arg("stream"), "init_pixels_cpu on the device, asynchronously on `stream`.");

  m.def(
      "mutate_pixels_cpu",
      [](uintptr_t genes, int64_t batch, int64_t genes_per_genome, const PixelMutationParams& p, uint64_t seed,
         int64_t generation, int64_t genome_offset) {
        check_pixel_call(batch, genes_per_genome, genome_offset);
        raise_if(check_pixel_mutation_params(p));
        const uint32_t gen = counter_word("generation", generation);
        py::gil_scoped_release release;
        mutate_pixels_cpu(reinterpret_cast<float*>(genes), batch, genes_per_genome, p, seed, gen,
                          static_cast<uint32_t>(genome_offset));
      },
      py::arg("genes"), py::arg("batch"), py::arg("genes_per_genome"), py::arg("params"), py::arg("seed"),
      py::arg("generation"), py::arg("genome_offset"),
      "Mutate float32 [batch, genes_per_genome] in place (SBX of pairs first when params.crossover).");

  m.def(
      "mutate_pixels_cuda",
      [](uintptr_t genes, int64_t batch, int64_t genes_per_genome, const PixelMutationParams& p, uint64_t seed,
         int64_t generation, int64_t genome_offset, uintptr_t stream) {
        check_pixel_call(batch, genes_per_genome, genome_offset);
        raise_if(check_pixel_mutation_params(p));
        const uint32_t gen = counter_word("generation", generation);
        std::string err;
        {
          py::gil_scoped_release release;
          err = mutate_pixels_cuda(reinterpret_cast<float*>(genes), batch, genes_per_genome, p, seed, gen,
                                   static_cast<uint32_t>(genome_offset), reinterpret_cast<void*>(stream));
        }
        raise_cuda_if(err);
      },
      py::arg("genes"), py::arg("batch"), py::arg("genes_per_genome"), py::arg("params"), py::arg("seed"),
      py::arg("generation"), py::arg("genome_offset"), py::arg("stream"),
      "mutate_pixels_cpu on the device, asynchronously on `stream`.");
}

}  // namespace fooling_bindings
