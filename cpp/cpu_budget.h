// How many threads the CPU backend uses when the caller does not say: the physical cores
// this process may run on, within its cgroup's CPU quota.
//
// Why not std::thread::hardware_concurrency(): on Linux it counts every online logical
// CPU, so a process pinned to 4 CPUs (taskset, a cpuset) or a container given 2 CPUs of a
// 64-core host (cgroup cpu.max / cfs_quota) started 64 threads that took turns on 2-4
// CPUs (each parallel job as slow as its last, descheduled thread), and SMT siblings (two
// logical CPUs sharing one core's FMA units) added threads that the FMA-bound kernels
// cannot use. The parsers are separate functions so the tests can feed them sysfs text.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace sdllm {

struct ThreadDefault {
  int threads = 1;
  std::string reason;  // what bounded it, for runtimeInfo and `streaming-dllm inspect`
};

// The default, computed once per process (cheap: a few small files read on Linux).
const ThreadDefault& default_thread_count();

// Where the default pool's `threads` threads run when they take every physical core this
// process may use: one logical CPU per core, entry 0 for the thread that calls into the
// pool, entry i for worker i. Empty (threads left to the kernel) with one thread, with
// more or fewer threads than usable cores, off Linux, or with SDLLM_PIN=0.
//
// Why: with two threads on two vCPUs the kernel sometimes queues both compute threads on
// one vCPU and leaves the other idle for milliseconds (a woken thread placed beside a busy
// one; the idle vCPU pulls it only at a later balance): measured with `perf sched` on the
// development VM, ~9% of a two-thread forward's time (docs/PERFORMANCE.md).
std::vector<int> default_placement(int threads);

namespace cpu_budget {

// cgroup v2 `cpu.max` ("max 100000" or "QUOTA PERIOD"): CPUs allowed, or 0 for no limit
// (and for text that does not parse: an unknown format must not cap the threads).
double cgroup_v2_cpus(const std::string& cpu_max);
// cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` texts: CPUs allowed, 0 for none (-1).
double cgroup_v1_cpus(const std::string& quota, const std::string& period);
// Physical cores among logical CPUs given as (package id, core id) pairs.
int distinct_cores(const std::vector<std::pair<int, int>>& package_core);
// Threads for `logical` usable CPUs, `cores` physical cores among them (0: unknown) and a
// quota of `quota_cpus` (0: none): the cores, capped by the quota rounded down, at least 1.
int threads_for(int logical, int cores, double quota_cpus);
// The placement of `threads` threads on `usable` logical CPUs, keys[i] the (package id,
// core id) of usable[i] (empty keys: topology unknown, each CPU its own core): the first
// CPU, in the order given, of each physical core; empty unless there are exactly `threads`
// cores, and for one thread.
std::vector<int> placement_for(const std::vector<int>& usable, const std::vector<std::pair<int, int>>& keys, int threads);

}  // namespace cpu_budget
}  // namespace sdllm
