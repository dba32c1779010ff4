#include "fooling/parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace fooling {
namespace {

// The CPUs this process may run on (its affinity mask, else what the hardware reports).
int available_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

// FOOLING_NUM_THREADS when set: a whole number >= 1, anything else is an error that names the variable.
// More threads than CPUs only add contention, so the count is capped at the CPUs available.
int default_threads() {
  const int cpus = available_cpus();
  const char* env = std::getenv("FOOLING_NUM_THREADS");
  if (env == nullptr) return cpus;
  const std::string text(env);
  const bool digits =
      !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  const size_t first = text.find_first_not_of('0');
  const bool huge = digits && first != std::string::npos && text.size() - first > 9;
  const long n = !digits ? 0 : huge ? static_cast<long>(cpus) : std::stol(text);
  if (n < 1) {
    throw std::invalid_argument("FOOLING_NUM_THREADS must be a whole number >= 1 (the CPU threads of the core), got '" +
                                text + "'");
  }
  return static_cast<int>(std::min<long>(n, cpus));
}

std::atomic<int> g_threads{0};

}  // namespace

int num_threads() {
  int n = g_threads.load();
  if (n <= 0) {
    n = default_threads();
    g_threads.store(n);
  }
  return n;
}

void set_num_threads(int n) { g_threads.store(n > 0 ? std::min(n, kMaxThreads) : default_threads()); }

void parallel_for(int64_t n_tasks, const std::function<void(int64_t, int)>& fn, int max_workers) {
  if (n_tasks <= 0) return;
  if (max_workers <= 0) max_workers = num_threads();
  const int workers = static_cast<int>(std::min<int64_t>(max_workers, n_tasks));
  if (workers <= 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&](int thread_index) {
    try {
      for (int64_t t = next.fetch_add(1); t < n_tasks; t = next.fetch_add(1)) fn(t, thread_index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next.store(n_tasks);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  try {
    for (int i = 1; i < workers; ++i) pool.emplace_back(work, i);
  } catch (const std::system_error&) {
    // The system refused another thread: the threads started so far share the tasks (handed out
    // dynamically), so the result is the same with fewer workers.
  }
  work(0);
  for (auto& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace fooling
