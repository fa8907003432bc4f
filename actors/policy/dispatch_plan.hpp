#pragma once

// Which queued job goes to which free slot, decided in plain C++: the
// master builds a dispatch_input from its registry, plan_dispatch() decides,
// and the master carries the plan out (spawns lifecycle actors, sends).
//
// Placement: spread fills the emptiest node first, pack the fullest (ties:
// slot key). A job fits a slot when the slot's node has the GPUs it asks for
// free; a node held for a starving GPU job takes no other job, and the held
// jobs are placed first (gpu_placement.hpp).

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

struct dispatch_input {
  std::vector<open_slot> slots;         // by key
  std::map<std::string, size_t> busy;   // slots holding a job, per node of `slots`
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
