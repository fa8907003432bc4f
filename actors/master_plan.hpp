#pragma once

// Reads the master's registry into the inputs of the plain-C++ policies
// (actors/policy/dispatch_plan.hpp, gpu_placement.hpp): what is free, what
// is busy, which GPUs are held and which nodes wait for a starving job.

#include <cstdint>
#include <string>

#include "actors/policy/dispatch_plan.hpp"

namespace atlas {

struct master_state;

/// This round's GPUs: the ledger from the slot registry, and the nodes held
/// for GPU jobs queued longer than limits.gpu_reserve_after_s before `now`.
gpu_round gpu_round_of(const master_state& st, double now);

/// The free slots on nodes that take work, their nodes' busy slots, the
/// placement mode and this round's GPUs.
dispatch_input dispatch_input_of(const master_state& st, double now);

/// The most CPUs and memory any registered node offers (0: not counted).
node_room largest_room(const master_state& st);

/// Why a job asking for `need` GPUs can never run in the cluster as
/// registered now; "" when it may.
std::string gpu_misfit_of(const master_state& st, int64_t need);

} // namespace atlas
