// A fixed pool of worker threads for the CPU backend. The calling thread takes part
// in every parallel_for, so a pool of size 1 runs everything inline.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sdllm {

class ThreadPool {
 public:
  // `cpus` (optional, at least `threads` of them): worker i runs on cpus[i] only, and a
  // calling thread on cpus[0] while it is inside a parallel_for or a CallerScope.
  explicit ThreadPool(int threads, std::vector<int> cpus = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;
  // Splits [0, n) into contiguous chunks of at least `grain` items (each thread an equal
  // share, cut into up to 6 chunks of halving size) and calls fn(begin, end, worker) for
  // each, `worker` being the index of the thread that runs it (0 = the caller); returns when
  // all chunks are done. Each thread runs its own run of consecutive chunks first, then
  // takes the smallest chunks left over by slower threads.
  // Calls from several threads are serialised. `max_threads` > 0 caps the threads that take
  // part (the others are not waited for): a job too small to pay for many threads' hand-off.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn,
                    int max_threads = 0);
  // The CPUs the threads are placed on (empty: not placed).
  const std::vector<int>& cpus() const;

  // Keeps the calling thread on the pool's CPU for callers (cpus()[0]) for its lifetime,
  // then restores the thread's own affinity: one pair of system calls for a whole forward
  // instead of one per parallel_for. Nests; does nothing for an unplaced pool.
  class CallerScope {
   public:
    explicit CallerScope(const ThreadPool& pool);
    ~CallerScope();
    CallerScope(const CallerScope&) = delete;
    CallerScope& operator=(const CallerScope&) = delete;

   private:
    bool placed_ = false;
  };

 private:
  struct Impl;
  Impl* impl_;
};

// Process-wide pool, created on first use with `threads`, unless SDLLM_THREADS is set;
// 0 = default_thread_count() (cpu_budget.h: the usable physical cores within the quota).
// Its threads are placed on default_placement() (one physical core each; SDLLM_PIN=0: not).
ThreadPool& default_pool(int threads = 0);
// How the pool's size was chosen ("default: 2 usable logical CPUs, 2 physical cores", ...).
const std::string& default_pool_sizing();

}  // namespace sdllm
