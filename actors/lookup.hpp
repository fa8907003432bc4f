#pragma once

#include <cstdint>
#include <string>

#include "messages/actors.hpp"

namespace atlas {

/// Spawns the lookup actor (detached: it owns a blocking Redis connection).
/// Failed Redis calls are retried with backoff for up to `retry_s` seconds,
/// then answered with ec::unavailable.
lookup_actor spawn_lookup(caf::actor_system& sys, std::string host, uint16_t port,
                          int retry_s = 10);

} // namespace atlas
