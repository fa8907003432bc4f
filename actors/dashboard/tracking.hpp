#pragma once

#include "library/redis_writer.hpp"
#include "messages/actors.hpp"

namespace atlas {

/// Spawns the tracking actor (detached: it owns a blocking Redis
/// connection). It reaches the lookup's Redis (`target`) and writes as the
/// lookup does (`opts`: retried, fenced on the active master).
tracking_actor spawn_tracking(caf::actor_system& sys, const redis_target& target,
                              redis_write_options opts = {});

} // namespace atlas
