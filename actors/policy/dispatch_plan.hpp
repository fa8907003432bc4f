#pragma once

// Which queued job goes to which free slot, decided in plain C++: the
// master builds a dispatch_input from its registry, plan_dispatch() decides,
// and the master carries the plan out (spawns lifecycle actors, sends).
//
// Placement: spread fills the emptiest node first, pack the fullest (ties:
// slot key). A job fits a slot when the slot's node has the GPUs, CPUs and
// memory it asks for free; a node held for a starving GPU job takes no other
// job, and the held jobs are placed first (gpu_placement.hpp).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/policy/gpu_placement.hpp"
#include "actors/policy/queue_policy.hpp"

namespace atlas {

enum class placement_mode { spread, pack };

/// "pack" or anything else (spread, the default).
placement_mode placement_mode_of(const std::string& name);

/// The GPUs for one dispatch round: the ledger of every node's GPUs, and the
/// nodes held back for GPU jobs that waited too long.
struct gpu_round {
  gpu_ledger ledger;
  std::map<std::string, std::string> held; // node id -> the starving job it waits for
  std::map<std::string, int64_t> need;     // starving job id -> GPUs it asks for

  /// True when `node` is held for a job other than `job_id`.
  bool held_for_other(const std::string& node, const std::string& job_id = {}) const {
    auto h = held.find(node);
    return h != held.end() && h->second != job_id;
  }
};

/// A free slot on a node that takes work.
struct open_slot {
  std::string key;
  std::string node_id;
  std::vector<std::string> gpus; // its own share of its node's GPUs
};

/// A node's CPUs and memory for jobs, and what its jobs asked of them.
/// A capacity of 0 is not counted (unknown).
struct node_room {
  double cpus = 0;
  uint64_t memory_bytes = 0;
  double used_cpus = 0;
  uint64_t used_memory_bytes = 0;

  bool fits(const queued_job& j) const {
    return (cpus <= 0 || used_cpus + j.cpus <= cpus + 1e-9)
           && (memory_bytes == 0 || used_memory_bytes + j.memory_bytes <= memory_bytes);
  }
  void take(const queued_job& j) {
    used_cpus += j.cpus;
    used_memory_bytes += j.memory_bytes;
  }
};

/// `x` with up to 4 significant digits ("1.5", "2", "0.25").
std::string amount_text(double x);

/// Why `j` can never run on a node of this room ("" when it can).
std::string room_misfit(const queued_job& j, const node_room& largest);

struct dispatch_input {
  std::vector<open_slot> slots;         // by key
  std::map<std::string, size_t> busy;   // slots holding a job, per node of `slots`
  std::map<std::string, node_room> rooms; // per node of `slots`
  placement_mode placement = placement_mode::spread;
  gpu_round gpus;
};

/// One decision: this job (taken from the queue) runs on this slot with
/// these GPUs of the slot's node.
struct assignment {
  queued_job job;
  std::string slot_key;
  std::vector<std::string> gpus;
};

/// Indexes of `in.slots` in placement order.
std::vector<size_t> placement_order(const dispatch_input& in);

/// Hands queued jobs to the open slots until one of the two runs out or
/// nothing queued fits. Takes each assigned job out of `policy` (counted as
/// running for its user).
std::vector<assignment> plan_dispatch(queue_policy& policy, dispatch_input in);

} // namespace atlas
