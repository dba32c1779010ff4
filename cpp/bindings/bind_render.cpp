#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings.h"
#include "fooling/render.h"

namespace py = pybind11;
using namespace fooling;

namespace fooling_bindings {

void bind_render(py::module_& m) {
  m.def("program_workspace_ints", &program_workspace_ints, py::arg("max_nodes"), py::arg("max_edges"),
        "int32 entries of workspace one genome needs on the CUDA backend.");

  m.def(
      "validate_cpu",
      [](const CppnBatchView& g, uintptr_t errors) {
        const std::string bad = check_render_call(g, RenderParams{});
        if (!bad.empty()) throw py::value_error(bad);
        py::gil_scoped_release release;
        return validate_cpu(g, reinterpret_cast<GenomeError*>(errors));
      },
      py::arg("genomes"), py::arg("errors"),
      "Validate host genomes; errors: int32 [B, 3] (code, index, value). Returns the invalid count.");

  m.def(
      "render_cpu",
      [](const CppnBatchView& g, int32_t height, int32_t width, int32_t coords, int32_t color, uintptr_t out,
         uintptr_t errors) {
        RenderParams p{height, width, coords, color};
        const std::string bad = check_render_call(g, p);
        if (!bad.empty()) throw py::value_error(bad);
        py::gil_scoped_release release;
        return render_cpu(g, p, reinterpret_cast<float*>(out), reinterpret_cast<GenomeError*>(errors));
      },
      py::arg("genomes"), py::arg("height"), py::arg("width"), py::arg("coords"), py::arg("color"), py::arg("out"),
      py::arg("errors"),
      "Render on the CPU into out (float32 [B, C, H, W]); errors: int32 [B, 3]. Returns the invalid count.");

  m.def(
      "render_cuda",
      [](const CppnBatchView& g, int32_t height, int32_t width, int32_t coords, int32_t color, uintptr_t out,
         uintptr_t errors, uintptr_t workspace, int64_t workspace_rows, uintptr_t stream) {
        RenderParams p{height, width, coords, color};
        const std::string bad = check_render_call(g, p);
        if (!bad.empty()) throw py::value_error(bad);
        std::string err;
        {
          py::gil_scoped_release release;
          err = render_cuda(g, p, reinterpret_cast<float*>(out), reinterpret_cast<GenomeError*>(errors),
                            reinterpret_cast<int32_t*>(workspace), workspace_rows, reinterpret_cast<void*>(stream));
        }
        if (!err.empty()) throw std::runtime_error(err);
      },
      py::arg("genomes"), py::arg("height"), py::arg("width"), py::arg("coords"), py::arg("color"), py::arg("out"),
      py::arg("errors"), py::arg("workspace"), py::arg("workspace_rows"), py::arg("stream"),
      "Render on the current CUDA device, asynchronously on `stream`; all pointers are device pointers.");
}

}  // namespace fooling_bindings
