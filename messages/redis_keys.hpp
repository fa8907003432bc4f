#pragma once

// Every Redis key this system uses, in one place. Values are plain strings
// and JSON, never pickles. A name is never reused for another meaning.

#include <string>
#include <string_view>

namespace atlas::keys {

/// String: the job record as JSON (library/job_codec.hpp).
inline std::string job(std::string_view id) { return "atlas:job:" + std::string(id); }

/// Set: ids of every job, as stores written before the listing indexes
/// hold them. No longer written (atlas:index:all holds every id); read only
/// until such a store's indexes are built, then removed.
inline constexpr const char* all_jobs = "atlas:jobs";

/// Set: ids of the jobs in one state ("queued", "running", ...; not
/// "completed" nor "failed": their ended lists hold those, see
/// actors/policy/lookup_writes.hpp).
inline std::string state_set(std::string_view state) {
  return "atlas:state:" + std::string(state);
}

/// String: the master's CAF endpoint "host:port", written when it starts;
/// worker nodes find the master through it.
inline constexpr const char* master_endpoint = "atlas:master:endpoint";

/// String: the active master's lease, "<epoch> <node_id> <host_address>",
/// with a TTL (runtime/master_lease.hpp). Every master write checks it.
inline constexpr const char* master_lease = "atlas:master:lease";

/// Integer: the last epoch handed out; one more per new lease holder.
inline constexpr const char* master_epoch = "atlas:master:epoch";

/// Sorted set: "<node_id> <host_address>" of standby masters, scored by the
/// time (ms) they last said so.
inline constexpr const char* master_standbys = "atlas:master:standbys";

/// Hash, the original's lookup table: field = job id, value = HOST_ADDRESS
/// of the node that runs or ran the job.
inline constexpr const char* routing_map = "routing_map:job_id";

/// Sorted set: a project's job ids scored by submission order (the
/// record's seq): the job listing's pages, newest first.
inline std::string project_jobs(std::string_view project) {
  return "atlas:index:jobs:" + std::string(project);
}

/// Sorted set: every job id scored by submission order (all projects):
/// the pages of /api/v1/jobs and `foundations list`.
inline constexpr const char* jobs_by_order = "atlas:index:all";

/// Sorted set: a project's job ids whose status (job_state.hpp api_status:
/// queued, pending, running, completed, failed) is `status`, scored by
/// submission order: the job listing's pages filtered by status.
inline std::string project_status(std::string_view project, std::string_view status) {
  return "atlas:index:status:" + std::string(status) + ":" + std::string(project);
}

/// Sorted set: a project's finished job ids scored by end time (µs):
/// retention removes from its oldest end.
inline std::string project_ended(std::string_view project) {
  return "atlas:index:ended:" + std::string(project);
}

/// Sorted set: finished job ids of one of the scheduler's lists
/// ("completed_jobs", or "failed_jobs" for failed and cancelled) scored by
/// end time (µs): its pages, newest first.
inline std::string ended_list(std::string_view list) {
  return "atlas:index:list:" + std::string(list);
}

/// Sorted set: a project's job ids whose latest value of a column
/// ("metric:<name>" or "param:<name>") is a number, scored by it: the job
/// listing's pages sorted by that metric or parameter. The project's length
/// comes first so that no two (project, column) pairs share a key.
inline std::string project_column(std::string_view project, std::string_view column) {
  return "atlas:index:column:" + std::to_string(project.size()) + ":" + std::string(project) + ":"
         + std::string(column);
}

/// Sorted set: the trial ids of one sweep of a project, scored by
/// submission order (the sweep's view).
inline std::string sweep_trials(std::string_view project, std::string_view sweep_id) {
  return "atlas:index:sweep:" + std::to_string(project.size()) + ":" + std::string(project) + ":"
         + std::string(sweep_id);
}

/// Sorted set: a project's sweep ids scored by their first trial's
/// submission order (the sweeps list, newest first). A sweep whose trials
/// were all removed stays, with no trials (readers skip it).
inline std::string project_sweeps(std::string_view project) {
  return "atlas:index:sweeps:" + std::string(project);
}

/// Set: every project that has or had a job (retention walks it).
inline constexpr const char* projects = "atlas:index:projects";

/// Integer: bumped by every write that changes what a job listing shows
/// (a record, its tracking data, a removal): ?since=<version> answers
/// "unchanged" while it stays.
inline constexpr const char* listing_version = "atlas:index:version";

/// String: job_index::generation once the sorted indexes above hold every
/// job (a store from before them is indexed once by the active master);
/// until then listings read every record as they did before.
inline constexpr const char* indexes_built = "atlas:index:built";

/// Hash: scheduled job id -> its JSON (library/schedules.hpp): the run
/// template, cron schedule, paused flag and the last due time handled.
/// Written by the active master only (fenced).
inline constexpr const char* schedules = "atlas:schedules";

} // namespace atlas::keys

// --- Experiment tracking (the in-job SDK, library/tracking/store.hpp).
// Removed together with the job (lookup delete). Ids are validated job
// ids, so they never contain ':'.
namespace atlas::keys {

/// String: SHA-256 (hex) of the job's tracking secret, set at dispatch.
inline std::string job_secret(std::string_view id) { return job(id) + ":secret"; }

/// Hash: metric name -> JSON {"value": number|string, "step": n, "time": t},
/// its latest value (job listings read only this).
inline std::string job_metrics(std::string_view id) { return job(id) + ":metrics"; }

/// List: every logged metric value in order, JSON {"key","value","step","time"}.
inline std::string job_metric_series(std::string_view id) { return job(id) + ":series"; }

/// Hash: metric name -> "<times logged>\n<value>\n<value>..." (JSON values, the
/// last dashboard::max_listed_metric_values of them): the listing's value lists.
inline std::string job_metric_values(std::string_view id) { return job(id) + ":metric_values"; }

/// Hash: parameter name (nested names flattened "a_b") -> JSON value.
inline std::string job_params(std::string_view id) { return job(id) + ":params"; }

/// Hash: tag -> value (a string, "" for a bare tag).
inline std::string job_tags(std::string_view id) { return job(id) + ":tags"; }

/// Hash: artifact key -> JSON {"path" (relative to the job's run directory), "size", "time"}.
inline std::string job_artifacts(std::string_view id) { return job(id) + ":artifacts"; }

/// Hash: project name -> its description (dashboard).
inline constexpr const char* project_descriptions = "atlas:project:descriptions";

/// List: a project's notes, JSON {"date","author","message"}, oldest first.
inline std::string project_notes(std::string_view project) {
  return "atlas:project:notes:" + std::string(project);
}

} // namespace atlas::keys

// --- Usage accounting (library/usage.hpp) and the event stream
// (library/events.hpp). Kept when a job is removed.
namespace atlas::keys {

/// Hash: one UTC day's usage totals, field "<user>\t<project>\t<measure>".
inline std::string usage_day(std::string_view day) { return "atlas:usage:" + std::string(day); }

/// Sorted set: one UTC day's peak memory per "<user>\t<project>" (bytes).
inline std::string usage_peak(std::string_view day) {
  return "atlas:usage:peak:" + std::string(day);
}

/// String with a TTL of a day: this job's end was counted (its usage and
/// final events); a final write sent again counts nothing twice.
inline std::string job_ended(std::string_view id) { return "atlas:job:" + std::string(id) + ":ended"; }

/// Set: every day that has usage totals.
inline constexpr const char* usage_days = "atlas:usage:days";

/// Stream: job transitions and node events, oldest first, capped (MAXLEN ~).
inline constexpr const char* events = "atlas:events";

/// Hash: notification sink name -> the last stream id of `events` that sink
/// is done with (delivered, given up, dropped or not wanted), so that a new
/// master neither sends again nor skips (library/notifier.hpp).
inline constexpr const char* notify_cursors = "atlas:notify:cursors";

} // namespace atlas::keys
