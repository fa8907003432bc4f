#pragma once

#include <memory>

#include "messages/actors.hpp"
#include "library/config.hpp"

namespace atlas {

/// Spawns the master: it recovers the unfinished jobs recorded in Redis,
/// then dispatches queued jobs to free slots as events arrive (no polling).
master_actor spawn_master(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                          lookup_actor lookup);

} // namespace atlas
