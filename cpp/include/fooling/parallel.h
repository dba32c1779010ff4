// A minimal parallel-for over the CPU cores, used by the CPU backend.
#pragma once

#include <cstdint>
#include <functional>

namespace fooling {

// Number of worker threads the CPU backend uses (default: the CPUs this process may run on, or the
// FOOLING_NUM_THREADS environment variable).
int num_threads();
void set_num_threads(int n);

// Calls fn(task, worker) for task in [0, n_tasks), tasks handed out dynamically to at most `workers`
// threads (num_threads() when 0); worker is in [0, workers). The first exception thrown is rethrown.
void parallel_for(int64_t n_tasks, const std::function<void(int64_t, int)>& fn, int workers = 0);

}  // namespace fooling
