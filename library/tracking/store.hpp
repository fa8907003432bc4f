#pragma once

// Experiment tracking and dashboard data in Redis: what the in-job SDK sends
// (metrics, parameters, tags, artifacts), tags edited on the page, project
// descriptions and notes. Plain C++ (no actors): the tracking actor
// (actors/dashboard/tracking.cpp) runs these operations on its own thread
// with its Redis connection; key names are in messages/redis_keys.hpp.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis_client.hpp"

namespace atlas::dashboard {

using redis_cmd = std::vector<std::string>;

/// Runs commands atomically (MULTI/EXEC); nullopt when Redis cannot be
/// reached (nothing is known to be applied).
using redis_tx = std::function<std::optional<std::vector<redis_reply>>(
  const std::vector<redis_cmd>&)>;

/// The most values of one metric a job listing shows (the last ones logged):
/// the listing answers every value as the original did, up to this many per
/// metric so that a listing stays small; the job's "series" has them all.
inline constexpr size_t max_listed_metric_values = 100;

/// An operation's outcome: `status` 200 with JSON `body`, or an HTTP error
/// status (400, 403, 404, 503) with a message in `body`.
struct store_answer {
  uint16_t status = 200;
  std::string body;
};

/// Runs one named operation. `args` per op:
/// - "secret"  {job_id, secret}: remembers the job's tracking secret (its digest).
/// - "track"   {job_id, secret, batch JSON}: checks the secret (403 when it is
///   wrong, the job has none, or the job has ended; nothing stored),
///   validates the whole batch
///   (400 naming the bad entry; nothing stored), then stores it.
///   Batch: {"entries": [{"kind": "metric"|"param"|"tag"|"artifact", "key", "value",
///   "step", "time", "path", "size"}, ...]}. Answers {"stored": n}.
/// - "check_secret" {job_id, secret}: "true" when "track" would take it (else its 403).
/// - "summary" {job_id...}: {"<id>": {"metrics": {name: {value, step, time}} (the latest),
///   "values": {name: {"count": times logged, "values": [the last
///   max_listed_metric_values values, in logged order]}},
///   "params": {...}, "tags": {...}, "artifacts": {...}}, ...}.
/// - "detail"  {job_id}: the same for one job plus "series": {name: [[step, value, time], ...]}.
/// - "tag"     {job_id, key, value}: sets a tag. "untag" {job_id, key}: removes it (if there).
/// - "project" {name}: {"description", "notes": [...]}.
/// - "describe" {name, text}; "note" {name, author, message, time}.
store_answer run(const redis_tx& tx, const std::string& op, const std::vector<std::string>& args);

/// Every tracking key of a job, for deleting it with the job.
std::vector<std::string> tracking_keys(const std::string& job_id);

/// A new random secret (256 bits from the kernel's CSPRNG, hex).
std::string new_job_secret();

/// SHA-256 of `secret`, hex: what Redis keeps instead of the secret.
std::string secret_digest(std::string_view secret);

} // namespace atlas::dashboard
