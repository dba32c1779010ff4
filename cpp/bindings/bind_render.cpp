#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

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
      "hls8_to_rgb_cpu",
      [](uintptr_t hls, uintptr_t rgb, int64_t n) {
        if (n < 0) throw py::value_error("n must be >= 0, got " + std::to_string(n));
        const uint8_t* src = reinterpret_cast<const uint8_t*>(hls);
        uint8_t* dst = reinterpret_cast<uint8_t*>(rgb);
        py::gil_scoped_release release;
        for (int64_t i = 0; i < n; ++i) {
          int32_t r, g, b;
          hls8_to_rgb_bytes(src[3 * i], src[3 * i + 1], src[3 * i + 2], &r, &g, &b);
          dst[3 * i] = static_cast<uint8_t>(r);
          dst[3 * i + 1] = static_cast<uint8_t>(g);
          dst[3 * i + 2] = static_cast<uint8_t>(b);
        }
      },
      py::arg("hls"), py::arg("rgb"), py::arg("n"),
      "The colour mode hls8's per-pixel conversion: n (H, L, S) byte triples at `hls` -> (R, G, B) bytes at "
      "`rgb` (uint8 [n, 3] each, host memory), as OpenCV's 8-bit HLS -> RGB.");

  m.def(
      "render_cpu",
      [](const CppnBatchView& g, int32_t height, int32_t width, int32_t coords, int32_t color, bool quantize,
         uintptr_t out, uintptr_t errors) {
        RenderParams p{height, width, coords, color, quantize ? 1 : 0};
        const std::string bad = check_render_call(g, p);
        if (!bad.empty()) throw py::value_error(bad);
        py::gil_scoped_release release;
        return render_cpu(g, p, reinterpret_cast<float*>(out), reinterpret_cast<GenomeError*>(errors));
      },
      py::arg("genomes"), py::arg("height"), py::arg("width"), py::arg("coords"), py::arg("color"), py::arg("quantize"),
      py::arg("out"), py::arg("errors"),
      "Render on the CPU into out (float32 [B, C, H, W]); errors: int32 [B, 3]. Returns the invalid count.");

  m.def(
      "render_cuda",
      [](const CppnBatchView& g, int32_t height, int32_t width, int32_t coords, int32_t color, bool quantize,
         uintptr_t out, uintptr_t errors, uintptr_t workspace, int64_t workspace_rows, uintptr_t stream) {
        RenderParams p{height, width, coords, color, quantize ? 1 : 0};
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
      py::arg("genomes"), py::arg("height"), py::arg("width"), py::arg("coords"), py::arg("color"), py::arg("quantize"),
      py::arg("out"), py::arg("errors"), py::arg("workspace"), py::arg("workspace_rows"), py::arg("stream"),
      "Render on the current CUDA device, asynchronously on `stream`; all pointers are device pointers.");
}

}  // namespace fooling_bindings
