#pragma once

// What this node offers to jobs: its CPUs and memory, as detected at start
// unless ATLAS_NODE_CPUS / ATLAS_NODE_MEMORY say otherwise. Placement fits
// jobs' `cpus` and `mem_limit` into it (actors/policy/dispatch_plan.hpp).

#include <cstdint>
#include <optional>
#include <string>

#include "library/config.hpp"

namespace atlas {

/// CPUs this process may run on (its affinity mask), 0 when unknown.
double detect_cpus();

/// MemTotal of /proc/meminfo, lowered to a cgroup memory limit of this
/// process when one is set; 0 when unknown.
uint64_t detect_memory_bytes();

/// The memory limit in a cgroup file's text ("max" or bytes); nullopt for
/// no limit or text that is not a limit.
std::optional<uint64_t> cgroup_memory_limit(const std::string& text);

/// Fills the capacity the environment did not set and logs it once.
void apply_node_capacity(node_config& cfg);

} // namespace atlas
