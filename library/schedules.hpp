#pragma once

// Scheduled jobs (the original's /scheduled_jobs): a submission template
// with its bundle and a cron schedule (library/cron.hpp, UTC). Stored in
// Redis as JSON (messages/redis_keys.hpp `schedules`); the scheduler actor
// (actors/scheduler.hpp) fires them. No actors here.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/status.hpp"
#include "messages/job.hpp"

namespace atlas {

struct scheduled_job {
  std::string id;                  // the original's job_id of the schedule
  std::string owner;               // who created it (-p mode; "" otherwise)
  std::vector<std::string> groups; // the owner's quota groups when created
  std::string submission;          // JSON: the POST /queued_jobs body each run is made from
  std::string project_name;        // from the submission's metadata, for ?project=
  std::string cron;                // the expression; "" = no schedule (never fires)
  bool paused = false;
  int64_t after = 0;               // due times up to this one (epoch s) are handled
  double created = 0;
  uint64_t runs = 0;               // runs fired
  std::string last_job;            // the id of the last run fired
};

/// The longest schedule id: a run's id appends "_YYYYmmdd_HHMMSS".
constexpr size_t max_schedule_id = 48;

std::string to_json(const scheduled_job& s);
result<scheduled_job> scheduled_job_from_json(std::string_view text);

/// A POST /scheduled_jobs body: the fields POST /queued_jobs takes (checked
/// the same way) plus `schedule`, a cron expression string or the
/// original's dict of cron fields (absent or {}: created paused, as the
/// original did). Unknown fields are refused. `now` starts its schedule.
/// Fails with a message fit for a 400 answer.
result<scheduled_job> scheduled_job_from_request(std::string_view body, std::string owner,
                                                 std::vector<std::string> groups, int64_t now);

/// The cron expression in a PATCH body {"schedule": "<expr>" | {fields}};
/// fails (400) on a missing, empty or bad schedule.
result<std::string> schedule_from_body(std::string_view body);

/// Checks an expression (as from_fields or a client gave it); "" is fine.
status check_cron(const std::string& expr);

/// The id of the run due at `due`: "<schedule id>_<YYYYmmdd_HHMMSS>" (UTC),
/// the original's naming; the same due time always gives the same id, so a
/// run fired twice (a master restarted right after firing) is refused as
/// a job that exists.
std::string run_id(const std::string& schedule_id, int64_t due);

/// The job the run due at `due` submits: the template with the run's id,
/// the owner, the owner's groups and schedule_id set.
result<job_record> run_of(const scheduled_job& s, int64_t due);

/// The original's answer entry: {next_run_time: [3 epoch seconds or null],
/// schedule: {second, minute, hour, day, month, day_of_week, week, year,
/// start_date, end_date, cron}, status: active|paused, properties:
/// <submission>}, plus owner, runs and last_job.
std::string answer_entry(const scheduled_job& s, int64_t now);

/// When the schedule fires next after `now` (and after what it has
/// handled); 0 when paused or without a schedule.
int64_t next_due(const scheduled_job& s, int64_t now);

} // namespace atlas
