#pragma once

#include <memory>

#include "messages/actors.hpp"
#include "runtime/config.hpp"

namespace atlas {

class event_loop;
class process_supervisor;

/// What a slot needs from its node. The node owns all of it and outlives
/// the slot.
struct slot_context {
  std::shared_ptr<const node_config> config;
  event_loop* loop = nullptr;                // file work goes to its thread pool
  process_supervisor* processes = nullptr;   // jobs run through it
};

/// Spawns slot `index` of this node; it registers itself with `master` and
/// tells `node` whenever it becomes idle.
worker_slot_actor spawn_worker_slot(caf::actor_system& sys, slot_context ctx,
                                    int32_t index, std::vector<std::string> gpus,
                                    master_actor master, node_actor node);

} // namespace atlas
