// fooling_ext._core: the compiled core. Private: the public API is the fooling_ext package, which checks
// every tensor (dtype, shape, contiguity, device) before handing its pointer here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>

#include "bindings.h"
#include "fooling/activations.h"
#include "fooling/cuda_info.h"
#include "fooling/genome.h"
#include "fooling/parallel.h"

namespace py = pybind11;
using namespace fooling;

namespace {

CppnBatchView make_view(int64_t batch, int32_t max_nodes, int32_t max_edges, int32_t num_outputs, uintptr_t num_nodes,
                        uintptr_t num_edges, uintptr_t node_activation, uintptr_t edge_src, uintptr_t edge_dst,
                        uintptr_t edge_weight) {
  if (batch < 0 || batch > INT32_MAX) throw py::value_error("batch must be in [0, 2^31)");
  CppnBatchView v;
  v.batch = static_cast<int32_t>(batch);
  v.max_nodes = max_nodes;
  v.max_edges = max_edges;
  v.num_outputs = num_outputs;
  v.num_nodes = reinterpret_cast<int32_t*>(num_nodes);
  v.num_edges = reinterpret_cast<int32_t*>(num_edges);
  v.node_activation = reinterpret_cast<int32_t*>(node_activation);
  v.edge_src = reinterpret_cast<int32_t*>(edge_src);
  v.edge_dst = reinterpret_cast<int32_t*>(edge_dst);
  v.edge_weight = reinterpret_cast<float*>(edge_weight);
  return v;
}

py::array_t<float> activation_values(int32_t activation, const py::array_t<float, py::array::c_style>& x) {
  if (activation < 0 || activation >= kNumActivations)
    throw py::value_error("unknown activation id " + std::to_string(activation));
  py::array_t<float> out(x.request().shape);
  const float* in = x.data();
  float* o = out.mutable_data();
  for (py::ssize_t i = 0; i < x.size(); ++i) o[i] = apply_activation(activation, in[i]);
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fooling_ext compiled core: batched CPPN rendering and mutation on CPU and CUDA";
  m.attr("__version__") = FOOLING_VERSION;
  static_assert(sizeof(GenomeError) == 3 * sizeof(int32_t), "GenomeError must be three int32");

  py::list names;
  for (int i = 0; i < kNumActivations; ++i) names.append(kActivationNames[i]);
  m.attr("ACTIVATION_NAMES") = py::tuple(names);
  m.attr("NUM_INPUTS") = kNumInputs;
  m.attr("MAX_NODES_CAPACITY") = kMaxNodesCapacity;
  m.attr("MAX_EDGES_CAPACITY") = kMaxEdgesCapacity;
  m.attr("MAX_IMAGE_SIDE") = kMaxImageSide;

  py::class_<CppnBatchView>(m, "CppnBatchView")
      .def(py::init(&make_view), py::arg("batch"), py::arg("max_nodes"), py::arg("max_edges"), py::arg("num_outputs"),
           py::arg("num_nodes"), py::arg("num_edges"), py::arg("node_activation"), py::arg("edge_src"),
           py::arg("edge_dst"), py::arg("edge_weight"))
      .def_readonly("batch", &CppnBatchView::batch)
      .def_readonly("max_nodes", &CppnBatchView::max_nodes)
      .def_readonly("max_edges", &CppnBatchView::max_edges)
      .def_readonly("num_outputs", &CppnBatchView::num_outputs);

  m.def("activation_values", &activation_values, py::arg("activation"), py::arg("x"),
        "Evaluate one activation elementwise on the CPU (for tests against the NumPy reference).");
  m.def("num_threads", &num_threads, "Worker threads of the CPU backend.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Set the CPU backend's worker threads (n <= 0: back to the default).");

  m.def("cuda_info", []() {
    const CudaInfo info = cuda_info();
    py::dict d;
    d["compiled"] = info.compiled;
    d["runtime_version"] = info.runtime_version;
    d["driver_version"] = info.driver_version;
    d["architectures"] = info.architectures;
    py::list devices;
    for (const auto& dev : info.devices) {
      py::dict dd;
      dd["name"] = dev.name;
      dd["compute_capability"] = py::make_tuple(dev.major, dev.minor);
      dd["total_memory"] = dev.total_memory;
      dd["max_shared_per_block_optin"] = dev.max_shared_per_block_optin;
      devices.append(dd);
    }
    d["devices"] = devices;
    d["error"] = info.error;
    return d;
  });

  fooling_bindings::bind_render(m);
  fooling_bindings::bind_mutation(m);
}
