#pragma once

#include <memory>

#include "actors/worker_slot.hpp"
#include "messages/actors.hpp"

namespace atlas {

/// Spawns the node actor. It starts (and restarts, with backoff) the managed
/// redis-server when asked, and drains the node's slots on shutdown.
/// The node's slots and gateway register with it when they start. On a
/// worker node (`lookup` given), `connect_atom` makes it find the master
/// through Redis, join with `secret`, and rejoin whenever the master is lost.
node_actor spawn_node(caf::actor_system& sys, node_context ctx, lookup_actor lookup = {},
                      std::string secret = {});

} // namespace atlas
