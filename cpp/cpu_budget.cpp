#include "cpu_budget.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

namespace sdllm {
namespace cpu_budget {

namespace {

bool parse_double(const std::string& text, double& out) {
  const char* s = text.c_str();
  char* end = nullptr;
  out = std::strtod(s, &end);
  if (end == s) return false;
  while (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r') ++end;
  return *end == '\0' && std::isfinite(out);
}

}  // namespace

double cgroup_v2_cpus(const std::string& cpu_max) {
  std::istringstream in(cpu_max);
  std::string quota, period;
  if (!(in >> quota >> period) || quota == "max") return 0;
  double q = 0, p = 0;
  if (!parse_double(quota, q) || !parse_double(period, p) || q <= 0 || p <= 0) return 0;
  return q / p;
}

double cgroup_v1_cpus(const std::string& quota, const std::string& period) {
  double q = 0, p = 0;
  if (!parse_double(quota, q) || !parse_double(period, p) || q <= 0 || p <= 0) return 0;
  return q / p;
}

int distinct_cores(const std::vector<std::pair<int, int>>& package_core) {
  return static_cast<int>(std::set<std::pair<int, int>>(package_core.begin(), package_core.end()).size());
}

std::vector<int> placement_for(const std::vector<int>& usable, const std::vector<std::pair<int, int>>& keys, int threads) {
  if (threads <= 1) return {};
  const bool topology = keys.size() == usable.size();
  std::vector<int> cpus;  // the first CPU of each core, in the order given
  std::set<std::pair<int, int>> seen;
  for (size_t i = 0; i < usable.size(); ++i)
    if (!topology || seen.insert(keys[i]).second) cpus.push_back(usable[i]);
  // Only a pool that takes every usable core is placed: with fewer threads than cores the
  // process leaves room that the kernel can give to others (several processes each asking
  // for 2 threads would otherwise all be placed on the same first two cores).
  if (static_cast<int>(cpus.size()) != threads) return {};
  return cpus;
}

int threads_for(int logical, int cores, double quota_cpus) {
  int t = std::max(1, logical);
  if (cores > 0) t = std::min(t, cores);
  if (quota_cpus > 0) t = std::min(t, std::max(1, static_cast<int>(std::floor(quota_cpus))));
  return std::max(1, t);
}

}  // namespace cpu_budget

namespace {

#if defined(__linux__)
bool read_text(const std::string& path, std::string& out) {
  std::ifstream f(path);
  if (!f) return false;
  std::ostringstream s;
  s << f.rdbuf();
  out = s.str();
  return true;
}

int read_int(const std::string& path, int fallback) {
  std::string t;
  if (!read_text(path, t)) return fallback;
  char* end = nullptr;
  const long v = std::strtol(t.c_str(), &end, 10);
  return end == t.c_str() ? fallback : static_cast<int>(v);
}

// The directory of `path` and its ancestors below `root` (inclusive), deepest first.
std::vector<std::string> cgroup_dirs(const std::string& root, std::string path) {
  std::vector<std::string> dirs;
  while (!path.empty() && path != "/") {
    dirs.push_back(root + path);
    path.resize(path.rfind('/'));
  }
  dirs.push_back(root);
  return dirs;
}

// The smallest CPU quota on the process's cgroup path (v2, or v1's cpu controller), 0 if none.
double cgroup_quota_cpus() {
  std::string text;
  if (!read_text("/proc/self/cgroup", text)) return 0;
  double limit = 0;
  auto take = [&](double cpus) {
    if (cpus > 0 && (limit == 0 || cpus < limit)) limit = cpus;
  };
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controllers.empty()) {  // v2: "0::/path"
      for (const std::string& dir : cgroup_dirs("/sys/fs/cgroup", path)) {
        std::string cpu_max;
        if (read_text(dir + "/cpu.max", cpu_max)) take(cpu_budget::cgroup_v2_cpus(cpu_max));
      }
      continue;
    }
    std::istringstream names(controllers);
    std::string name;
    bool cpu = false;
    while (std::getline(names, name, ',')) cpu = cpu || name == "cpu";
    if (!cpu) continue;
    // v1: mounted as cpu or cpu,cpuacct; inside a container the path may not exist below
    // the mount (its root is the container's cgroup), so the mount root is read as well.
    for (const std::string mount : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"}) {
      for (const std::string& dir : cgroup_dirs(mount, path)) {
        std::string quota, period;
        if (read_text(dir + "/cpu.cfs_quota_us", quota) && read_text(dir + "/cpu.cfs_period_us", period))
          take(cpu_budget::cgroup_v1_cpus(quota, period));
      }
    }
  }
  return limit;
}
#endif

// The logical CPUs this process may run on and their (package, core) keys (empty keys:
// no topology in sysfs, as in some containers).
struct UsableCpus {
  std::vector<int> cpus;
  std::vector<std::pair<int, int>> keys;
};

#if defined(__linux__)
UsableCpus scan_usable_cpus() {
  UsableCpus u;
  const int online = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) u.cpus.push_back(c);
  }
  if (u.cpus.empty())
    for (int c = 0; c < online; ++c) u.cpus.push_back(c);
  for (int c : u.cpus) {
    const std::string topo = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
    const int core = read_int(topo + "core_id", -1), package = read_int(topo + "physical_package_id", -1);
    if (core < 0) {  // no topology: count logical CPUs
      u.keys.clear();
      break;
    }
    u.keys.emplace_back(package, core);
  }
  return u;
}

// Read once per process: the default thread count and the placement both ask for it.
const UsableCpus& usable_cpus() {
  static const UsableCpus u = scan_usable_cpus();
  return u;
}
#endif

ThreadDefault compute_default() {
  ThreadDefault d;
  const int online = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#if defined(__linux__)
  const UsableCpus& u = usable_cpus();
  const int cores = u.keys.empty() ? 0 : cpu_budget::distinct_cores(u.keys);
  const double quota = cgroup_quota_cpus();
  d.threads = cpu_budget::threads_for(static_cast<int>(u.cpus.size()), cores, quota);
  std::ostringstream why;
  why << u.cpus.size() << " usable logical CPUs";
  if (static_cast<int>(u.cpus.size()) < online) why << " of " << online << " (affinity)";
  if (cores > 0) why << ", " << cores << " physical cores";
  if (quota > 0) why << ", a cgroup CPU quota of " << quota;
  d.reason = why.str();
#else
  d.threads = online;
  d.reason = std::to_string(online) + " logical CPUs";
#endif
  return d;
}

}  // namespace

const ThreadDefault& default_thread_count() {
  static const ThreadDefault d = compute_default();
  return d;
}

std::vector<int> default_placement(int threads) {
  const char* pin = std::getenv("SDLLM_PIN");
  if (pin && std::string(pin) == "0") return {};
#if defined(__linux__)
  const UsableCpus& u = usable_cpus();
  return cpu_budget::placement_for(u.cpus, u.keys, threads);
#else
  (void)threads;
  return {};
#endif
}

}  // namespace sdllm
