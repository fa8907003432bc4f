#pragma once

// The job listing's query (GET /api/v2beta/projects/<p>/job_listing): the
// original foundations_rest_api's filters and sorts, plus ours. Plain C++.
//
//   <col>=a,b          the column's value is one of a, b (exact)
//   <col>_contains=x   its text contains x (case-insensitive)
//   <col>_starts=a & <col>_ends=b   a <= value <= b (both needed)
//   <col>_isnull=true|false         it has no value / has one
//   sort=a,-b          by a, ties by b descending ('-': descending)
//   tag=<key>[:<value>], limit=<n>  ours
//
// Columns: job_id, user, project, status, state, creation_time, start_time,
// completed_time, duration (seconds), param:<name>, metric:<name>, or a bare
// parameter or metric name (parameters first), as the original looked up.
// Numbers sort before texts, and jobs without a value last either way; a
// page sorted by one metric or parameter from its index has the jobs with
// a text value among those without one, newest first.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "adapters/json.hpp"
#include "messages/job.hpp"

namespace atlas::dashboard {

/// A column's value in one job: a number, a text, or none.
struct column_value {
  int rank = 2; // 0 number, 1 text, 2 none (sorts last either way)
  double n = 0;
  std::string s;
};

/// `column` of a job; `track` is its tracking summary (params, metrics, tags).
column_value column_of(const job_record& r, const json::value* track, const std::string& column,
                       double now);

struct listing_filter {
  std::string column;
  enum class kind : uint8_t { one_of, contains, range, is_null } how = kind::one_of;
  std::vector<std::string> options; // one_of: the choices; contains: [text]; range: [a, b]
  bool null_wanted = false;         // is_null
};

struct listing_query {
  std::vector<std::pair<std::string, bool>> sorts; // (column, descending), first decides first
  std::vector<listing_filter> filters;
  std::string tag;
  size_t limit = SIZE_MAX;
};

/// Parses the query; nullopt with `error` (for a 400) when a value is bad.
/// Without a sort: newest first (-creation_time).
std::optional<listing_query> parse_listing_query(const std::map<std::string, std::string>& query,
                                                 std::string& error);

/// Whether `column` is one of the job's own columns (job_id ... duration).
bool is_job_column(const std::string& column);

/// The first column `q` sorts or filters by that is no job column, no
/// param:/metric:<name> and none of `names` (the project's parameter and
/// metric names); "" when there is none. The original matched nothing for
/// such a column; a typo deserves a clear 400 instead.
std::string unknown_column(const listing_query& q, const std::set<std::string>& names);

/// Whether a job passes every filter of `q`.
bool passes(const listing_query& q, const job_record& r, const json::value* track, double now);

/// Whether a sorts before b under `q`'s sorts.
bool sorts_before(const listing_query& q, const job_record& a, const json::value* ta,
                  const job_record& b, const json::value* tb, double now);

} // namespace atlas::dashboard
