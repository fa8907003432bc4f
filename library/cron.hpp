#pragma once

// Cron schedules for scheduled jobs, in plain C++. Every time is UTC
// (seconds since the epoch): there is no daylight saving to skip or repeat,
// so a schedule fires exactly once per matching second.
//
// Accepted: the standard five fields "minute hour day-of-month month
// day-of-week", each `*`, a number, a list `a,b`, a range `a-b`, a step
// `*/n` or `a-b/n` or `a/n`, month names JAN-DEC and day names SUN-SAT
// (0 and 7 are Sunday); the macros @yearly @annually @monthly @weekly
// @daily @midnight @hourly; and an optional leading sixth field for the
// second ("*/5 * * * * *": every five seconds), which the original's
// APScheduler also had and which lets tests wait seconds, not minutes.
// When both day fields are restricted a day matches either (as in Vixie
// cron).

#include <bitset>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace atlas::cron {

struct schedule {
  std::bitset<60> seconds;
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;     // 1-31
  std::bitset<13> months;   // 1-12
  std::bitset<7> weekdays;  // 0 = Sunday
  bool days_star = true;     // day-of-month was `*`
  bool weekdays_star = true; // day-of-week was `*`
  std::string text;          // the expression as given (normalised spaces)
  std::string fields[6];     // second minute hour day month day_of_week, as given
};

/// Parses an expression; nullopt with `error` saying which field is wrong.
std::optional<schedule> parse(const std::string& text, std::string& error);

/// The original's dict form (APScheduler cron fields: second, minute, hour,
/// day, month, day_of_week with 0 = Monday, plus year/week only as "*"),
/// as an expression parse() takes. As APScheduler does, fields less
/// significant than the least significant one given default to their
/// minimum and the others to `*`. nullopt with `error` on an unknown or
/// unsupported field.
std::optional<std::string> from_fields(const std::map<std::string, std::string>& fields,
                                       std::string& error);

/// The first time strictly after `after` (epoch seconds, UTC) that matches;
/// nullopt when none comes within five years (e.g. "0 0 30 2 *").
std::optional<int64_t> next_after(const schedule& s, int64_t after);

/// The last matching time in (after, now], found by stepping forward from
/// `after` (at most `max_steps` matches); nullopt when there is none.
std::optional<int64_t> latest_due(const schedule& s, int64_t after, int64_t now,
                                  uint64_t max_steps = 1'000'000);

/// "YYYYmmdd_HHMMSS" of a UTC epoch time: the suffix of a fired job's id,
/// as the original named scheduled runs.
std::string stamp(int64_t t);

} // namespace atlas::cron
