#pragma once

// What the metric and parameter indexes (keys::project_column) are given
// from tracking data: a job's latest value of each metric and parameter,
// when it is a number. Plain C++; the commands are job_index's.

#include <string>
#include <vector>

#include "adapters/json.hpp"
#include "adapters/redis_client.hpp"

namespace atlas::dashboard {

/// The index writes of a validated tracking batch ({"kind", "key",
/// "value"} entries): for each metric and parameter, its last value in the
/// batch decides.
std::vector<std::vector<std::string>> column_writes(const std::string& project,
                                                    const std::string& id,
                                                    const json::value& entries);

/// The index writes for a job's stored values: `metrics` and `params` are
/// HGETALL replies of its keys::job_metrics and keys::job_params (the
/// backfill of a store from before the indexes).
std::vector<std::vector<std::string>> column_backfill(const std::string& project,
                                                      const std::string& id,
                                                      const redis_reply& metrics,
                                                      const redis_reply& params);

} // namespace atlas::dashboard
