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

}  // namespace cpu_budget
}  // namespace sdllm
