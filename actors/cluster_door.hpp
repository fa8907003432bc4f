#pragma once

#include <string>

#include "messages/actors.hpp"

namespace atlas {

/// Spawns the door published on the master's CAF port: a node that shows
/// `secret` joins (the master learns its gateway) and gets the master's
/// handle; any other is refused with ec::forbidden, and logged.
cluster_actor spawn_cluster_door(caf::actor_system& sys, std::string secret,
                                 master_actor master);

} // namespace atlas
