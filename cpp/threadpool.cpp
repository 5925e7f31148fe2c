// ThreadPool: persistent workers that spin briefly, then sleep on a condition variable,
// between jobs. A forward issues ~7 jobs per layer, often under 100 us apart: a worker
// woken from a futex arrives tens of microseconds late each time, so workers first poll
// the job counter for kSpinIters pauses (~400 us on the development machine's Zen 5,
// whose pause is ~20 ns), and the caller polls for the workers' completion about as long
// as its own part took (30-400 us); only then do they block. The caller runs chunk 0
// itself, so a pool of one thread has no synchronisation cost at all, and small jobs do
// not pay a wake-up for a thread they do not need.
// A parallel_for issued from inside a job (nested) runs inline: the pool's single
// job slot is busy, and waiting on it would deadlock.
// A placed pool (the default one when it takes every usable core: cpu_budget.h) keeps
// worker i on cpus[i] and its caller on cpus[0] while inside a job or a CallerScope, so the
// kernel cannot queue two of them on one CPU while another idles.
#include "threadpool.h"

#include "cpu_budget.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif
#include <vector>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define SDLLM_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define SDLLM_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define SDLLM_CPU_RELAX() std::this_thread::yield()
#endif

namespace sdllm {
namespace {
thread_local bool t_inside_job = false;
// Placement (cpu_budget.h, default_placement): how many CallerScopes are open on this
// thread, and the affinity the outermost one restores.
thread_local int t_caller_depth = 0;
#if defined(__linux__)
thread_local bool t_restore = false;
thread_local cpu_set_t t_saved_affinity;

void place_current_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);  // on failure the thread simply stays unplaced
}
#endif
constexpr int kSpinIters = 20000;  // pauses before blocking (a pause is ~3-40 ns by CPU)
constexpr int kChunksPerThread = 6;
// The caller's spin at a job's end: as long as its own part took, within these bounds.
constexpr int kMinSpinUs = 30, kMaxSpinUs = 400;
}

struct ThreadPool::Impl {
  int size = 1;
  std::vector<int> cpus;  // placement: worker i on cpus[i], callers on cpus[0]; empty: none
  std::vector<std::thread> workers;
  std::mutex submit_mu;  // serialises parallel_for callers

  // job and pending change under mu (so sleepers' predicates see them) but are
  // atomics so that spinning threads can poll them without the lock.
  std::mutex mu;
  std::condition_variable wake, done;
  // The job word: a generation bumped per job (workers wait for a change) in the high bits
  // and the job's number of sharers in the low kSharerBits, read together so that a worker
  // knows whether it has a share of the very generation it saw. Workers without one are
  // not waited for: on a many-core host a small job's caller no longer waits for every
  // worker to notice it (a sleeping one costs a futex wake-up).
  static constexpr int kSharerBits = 16;
  std::atomic<uint64_t> job{0};
  std::atomic<bool> stop{false};

  // The current job, valid while a generation is in flight (written before the bump).
  const std::function<void(int64_t, int64_t, int)>* fn = nullptr;
  std::vector<int64_t> bounds;  // chunk c covers items [bounds[c], bounds[c + 1])
  int sharers = 0;  // threads with a share of the chunks: 0 .. sharers-1
  std::atomic<int> pending{0};  // sharing workers still running the current job
  std::exception_ptr error;

  // Thread t's share: chunks [front, back) not yet claimed, in one word (front in the low
  // half) so that the owner (from the front) and a thief (from the back) each claim with
  // one compare-exchange. The owner runs its chunks in order, so without stealing a thread
  // covers one contiguous range, as with one chunk per thread; a thread that is done takes
  // chunks from the others' backs. On this machine's vCPUs a thread is often descheduled
  // or slowed for a while (the Node main thread, other guests): with one fixed chunk per
  // thread the whole job then waited for it.
  struct alignas(64) Share {
    std::atomic<uint64_t> span{0};
  };
  std::unique_ptr<Share[]> shares;

  static uint64_t pack(int64_t front, int64_t back) {
    return static_cast<uint64_t>(static_cast<uint32_t>(front)) | (static_cast<uint64_t>(static_cast<uint32_t>(back)) << 32);
  }

  bool claim(int owner, bool from_back, int64_t& chunk) {
    std::atomic<uint64_t>& span = shares[owner].span;
    uint64_t s = span.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t front = static_cast<uint32_t>(s), back = static_cast<uint32_t>(s >> 32);
      if (front >= back) return false;
      const uint64_t next = from_back ? pack(front, back - 1) : pack(front + 1, back);
      if (span.compare_exchange_weak(s, next, std::memory_order_relaxed, std::memory_order_relaxed)) {
        chunk = from_back ? back - 1 : front;
        return true;
      }
    }
  }

  void run_chunk(int64_t c, int worker) {
    const int64_t begin = bounds[c], end = bounds[c + 1];
    try {
      (*fn)(begin, end, worker);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      if (!error) error = std::current_exception();
    }
  }

  // Thread t's part of the job: its own share, then whatever is left of the others'.
  void run_shares(int t) {
    int64_t c;
    while (claim(t, false, c)) run_chunk(c, t);
    for (int v = 1; v < sharers; ++v)
      while (claim((t + v) % sharers, true, c)) run_chunk(c, t);
  }

  void worker_loop(int id) {
    t_inside_job = true;  // anything a worker runs is inside a job
    uint64_t seen = 0;
    for (;;) {
      uint64_t g = job.load(std::memory_order_acquire);
      for (int i = 0; g == seen && i < kSpinIters && !stop.load(std::memory_order_relaxed); ++i) {
        SDLLM_CPU_RELAX();
        g = job.load(std::memory_order_acquire);
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lk(mu);
        wake.wait(lk, [&] { return stop.load() || job.load() != seen; });
        g = job.load();
      }
      if (stop.load()) return;
      seen = g;
      // Not a sharer of this job: nothing to do and nobody waiting (the job may be long
      // over, and a later one already published; the next load sees it).
      if (id >= static_cast<int>(g & ((uint64_t{1} << kSharerBits) - 1))) continue;
      run_shares(id);
      if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu);  // pairs with the caller's predicate check
        done.notify_one();
      }
    }
  }
};

ThreadPool::ThreadPool(int threads, std::vector<int> cpus) : impl_(new Impl) {
  impl_->size = std::clamp(threads, 1, (1 << Impl::kSharerBits) - 1);
#if defined(__linux__)
  if (impl_->size > 1 && static_cast<int>(cpus.size()) >= impl_->size) {
    cpus.resize(static_cast<size_t>(impl_->size));
    impl_->cpus = std::move(cpus);
  }
#else
  (void)cpus;
#endif
  impl_->shares.reset(new Impl::Share[static_cast<size_t>(impl_->size)]);
  for (int i = 1; i < impl_->size; ++i)
    impl_->workers.emplace_back([this, i] {
#if defined(__linux__)
      if (!impl_->cpus.empty()) place_current_thread(impl_->cpus[static_cast<size_t>(i)]);
#endif
      impl_->worker_loop(i);
    });
}

const std::vector<int>& ThreadPool::cpus() const { return impl_->cpus; }

ThreadPool::CallerScope::CallerScope(const ThreadPool& pool) {
#if defined(__linux__)
  if (pool.cpus().empty() || t_inside_job) return;
  placed_ = true;
  if (t_caller_depth++ > 0) return;
  t_restore = sched_getaffinity(0, sizeof(t_saved_affinity), &t_saved_affinity) == 0;
  if (t_restore) place_current_thread(pool.cpus()[0]);
#else
  (void)pool;
#endif
}

ThreadPool::CallerScope::~CallerScope() {
#if defined(__linux__)
  if (!placed_ || --t_caller_depth > 0) return;
  if (t_restore) sched_setaffinity(0, sizeof(t_saved_affinity), &t_saved_affinity);
#endif
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop.store(true);
  }
  impl_->wake.notify_all();
  for (auto& t : impl_->workers) t.join();
  delete impl_;
}

int ThreadPool::size() const { return impl_->size; }

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn,
                              int max_threads) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t cap = max_threads > 0 ? std::min(max_threads, impl_->size) : impl_->size;
  const int64_t sharers = std::min<int64_t>(cap, n / grain);
  if (sharers <= 1 || t_inside_job) {
    fn(0, n, 0);
    return;
  }
  // On a placed pool the caller runs on its own core (free when a forward's scope holds it).
  const CallerScope placement(*this);
  std::lock_guard<std::mutex> submit(impl_->submit_mu);
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    s.fn = &fn;
    s.sharers = static_cast<int>(sharers);
    // Equal shares of the items, each cut into chunks of halving size (1/2, 1/4, ... of the
    // share, the last two equal, none under the grain): a thread that runs out of work
    // takes the smallest chunks left, so the job ends within about one small chunk of its
    // last thread instead of one n/(4 * threads) chunk (8% of a forward's time waited so).
    s.bounds.clear();
    s.bounds.push_back(0);
    for (int64_t t = 0; t < sharers; ++t) {
      const int64_t first = static_cast<int64_t>(s.bounds.size()) - 1, end = n * (t + 1) / sharers;
      int64_t at = s.bounds.back();
      for (int c = 1; c < kChunksPerThread && end - at >= 2 * grain; ++c) {
        at += (end - at + 1) / 2;
        s.bounds.push_back(at);
      }
      s.bounds.push_back(end);
      s.shares[t].span.store(Impl::pack(first, static_cast<int64_t>(s.bounds.size()) - 1), std::memory_order_relaxed);
    }
    s.pending.store(static_cast<int>(sharers) - 1, std::memory_order_relaxed);
    s.error = nullptr;
    const uint64_t next_generation = (s.job.load(std::memory_order_relaxed) >> Impl::kSharerBits) + 1;
    s.job.store((next_generation << Impl::kSharerBits) | static_cast<uint64_t>(sharers), std::memory_order_release);
  }
  s.wake.notify_all();  // no system call when no worker sleeps
  using Clock = std::chrono::steady_clock;
  const Clock::time_point started = Clock::now();
  t_inside_job = true;
  s.run_shares(0);
  t_inside_job = false;
  // Waiting for the other threads' last chunks. A worker still busy after about as long as
  // the caller's whole part took is most likely descheduled (on two vCPUs, by the Node
  // thread serving HTTP): spinning on would keep this vCPU busy, while blocking lets the
  // kernel run something else here (the Node thread, or in an unplaced pool the waiting
  // worker itself). Short waits (the usual imbalance) still spin: a blocked caller pays a
  // futex wake-up, slow in a VM.
  if (s.pending.load(std::memory_order_acquire) != 0) {
    const Clock::time_point own_done = Clock::now();
    const Clock::duration limit =
        std::min<Clock::duration>(std::max<Clock::duration>(own_done - started, std::chrono::microseconds(kMinSpinUs)),
                                  std::chrono::microseconds(kMaxSpinUs));
    for (int i = 1; s.pending.load(std::memory_order_acquire) != 0; ++i) {
      SDLLM_CPU_RELAX();
      if (i % 64 == 0 && Clock::now() - own_done > limit) break;
    }
  }
  std::unique_lock<std::mutex> lk(s.mu);
  s.done.wait(lk, [&] { return s.pending.load(std::memory_order_acquire) == 0; });
  s.fn = nullptr;
  if (s.error) {
    std::exception_ptr e = s.error;
    s.error = nullptr;
    std::rethrow_exception(e);
  }
}

namespace {
std::string g_default_pool_sizing;
}

ThreadPool& default_pool(int threads) {
  static std::unique_ptr<ThreadPool> pool = [threads] {
    int t = threads;
    std::string why = "the threads option";
    if (const char* env = std::getenv("SDLLM_THREADS")) {
      const int e = std::atoi(env);
      if (e > 0) t = e, why = "SDLLM_THREADS";
    }
    if (t <= 0) {
      const ThreadDefault& d = default_thread_count();
      t = d.threads;
      why = "default: " + d.reason;
    }
    t = std::max(1, t);
    std::vector<int> cpus = default_placement(t);
    if (!cpus.empty()) {
      why += "; each thread on its own core (CPUs";
      for (size_t i = 0; i < cpus.size(); ++i) why += (i ? ", " : " ") + std::to_string(cpus[i]);
      why += "; SDLLM_PIN=0 leaves them to the kernel)";
    }
    g_default_pool_sizing = why;
    return std::unique_ptr<ThreadPool>(new ThreadPool(t, std::move(cpus)));
  }();
  return *pool;
}

const std::string& default_pool_sizing() {
  default_pool();
  return g_default_pool_sizing;
}

}  // namespace sdllm
