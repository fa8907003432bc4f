#pragma once

#include <cstdint>
#include <string>

#include "library/redis_writer.hpp"
#include "messages/actors.hpp"

namespace atlas {

/// How the lookup actor writes: retried, fenced by the lease on the active
/// master, confirmed by replicas when configured (library/redis_writer.hpp).
using lookup_options = redis_write_options;

/// Spawns the lookup actor (detached: it owns a blocking Redis connection).
lookup_actor spawn_lookup(caf::actor_system& sys, const redis_target& target,
                          lookup_options opts = {});

/// One address, the defaults otherwise (tests).
lookup_actor spawn_lookup(caf::actor_system& sys, std::string host, uint16_t port,
                          int retry_s = 10);

} // namespace atlas
