#pragma once

// cgroup v2 limits for process jobs: each job with a memory or CPU request
// runs in a child cgroup of the server's own (or of ATLAS_CGROUP_ROOT), with
// memory.max, memory.swap.max 0 and cpu.max. The text parts are pure and
// unit-tested; the rest reads and writes /sys/fs/cgroup.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace atlas::cgroup {

/// The unified (v2) path in /proc/self/cgroup's text: the "0::<path>" line.
std::optional<std::string> unified_path(std::string_view proc_self_cgroup);

/// Where the cgroup2 file system is mounted according to /proc/self/mounts'
/// text (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
std::optional<std::string> v2_mount(std::string_view proc_mounts);

/// Whether a cgroup.controllers text lists both memory and cpu.
bool has_memory_and_cpu(std::string_view controllers);

/// cpu.max for `cpus` CPUs: "<quota> 100000"; "max 100000" when cpus <= 0.
std::string cpu_max(double cpus);

/// The oom_kill count in a memory.events text (0 when absent).
uint64_t oom_kills(std::string_view memory_events);

/// Where job cgroups go on this node, or why there are none.
struct setup {
  std::string dir;     ///< parent of the jobs' cgroups; empty: limits not enforced
  std::string why_not; ///< when `dir` is empty
};

/// Prepares `root` (empty: the server's own cgroup, which it then leaves
/// for <own>/server, as cgroup v2 allows no processes in a cgroup whose
/// children have controllers) with +memory +cpu in its subtree_control.
setup prepare(const std::string& root);

/// One job's cgroup: `fd` (O_DIRECTORY) is for clone3's CLONE_INTO_CGROUP.
struct job_group {
  std::string dir;
  int fd = -1;
};

/// Creates <parent>/<name> with the limits (0: none). nullopt with `error`.
std::optional<job_group> create(const std::string& parent, const std::string& name, double cpus,
                                uint64_t memory_bytes, std::string& error);

/// Its oom_kill count so far.
uint64_t read_oom_kills(const job_group& g);

/// Kills what is left in it, closes the fd and removes it; "" or what failed.
std::string remove(job_group& g);

} // namespace atlas::cgroup
