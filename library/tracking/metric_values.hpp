#pragma once

// The job listing's value lists: every value of a metric, as the original's
// listing showed them, kept per job in one Redis hash (metric name ->
// "<times logged>\n<value>\n...", the last max_listed_metric_values JSON
// values). Written with each tracking batch (store.cpp), read with the
// summary.

#include <string>
#include <vector>

#include "adapters/json.hpp"
#include "library/tracking/store.hpp"

namespace atlas::dashboard {

/// A stored entry with `added` (JSON texts) appended, trimmed to the last
/// max_listed_metric_values; `current` is empty when there is none.
std::string appended_values(const std::string& current, const std::vector<std::string>& added);

/// Adds to `out` the write that appends the metric values of a validated
/// batch (`entries`). It reads the stored lists first and writes them in the
/// batch's transaction: a job's batches come one at a time (its SDK sends them
/// in order to its node's tracking actor, which runs one operation at a
/// time), and fenced writes already run inside a script, where no script of
/// ours could nest. False when Redis is unavailable.
bool metric_value_commands(const redis_tx& tx, const std::string& job_id,
                           const json::value& entries, std::vector<redis_cmd>& out);

/// Writes a stored entry as {"count": times logged, "values": [...]}.
void values_object(json::writer& w, const std::string& entry);

} // namespace atlas::dashboard
