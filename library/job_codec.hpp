#pragma once

// A job record as JSON: the same text in Redis and in API answers.

#include <optional>
#include <string>
#include <string_view>

#include "adapters/json.hpp"
#include "adapters/status.hpp"
#include "messages/job.hpp"

namespace atlas {

/// The record as one JSON object: every field of job_record, plus `status`
/// (the original API's name for the state) and `gpu_spec`.
std::string to_json(const job_record& rec);

/// The record as Redis stores it: to_json without what job_from_json
/// rebuilds (the status, fields at their defaults, the plain metadata, a
/// history entry's slot when it is the job's), so a finished record is small.
std::string to_stored_json(const job_record& rec);

/// Writes the record's members into an object already begun on `w`.
void write_job_fields(json::writer& w, const job_record& rec);

/// Reads a record written by to_json or to_stored_json; fails saying why otherwise.
result<job_record> job_from_json(std::string_view text);

/// Builds a new record from a POST /queued_jobs body:
/// {job_id, spec, metadata:{project_name, username}, gpu_spec:{num_gpus}, priority,
/// max_retries, time_limit (seconds), after: ["<job_id>[:ok|:any|:failed]", ...],
/// params (an object: foundations_job_parameters.json in its directory), sweep_id};
/// spec.cpus and spec.mem_limit are what it asks for. Fails with a message
/// fit for a 400 answer.
result<job_record> job_from_submission(std::string_view body);

/// The submission's "bundle" (the SHA-256 of a bundle uploaded to
/// POST /api/v1/bundles, used instead of an upload under the job's id);
/// "" when it names none. Fails when it is not 64 lowercase hex digits.
result<std::string> submission_bundle(std::string_view body);

/// The most dependencies one job may have.
constexpr size_t max_dependencies = 64;
/// The largest `params` object a submission may carry (its JSON text).
constexpr size_t max_params_bytes = 64 * 1024;

/// "<job_id>[:ok|:any|:failed]" (ok when none is given); nullopt otherwise.
std::optional<job_dependency> parse_dependency(std::string_view text);

/// UUIDs or [A-Za-z0-9_-]{1,64}: safe as a path segment and a Redis key part.
bool valid_job_id(std::string_view id);

/// Seconds since the epoch, with sub-second precision.
double now_seconds();

} // namespace atlas
