#pragma once
// A fixed pool of worker threads for the forward pass. run(n, f) calls f(i) for i in [0, n) on the pool and the
// calling thread, and returns when all are done. Workers spin briefly before sleeping, because a decode step runs
// a hundred small jobs back to back and waking a sleeping thread costs more than some of them take.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "llama3/core/parallel.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LLAMA3_CPU_RELAX() _mm_pause()
#else
#define LLAMA3_CPU_RELAX() ((void)0)
#endif

namespace llama3 {

class ThreadPool {
public:
  // `threads` in all, the caller included; 0: one per hardware thread. A thread that cannot be started (a limit
  // on processes or memory) is an Error, after the ones already started have stopped.
  explicit ThreadPool(unsigned threads = 0) {
    threads = resolve_threads(threads);
    workers_.reserve(threads - 1);
    for (unsigned i = 1; i < threads; ++i) {
      try {
        workers_.emplace_back([this] { work(); });
      } catch (const std::system_error& e) {
        stop();
        detail::thread_start_failed(i, threads, e);
      }
    }
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() { stop(); }

  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()) + 1; }

  template <class F>
  void run(std::size_t n, F&& f) {
    if (n == 0) return;
    if (workers_.empty() || n == 1) {
      for (std::size_t i = 0; i < n; ++i) f(i);
      return;
    }
    std::lock_guard<std::mutex> one_job_at_a_time(run_mutex_);
    job_ = [](void* ctx, std::size_t i) { (*static_cast<std::remove_reference_t<F>*>(ctx))(i); };
    ctx_ = &f;
    n_ = n;
    next_.store(0);
    error_ = nullptr;
    pending_.store(static_cast<unsigned>(workers_.size()));
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    take_tasks();
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) relax(spin);
    if (error_) std::rethrow_exception(error_);
  }

private:
  void stop() {
    stop_.store(true);
    generation_.fetch_add(1);
    generation_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  // A spin-wait step: a pause at first; after a few microseconds a yield, so that on a machine with more runnable
  // threads than cores (other processes, or more threads than cores) the thread we wait for gets the core instead
  // of waiting for our time slice to end. With nothing else to run, a yield returns at once.
  static void relax(int spin) {
    if (spin < 2048) {
      LLAMA3_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }

  void take_tasks() {
    for (;;) {
      const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= n_) return;
      try {
        job_(ctx_, i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void work() {
    std::uint64_t seen = 0;  // the generation at construction, whenever this thread gets to run
    for (;;) {
      // Spin a little for the next job, then sleep.
      for (int spin = 0; spin < 20000 && generation_.load(std::memory_order_acquire) == seen; ++spin) relax(spin);
      generation_.wait(seen);
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load()) return;
      take_tasks();
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex run_mutex_, error_mutex_;
  void (*job_)(void*, std::size_t) = nullptr;
  void* ctx_ = nullptr;
  std::size_t n_ = 0;
  std::atomic<std::size_t> next_{0};
  std::atomic<unsigned> pending_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

}  // namespace llama3
