#pragma once

// The sorted indexes that page job listings and drive retention (plain C++,
// no actors; key names in messages/redis_keys.hpp). A listing reads one page
// of ids from a sorted set, newest first, then only those records, so its
// cost does not grow with the number of jobs.
//
// Like the state sets, these are indexes: the record is the truth. An id
// without a record, or whose record no longer belongs to the list (another
// project, another state), is skipped by readers, so index writes need no
// transaction and a write cut off half way loses nothing.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adapters/redis_client.hpp"
#include "messages/job.hpp"

namespace atlas::job_index {

using cmd = std::vector<std::string>;

/// The most rows one page holds (a larger limit is cut to it).
inline constexpr uint64_t max_page = 1000;

/// The most jobs of a project a listing reads when no index serves its
/// filter or sort (a user, a tag, a sort by two columns): its newest. Such
/// a page of a larger project says it looked at these only.
inline constexpr uint64_t max_scan = 10'000;

/// What keys::indexes_built holds once every index of this version holds
/// every job ("2": with the metric and parameter indexes). Any other value
/// (an older version's "1", none) has the active master index them again.
inline constexpr const char* generation = "2";

/// The scheduler list a finished state belongs to ("completed_jobs",
/// "failed_jobs" for failed and cancelled); "" for unfinished states.
std::string list_of(job_state s);

/// The statuses a listing filters by from an index (api_status's words).
bool indexed_status(const std::string& status);

/// A new job: into its project's listing, its status's and the set of
/// projects; a sweep's trial also into its sweep's trials and its project's sweeps.
std::vector<cmd> added(const job_record& rec);

/// A job whose record moves from state `from` (when known) to its state:
/// out of the old status's index, into the new one's (nothing when the
/// status stays; only the ZADD when `from` is unknown).
std::vector<cmd> moved(const job_record& rec, std::optional<job_state> from);

/// Into its status's index and out of every other (the repair path).
std::vector<cmd> restatus(const job_record& rec);

/// A finished job (is_terminal): into its project's and its list's ended
/// indexes, by end time. Nothing for other states.
std::vector<cmd> ended(const job_record& rec);

/// A removed job: out of every index.
std::vector<cmd> removed(const job_record& rec);

/// An unfinished job found in the ended indexes (an entry gone stale): out
/// of those only, its listings untouched.
std::vector<cmd> unended(const job_record& rec);

/// What a listing shows changed: ?since= pollers read again.
cmd bump_version();

/// A job's latest value of a sortable column ("metric:<name>" or
/// "param:<name>") was written: a number goes into the column's index, a
/// text takes the job out of it (text and missing values are not ordered).
cmd column_value(const std::string& project, const std::string& id, const std::string& column,
                 std::optional<double> number);

/// The reads that name a job's columns (its metric and parameter hashes'
/// fields), for columns_removed.
std::vector<cmd> column_reads(const std::string& id);

/// A removed job: out of the index of each column `reads` (column_reads'
/// two replies) name.
std::vector<cmd> columns_removed(const std::string& project, const std::string& id,
                                 const redis_reply& metric_names, const redis_reply& param_names);

/// A position in a listing: the last row's score and id, and how many rows
/// at that score were given so far (metric values tie often), as text
/// "<score>:<id>[:<tied>]" (ids never contain ':'). A column's listing
/// follows its numbers with the jobs that have none, newest first: its
/// cursors there start with '~' ("~" alone: that part's first row).
struct cursor {
  double score = 0;
  std::string id;
  uint64_t tied = 1;
  bool tail = false;
};

/// Nullopt for text that is no cursor (a 400 for the caller).
std::optional<cursor> parse_cursor(const std::string& text);
std::string to_string(const cursor& c);

/// The reads of one page of `key` after `from`, highest score first (or
/// lowest, `ascending`): the page's ids with their scores (a few more than
/// `limit`: rows at the cursor's score that came before it, and one to know
/// whether more follow), then ZCARD (the total).
std::vector<cmd> page_reads(const std::string& key, const std::optional<cursor>& from,
                            uint64_t limit, bool ascending = false);

/// The ids of one page from Z[REV]RANGEBYSCORE ... WITHSCORES replies.
struct page_ids {
  std::vector<std::string> ids;
  std::vector<cursor> at;     // each row's position (a cursor to resume after it)
  std::optional<cursor> next; // set when more rows follow
};

/// Reads `reply` (member, score pairs) after `from`: rows at the cursor's
/// score whose id is not past the cursor's came before it (Redis orders
/// equal scores by id, the same way as the scores) and are dropped.
page_ids take_page(const redis_reply& reply, const std::optional<cursor>& from, uint64_t limit,
                   bool ascending = false);

/// The score of `rec` in its project's listing: its submission order.
int64_t submit_score(const job_record& rec);

/// Its score in the ended indexes: its end time in microseconds.
int64_t end_score(const job_record& rec);

} // namespace atlas::job_index
