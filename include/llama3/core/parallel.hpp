#pragma once
// parallel_for over independent items with a fixed number of threads (the caller's thread is one of them).
// Items are handed out one at a time from a shared counter, so uneven items still keep every thread busy.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "llama3/core/error.hpp"

namespace llama3 {

// More threads than this is a mistake (a typo, or a count meant for something else), not a machine.
inline constexpr unsigned max_threads = 1024;

// 0 means one thread per hardware thread; more than max_threads is an Error.
inline unsigned resolve_threads(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (threads > max_threads) {
    throw Error(detail::cat(threads, " threads asked for: at most ", max_threads, " (this machine has ",
                            std::thread::hardware_concurrency(), " hardware threads; 0 uses them all)"));
  }
  return threads;
}

namespace detail {
[[noreturn]] inline void thread_start_failed(unsigned which, unsigned threads, const std::system_error& e) {
  throw Error(cat("cannot start thread ", which + 1, " of ", threads, ": ", e.what(), " (a limit on processes, "
                  "threads or memory: ulimit -u, the pid limit, ulimit -v); ask for fewer threads"));
}
}  // namespace detail

// Calls f(i) for every i in [0, n). If calls throw, the exception of the lowest i is rethrown after all threads
// have stopped taking new items.
template <class F>
void parallel_for(std::size_t n, unsigned threads, F&& f) {
  threads = static_cast<unsigned>(std::min<std::size_t>(resolve_threads(threads), n));
  if (threads <= 1) {
    for (std::size_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  std::exception_ptr error;
  std::size_t error_index = n;
  const auto work = [&] {
    for (;;) {
      const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n || failed.load(std::memory_order_relaxed)) return;
      try {
        f(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m);
        if (i < error_index) {
          error_index = i;
          error = std::current_exception();
        }
        failed.store(true, std::memory_order_relaxed);
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error& e) {  // the threads already started stop after their current item
      failed.store(true);
      for (auto& p : pool) p.join();
      detail::thread_start_failed(t, threads, e);
    }
  }
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace llama3
