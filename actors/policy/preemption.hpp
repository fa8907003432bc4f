#pragma once

// Which running jobs make way for a waiting job of a higher priority, in
// plain C++ (scheduling.preemption; off by default). The victims all run on
// one node, have a lower priority than the waiting job, ran at least
// min_runtime_s, and were not already preempted for a job of this priority
// or higher (no chains). Fewest victims win, then the lowest priorities,
// then the youngest (least work lost).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/policy/dispatch_plan.hpp"

namespace atlas {

struct running_job {
  std::string job_id;
  std::string node_id;
  int64_t priority = 0;
  double since = 0;          // dispatched at (epoch seconds)
  int64_t num_gpus = 0;
  double cpus = 0;
  uint64_t memory_bytes = 0;
  int64_t preemptions = 0;   // times it was preempted before
  int64_t preempted_by = 0;  // the priority it last made way for
};

/// A node that takes work, as it is now.
struct node_now {
  size_t free_slots = 0;
  int64_t free_gpus = 0;
  node_room room;
};

struct preemption_input {
  queued_job waiting;
  std::map<std::string, node_now> nodes; // by node id
  std::vector<running_job> running;
  double now = 0;
  double min_runtime_s = 60;
};

struct preemption_plan {
  std::string node_id;
  std::vector<std::string> victims;
};

/// Whether `v` may make way for a job of `priority` at `now`.
bool preemptible(const running_job& v, int64_t priority, double now, double min_runtime_s);

/// The victims on one node that make room for the waiting job; nullopt
/// when it fits somewhere without any, or no node can make room.
std::optional<preemption_plan> plan_preemption(const preemption_input& in);

} // namespace atlas
