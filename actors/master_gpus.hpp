#pragma once

// The master's GPU bookkeeping for one dispatch round: which GPUs of each
// node are held (from the slot registry), which nodes are held back for GPU
// jobs that waited too long, and which jobs can never run. The rules are in
// gpu_placement.hpp (plain C++); this file reads the master's state for them.

#include <cstdint>
#include <map>
#include <string>

#include "actors/policy/gpu_placement.hpp"

namespace atlas {

struct master_state;

struct gpu_round {
  gpu_ledger ledger;
  std::map<std::string, std::string> held; // node id -> the starving job it waits for

  /// True when `node` is held for a job other than `job_id`.
  bool held_for_other(const std::string& node, const std::string& job_id = {}) const {
    auto h = held.find(node);
    return h != held.end() && h->second != job_id;
  }
};

/// This round's GPUs: the ledger from the slot registry, and the nodes held
/// for GPU jobs queued longer than limits.gpu_reserve_after_s before `now`.
gpu_round gpu_round_of(const master_state& st, double now);

/// Why a job asking for `need` GPUs can never run in the cluster as
/// registered now; "" when it may.
std::string gpu_misfit_of(const master_state& st, int64_t need);

} // namespace atlas
