// Declarations shared by the pybind11 translation units of fooling_ext._core.
#pragma once

#include <pybind11/pybind11.h>

namespace fooling_bindings {
void bind_render(pybind11::module_& m);
void bind_mutation(pybind11::module_& m);
}  // namespace fooling_bindings
