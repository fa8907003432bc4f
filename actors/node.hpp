#pragma once

#include <memory>

#include "actors/worker_slot.hpp"
#include "messages/actors.hpp"

namespace atlas {

/// Spawns the node actor. It starts (and restarts, with backoff) the managed
/// redis-server when asked, and drains the node's slots on shutdown.
/// The node's slots register with it when they start.
node_actor spawn_node(caf::actor_system& sys, node_context ctx);

} // namespace atlas
