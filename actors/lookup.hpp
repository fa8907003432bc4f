#pragma once

#include <cstdint>
#include <string>

#include "messages/actors.hpp"

namespace atlas {

struct redis_target;

/// How the lookup actor writes.
struct lookup_options {
  /// Failed Redis calls are retried with backoff this long, then answered
  /// with ec::unavailable (long enough for a Sentinel failover there).
  int retry_s = 10;
  /// The active master's lease value (runtime/master_lease.hpp): every
  /// write runs in a script that first checks the lease still holds it.
  /// Empty on workers, which hold no lease.
  std::string fence;
  /// Writes count once this many replicas confirm them (Redis WAIT).
  int min_replica_acks = 0;
  int wait_timeout_ms = 1000;
};

/// Spawns the lookup actor (detached: it owns a blocking Redis connection).
lookup_actor spawn_lookup(caf::actor_system& sys, const redis_target& target,
                          lookup_options opts = {});

/// One address, the defaults otherwise (tests).
lookup_actor spawn_lookup(caf::actor_system& sys, std::string host, uint16_t port,
                          int retry_s = 10);

} // namespace atlas
