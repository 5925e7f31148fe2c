// The default thread count's inputs (cpp/cpu_budget.h): cgroup v2 cpu.max and v1 CFS quota
// texts as the kernel writes them (and malformed ones, which must not cap anything), the
// physical cores among SMT siblings, and the rule that combines them; then this machine's
// default, which must lie within its usable CPUs. Then the placement of a pool's threads:
// the rule, and a placed pool on this machine (each thread on its CPU inside a job, the
// caller's own affinity back after it).
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "cpu_budget.h"
#include "loader_test_harness.h"
#include "threadpool.h"

using namespace sdllm;
using namespace sdllm::cpu_budget;
using sdllm_test::check;

int main() {
  // cgroup v2 cpu.max: "max PERIOD" is no limit; "QUOTA PERIOD" allows QUOTA / PERIOD CPUs.
  check(cgroup_v2_cpus("max 100000\n") == 0, "v2: max is no limit");
  check(cgroup_v2_cpus("200000 100000\n") == 2.0, "v2: 2 CPUs");
  check(cgroup_v2_cpus("150000 100000") == 1.5, "v2: 1.5 CPUs");
  check(cgroup_v2_cpus("50000 100000\n") == 0.5, "v2: half a CPU");
  for (const char* bad : {"", "\n", "max", "200000", "x 100000", "200000 0", "-1 100000", "200000 y", "1e400 100000"})
    check(cgroup_v2_cpus(bad) == 0, std::string("v2: malformed is no limit: ") + bad);
  // cgroup v1: cfs_quota_us -1 is no limit.
  check(cgroup_v1_cpus("-1\n", "100000\n") == 0, "v1: -1 is no limit");
  check(cgroup_v1_cpus("400000\n", "100000\n") == 4.0, "v1: 4 CPUs");
  check(cgroup_v1_cpus("", "100000") == 0 && cgroup_v1_cpus("100000", "") == 0 && cgroup_v1_cpus("1", "0") == 0,
        "v1: malformed is no limit");
  // SMT: two logical CPUs on one core count once; the same core id in another package is another core.
  check(distinct_cores({{0, 0}, {0, 0}, {0, 1}, {0, 1}}) == 2, "SMT siblings count once");
  check(distinct_cores({{0, 0}, {1, 0}}) == 2, "core 0 of two packages");
  check(distinct_cores({}) == 0, "no topology");
  // The rule: physical cores, capped by the quota rounded down, at least one thread.
  check(threads_for(64, 32, 0) == 32, "64 logical, 32 cores: 32");
  check(threads_for(64, 32, 2) == 2, "a 2-CPU container on a 64-CPU host: 2");
  check(threads_for(8, 8, 2.5) == 2, "quota 2.5: 2");
  check(threads_for(8, 8, 0.5) == 1, "quota 0.5: 1");
  check(threads_for(4, 0, 0) == 4, "no topology: the logical CPUs");
  check(threads_for(0, 0, 0) == 1, "never below 1");

  // Placement: one CPU per core, the first of its siblings; only when the threads take every core.
  check(placement_for({0, 1, 2, 3}, {{0, 0}, {0, 1}, {0, 0}, {0, 1}}, 2) == std::vector<int>({0, 1}),
        "siblings 0/2 and 1/3: CPUs 0 and 1");
  check(placement_for({0, 1, 2, 3}, {{0, 0}, {0, 0}, {0, 1}, {0, 1}}, 2) == std::vector<int>({0, 2}),
        "siblings numbered side by side: CPUs 0 and 2");
  check(placement_for({4, 5}, {{0, 3}, {0, 7}}, 2) == std::vector<int>({4, 5}), "a cpuset of two cores");
  check(placement_for({0, 1, 2, 3}, {}, 4) == std::vector<int>({0, 1, 2, 3}), "no topology: each CPU a core");
  check(placement_for({0, 1, 2, 3}, {{0, 0}, {0, 1}, {0, 2}, {0, 3}}, 2).empty(), "fewer threads than cores: not placed");
  check(placement_for({0, 1}, {{0, 0}, {0, 1}}, 3).empty(), "more threads than cores: not placed");
  check(placement_for({0, 1}, {{0, 0}, {0, 1}}, 1).empty(), "one thread: not placed");
  check(placement_for({0, 1, 2}, {{0, 0}, {0, 0}}, 3) == std::vector<int>({0, 1, 2}), "keys of another length: no topology");

  // This machine: within the CPUs this process may use.
  const ThreadDefault& d = default_thread_count();
  cpu_set_t set;
  CPU_ZERO(&set);
  const int usable = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : static_cast<int>(std::thread::hardware_concurrency());
  check(d.threads >= 1 && d.threads <= usable, "default within the usable CPUs: " + std::to_string(d.threads) + " (" + d.reason + ")");
  check(d.reason.find("usable logical CPUs") != std::string::npos, "reason names the usable CPUs: " + d.reason);
  std::printf("default threads: %d (%s)\n", d.threads, d.reason.c_str());

  // The default placement: distinct usable CPUs, as many as the default threads, or none.
  const std::vector<int> placed = default_placement(d.threads);
  check(placed.empty() || static_cast<int>(placed.size()) == d.threads, "default placement: one CPU a thread");
  for (int c : placed) check(CPU_ISSET(c, &set), "default placement within the affinity: CPU " + std::to_string(c));
  check(std::set<int>(placed.begin(), placed.end()).size() == placed.size(), "default placement: distinct CPUs");
  setenv("SDLLM_PIN", "0", 1);
  check(default_placement(d.threads).empty(), "SDLLM_PIN=0: not placed");
  unsetenv("SDLLM_PIN");

  // A pool placed on this process's first two usable CPUs: inside jobs each thread runs on its
  // own CPU (the caller on cpus[0]), the caller's own affinity comes back after each job and
  // after a CallerScope (nested ones included), and an unplaced pool leaves it untouched.
  std::vector<int> usable_cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) usable_cpus.push_back(c);
  auto affinity_now = [] {
    cpu_set_t now;
    CPU_ZERO(&now);
    sched_getaffinity(0, sizeof(now), &now);
    return now;
  };
  auto unchanged = [&] {
    cpu_set_t now = affinity_now();
    return CPU_EQUAL(&now, &set) != 0;
  };
  if (usable_cpus.size() >= 2) {
    const std::vector<int> cpus = {usable_cpus[1], usable_cpus[0]};  // the caller on the second CPU: not the default order
    ThreadPool pool(2, cpus);
    check(pool.cpus() == cpus, "the pool keeps its placement");
    std::mutex mu;
    std::vector<std::set<int>> seen(2);
    for (int round = 0; round < 20; ++round)
      pool.parallel_for(64, 1, [&](int64_t b, int64_t e, int worker) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20 * (e - b));
        while (std::chrono::steady_clock::now() < until) {
        }
        std::lock_guard<std::mutex> lk(mu);
        seen[static_cast<size_t>(worker)].insert(sched_getcpu());
      });
    check(seen[0] == std::set<int>({cpus[0]}), "the caller's chunks ran on cpus[0]");
    check(seen[1].empty() || seen[1] == std::set<int>({cpus[1]}), "the worker's chunks ran on cpus[1]");
    check(unchanged(), "the caller's affinity is back after the jobs");
    {
      ThreadPool::CallerScope outer(pool);
      {
        ThreadPool::CallerScope inner(pool);
        const cpu_set_t inside = affinity_now();
        check(CPU_COUNT(&inside) == 1 && CPU_ISSET(cpus[0], &inside), "inside a scope: cpus[0] only");
      }
      const cpu_set_t between = affinity_now();
      check(CPU_COUNT(&between) == 1, "a nested scope's end leaves the outer one's placement");
      pool.parallel_for(8, 1, [](int64_t, int64_t, int) {});
      const cpu_set_t after_job = affinity_now();
      check(CPU_COUNT(&after_job) == 1, "a job inside a scope leaves the scope's placement");
    }
    check(unchanged(), "the caller's affinity is back after the scope");
    ThreadPool unplaced(2);
    check(unplaced.cpus().empty(), "a pool without CPUs is not placed");
    {
      ThreadPool::CallerScope none(unplaced);
      check(unchanged(), "an unplaced pool's scope changes nothing");
    }
    ThreadPool too_few(3, {usable_cpus[0], usable_cpus[1]});
    check(too_few.cpus().empty(), "fewer CPUs than threads: not placed");
  }
  return sdllm_test::finish("cpu_budget");
}
