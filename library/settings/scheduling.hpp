#pragma once

// Scheduling policy beyond the queue order (actors/policy/): time limits,
// quotas, preemption, and what this node offers to jobs.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace atlas {

/// Most a user or a group may hold at once across the cluster; -1: no limit.
struct quota_limits {
  int64_t running_jobs = -1;
  int64_t gpus = -1;
  int64_t slots = -1; // one per job today: a job holds one slot
};

/// A project's own time limits; -1: the cluster's.
struct project_limits {
  int64_t time_limit_s = -1;
  int64_t max_time_limit_s = -1;
};

struct scheduling_settings {
  int64_t time_limit_s = 0;     // limits.time_limit_s: a job's time limit when it asks none (0: none)
  int64_t max_time_limit_s = 0; // limits.max_time_limit_s: the longest a job may ask (0: no maximum)
  std::map<std::string, project_limits> projects;  // projects.<name>: the same, per project
  std::map<std::string, quota_limits> user_quotas;  // quotas.users.<user>, "*": every user
  std::map<std::string, quota_limits> group_quotas; // quotas.groups.<group>
  /// quotas.members.<group>: its users. With -p a user's groups also come
  /// from the token (groups and roles claims).
  std::map<std::string, std::vector<std::string>> group_members;
  bool preemption = false;      // scheduling.preemption
  int min_runtime_s = 60;       // scheduling.min_runtime_s: a younger job is never preempted
  double node_cpus = 0;         // ATLAS_NODE_CPUS: this node's CPUs for jobs (0: detected)
  uint64_t node_memory_bytes = 0; // ATLAS_NODE_MEMORY: its memory for jobs (0: detected)

  /// "" or what is wrong, naming the setting.
  std::string validate() const;
};

} // namespace atlas
