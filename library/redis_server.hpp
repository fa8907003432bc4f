#pragma once

// The redis-server a master starts and supervises when none is configured.

#include <chrono>
#include <cstdint>
#include <string>

#include "adapters/process.hpp"
#include "adapters/redis_client.hpp"
#include "library/config.hpp"

namespace atlas {

/// The command line: append-only file on, data under <node_dir>/redis.
process_spec redis_process(const node_config& cfg);

/// Where this node finds Redis: REDIS_ADDRESS or the files, or the sentinels.
redis_target redis_target_of(const node_config& cfg);

/// True when the Redis of `target` answers PING within `timeout`.
bool redis_answers(const redis_target& target, std::chrono::milliseconds timeout);

/// True when a Redis answers PING at host:port within `timeout`.
bool redis_answers(const std::string& host, uint16_t port,
                   std::chrono::milliseconds timeout);

/// True when something already listens on host:port.
bool port_in_use(const std::string& host, uint16_t port);

} // namespace atlas
