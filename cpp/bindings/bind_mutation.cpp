#include "bindings.h"
namespace fooling_bindings {
void bind_mutation(pybind11::module_&) {}
}
