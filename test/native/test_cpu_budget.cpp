// The default thread count's inputs (cpp/cpu_budget.h): cgroup v2 cpu.max and v1 CFS quota
// texts as the kernel writes them (and malformed ones, which must not cap anything), the
// physical cores among SMT siblings, and the rule that combines them; then this machine's
// default, which must lie within its usable CPUs.
#include <sched.h>

#include <thread>

#include "cpu_budget.h"
#include "loader_test_harness.h"

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

  // This machine: within the CPUs this process may use.
  const ThreadDefault& d = default_thread_count();
  cpu_set_t set;
  CPU_ZERO(&set);
  const int usable = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : static_cast<int>(std::thread::hardware_concurrency());
  check(d.threads >= 1 && d.threads <= usable, "default within the usable CPUs: " + std::to_string(d.threads) + " (" + d.reason + ")");
  check(d.reason.find("usable logical CPUs") != std::string::npos, "reason names the usable CPUs: " + d.reason);
  std::printf("default threads: %d (%s)\n", d.threads, d.reason.c_str());
  return sdllm_test::finish("cpu_budget");
}
