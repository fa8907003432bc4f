#include "runtime/node_capacity.hpp"

#include <sched.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

namespace atlas {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// This process's cgroup path on the v2 tree ("0::<path>"), or the v1
/// memory controller's ("N:memory:<path>").
std::optional<std::string> cgroup_path(const std::string& proc_self_cgroup, bool v2) {
  std::istringstream lines(proc_self_cgroup);
  std::string line;
  while (std::getline(lines, line)) {
    auto a = line.find(':');
    auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos)
      continue;
    auto controllers = line.substr(a + 1, b - a - 1);
    if ((v2 && line.compare(0, a, "0") == 0 && controllers.empty())
        || (!v2 && controllers == "memory"))
      return line.substr(b + 1);
  }
  return std::nullopt;
}

} // namespace

double detect_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    return 0;
  return static_cast<double>(CPU_COUNT(&set));
}

std::optional<uint64_t> cgroup_memory_limit(const std::string& text) {
  auto t = text.substr(0, text.find_first_of(" \n"));
  if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt; // "max", or unreadable
  auto bytes = std::stoull(t);
  if (bytes >= (1ull << 62)) // v1 writes "no limit" as a huge page-aligned number
    return std::nullopt;
  return bytes;
}

uint64_t detect_memory_bytes() {
  uint64_t total = 0;
  std::istringstream meminfo(read_text("/proc/meminfo"));
  std::string key;
  uint64_t kb = 0;
  while (meminfo >> key >> kb) {
    if (key == "MemTotal:") {
      total = kb << 10;
      break;
    }
    meminfo.ignore(256, '\n');
  }
  auto self = read_text("/proc/self/cgroup");
  std::optional<uint64_t> limit;
  if (auto v2 = cgroup_path(self, true); v2 && *v2 != "/")
    limit = cgroup_memory_limit(read_text("/sys/fs/cgroup" + *v2 + "/memory.max"));
  if (auto v1 = cgroup_path(self, false); !limit && v1)
    limit = cgroup_memory_limit(read_text("/sys/fs/cgroup/memory" + *v1 + "/memory.limit_in_bytes"));
  if (limit && (total == 0 || *limit < total))
    return *limit;
  return total;
}

void apply_node_capacity(node_config& cfg) {
  bool cpus_set = cfg.node_cpus > 0, memory_set = cfg.node_memory_bytes > 0;
  if (!cpus_set)
    cfg.node_cpus = detect_cpus();
  if (!memory_set)
    cfg.node_memory_bytes = detect_memory_bytes();
  char gib[32];
  std::snprintf(gib, sizeof gib, "%.1f", static_cast<double>(cfg.node_memory_bytes) / (1ull << 30));
  spdlog::info("node capacity node={} cpus={} ({}) memory={} GiB ({})", cfg.node_id, cfg.node_cpus,
               cpus_set ? "ATLAS_NODE_CPUS" : "detected", gib,
               memory_set ? "ATLAS_NODE_MEMORY" : "detected");
}

} // namespace atlas
