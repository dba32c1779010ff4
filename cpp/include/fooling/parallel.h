// A minimal parallel-for over the CPU cores, used by the CPU backend.
#pragma once

#include <cstdint>
#include <functional>

namespace fooling {

// The most worker threads set_num_threads accepts; larger requests are reduced to it.
constexpr int kMaxThreads = 256;

// Number of worker threads the CPU backend uses: the CPUs this process may run on, or the
// FOOLING_NUM_THREADS environment variable (a whole number >= 1, capped at those CPUs; anything else
// throws std::invalid_argument naming the variable, a ValueError in Python).
int num_threads();
// n >= 1: use n threads (at most kMaxThreads); n <= 0: back to the default above.
void set_num_threads(int n);

// Calls fn(task, worker) for task in [0, n_tasks), tasks handed out dynamically to at most `workers`
// threads (num_threads() when 0); worker is in [0, workers). The first exception thrown is rethrown.
void parallel_for(int64_t n_tasks, const std::function<void(int64_t, int)>& fn, int workers = 0);

}  // namespace fooling
