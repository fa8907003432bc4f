#pragma once

// Usage accounting: what each finished job used, added to per-day totals in
// Redis by the same atomic write that stores its final record (so a job is
// counted exactly once, and its totals outlive the job's own removal).
// Plain C++ (no actors); key names are in messages/redis_keys.hpp.
//
// Layout, per UTC day of the job's end (YYYY-MM-DD):
// - hash  atlas:usage:<day>       field "<user>\t<project>\t<measure>" -> number
//   measures: jobs, slot_seconds, gpu_seconds, gpu_seconds:<model>, cpu_seconds
// - zset  atlas:usage:peak:<day>  member "<user>\t<project>" -> peak memory
//   in bytes of any one of its jobs (ZADD GT keeps the largest)
// - set   atlas:usage:days        every day that has totals

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adapters/redis_client.hpp"
#include "adapters/status.hpp"
#include "library/redis_writer.hpp"
#include "messages/job.hpp"

namespace atlas::usage {

using cmd = std::vector<std::string>;

/// One (day, user, project)'s totals, or an aggregate of several (then the
/// fields that were summed over are empty).
struct totals {
  std::string day;      // YYYY-MM-DD (UTC)
  std::string user;     // "" when the job named none
  std::string project;
  double jobs = 0;
  double slot_seconds = 0;  // wall time on a slot, start to end
  double gpu_seconds = 0;   // wall time x GPUs held
  std::map<std::string, double> gpu_seconds_by_model; // model name -> seconds
  double cpu_seconds = 0;   // user + system CPU time of the job's processes
  uint64_t peak_memory_bytes = 0; // the largest peak of any one job
};

/// The UTC day "YYYY-MM-DD" of an epoch time.
std::string day_of(double epoch_seconds);

/// What a finished job used; nothing (jobs == 0) for a job that never
/// started (cancelled while queued, failed before start).
totals of_job(const job_record& rec);

/// The commands that add a finished job's usage to the totals (HINCRBYFLOAT,
/// ZADD GT, SADD). Empty when the job used nothing.
std::vector<cmd> record(const job_record& rec);

/// The days from `since` to `until` (epoch seconds, inclusive, UTC) that may
/// hold totals: at most `max_days` of them, newest kept.
std::vector<std::string> days_between(double since, double until, size_t max_days = 3660);

/// The reads for `days`: HGETALL and ZRANGE ... WITHSCORES per day, in that order.
std::vector<cmd> reads(const std::vector<std::string>& days);

/// The per-(day, user, project) totals from the replies of reads(days).
std::vector<totals> rows_from(const std::vector<std::string>& days,
                              std::span<const redis_reply> replies);

/// Sums rows by "user", "project" or "day" (anything else fails), sorted by
/// GPU-seconds, then slot-seconds, descending (days: by day, ascending).
result<std::vector<totals>> aggregate(const std::vector<totals>& rows, const std::string& by);

/// JSON: {"by": by, "since": s, "until": u, "rows": [{"user"|"project"|"day": ...,
///   "jobs", "slot_seconds", "gpu_seconds", "gpu_seconds_by_model": {...},
///   "cpu_seconds", "peak_memory_bytes"}, ...]}. With by == "" every
/// (day, user, project) row carries all three names.
std::string to_json(const std::vector<totals>& rows, const std::string& by, double since,
                    double until);

/// The per-(day, user, project) rows of the jobs that ended between `since`
/// and `until`, read on `redis`: to_json()'s text with by "" ; nullopt when
/// Redis is unavailable.
std::optional<std::string> read_rows(redis_writer& redis, double since, double until);

/// Parses to_json()'s "rows" back (atlas-ctl, tests).
result<std::vector<totals>> from_json(const std::string& body);

} // namespace atlas::usage
