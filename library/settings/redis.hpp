#pragma once

// Where the cluster's Redis is (actors/lookup.cpp, runtime/master_lease).

#include <cstdint>
#include <string>
#include <vector>

namespace atlas {

struct redis_settings {
  // REDIS_ADDRESS "host" or "host:port"; files in local_docker_scheduler/
  std::string redis_host = "127.0.0.1";
  uint16_t redis_port = 5556;
  bool manage_redis = true; // the master starts and supervises its own redis-server
  std::string redis_binary = "redis-server";
  // Redis Sentinel instead of one address (redis.sentinels, REDIS_SENTINELS
  // "host:port,host:port"): every node asks them for the current primary.
  std::vector<std::string> redis_sentinels; // "host:port" each
  std::string redis_master_name = "atlas";  // redis.master_name: the name the sentinels monitor
  int redis_min_replica_acks = 0;   // redis.min_replica_acks: writes count once this many replicas have them (WAIT)
  int redis_wait_timeout_ms = 1000; // redis.wait_timeout_ms: how long WAIT waits for them

  /// "" or what is wrong, naming the setting.
  std::string validate() const;
};

} // namespace atlas
