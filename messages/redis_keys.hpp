#pragma once

// Every Redis key this system uses, in one place. Values are plain strings
// and JSON, never pickles. A name is never reused for another meaning.

#include <string>
#include <string_view>

namespace atlas::keys {

/// String: the job record as JSON (runtime/job_codec.hpp).
inline std::string job(std::string_view id) { return "atlas:job:" + std::string(id); }

/// Set: ids of every job with a record.
inline constexpr const char* all_jobs = "atlas:jobs";

/// Set: ids of the jobs in one state ("queued", "running", ...).
inline std::string state_set(std::string_view state) {
  return "atlas:state:" + std::string(state);
}

/// String: the master's CAF endpoint "host:port", written when it starts;
/// worker nodes find the master through it.
inline constexpr const char* master_endpoint = "atlas:master:endpoint";

/// Hash, the original's lookup table: field = job id, value = HOST_ADDRESS
/// of the node that runs or ran the job.
inline constexpr const char* routing_map = "routing_map:job_id";

} // namespace atlas::keys
