#include "library/column_page.hpp"

#include <algorithm>
#include <cstdlib>

#include "library/job_index.hpp"
#include "messages/redis_keys.hpp"

namespace atlas::job_index {

namespace {

using outcome = column_page::outcome;

/// Fills `page` from the project's listing after `from` (a tail cursor)
/// with the jobs `index` does not hold.
bool read_tail(const redis_reads& reads, const std::string& project, const std::string& index,
               cursor from, uint64_t limit, column_page& page) {
  uint64_t scanned = 0;
  auto chunk = std::clamp<uint64_t>(2 * (limit - page.ids.size()), 100, max_page);
  while (page.ids.size() < limit) {
    std::optional<cursor> at;
    if (!from.id.empty())
      at = from;
    auto listed = reads({page_reads(keys::project_jobs(project), at, chunk)[0]});
    if (!listed || listed->size() != 1)
      return false;
    auto rows = take_page((*listed)[0], at, chunk);
    if (rows.ids.empty())
      return true; // the listing's end
    std::vector<std::string> scores{"ZMSCORE", index};
    scores.insert(scores.end(), rows.ids.begin(), rows.ids.end());
    auto held = reads({scores});
    if (!held || held->size() != 1 || (*held)[0].elements.size() != rows.ids.size())
      return false;
    for (size_t i = 0; i < rows.ids.size(); ++i) {
      from = rows.at[i];
      from.tail = true;
      ++scanned;
      if ((*held)[0].elements[i].type == redis_reply::kind::nil)
        page.ids.push_back(rows.ids[i]);
      bool more = i + 1 < rows.ids.size() || rows.next;
      if (!more)
        return true;
      if (page.ids.size() == limit || scanned >= max_tail_scan) {
        page.next = to_string(from);
        return true;
      }
    }
  }
  return true;
}

} // namespace

column_page read_column_page(const redis_reads& reads, const std::string& project,
                             const std::string& column, bool descending,
                             const std::string& cursor_text, uint64_t limit) {
  column_page page;
  std::optional<cursor> from;
  if (!cursor_text.empty() && !(from = parse_cursor(cursor_text))) {
    page.result = outcome::bad_cursor;
    return page;
  }
  limit = std::clamp<uint64_t>(limit, 1, max_page);
  bool bare = column.rfind("metric:", 0) != 0 && column.rfind("param:", 0) != 0;
  std::vector<cmd> first{{"GET", keys::listing_version}, {"GET", keys::indexes_built},
                         {"ZCARD", keys::project_jobs(project)}};
  if (bare) {
    first.push_back({"EXISTS", keys::project_column(project, "param:" + column)});
    first.push_back({"EXISTS", keys::project_column(project, "metric:" + column)});
  }
  auto known = reads(first);
  if (!known || known->size() != first.size()) {
    page.result = outcome::unavailable;
    return page;
  }
  page.version = std::strtoull((*known)[0].str.c_str(), nullptr, 10);
  page.total = static_cast<uint64_t>(std::max<int64_t>(0, (*known)[2].integer));
  auto resolved = column;
  if (bare && (*known)[3].integer > 0)
    resolved = "param:" + column;
  else if (bare && (*known)[4].integer > 0)
    resolved = "metric:" + column;
  if ((*known)[1].str != generation || (bare && resolved == column)) {
    page.result = outcome::not_indexed;
    return page;
  }
  auto index = keys::project_column(project, resolved);
  if (!from || !from->tail) {
    auto read = reads(page_reads(index, from, limit, !descending));
    if (!read || read->size() != 2) {
      page.result = outcome::unavailable;
      return page;
    }
    auto rows = take_page((*read)[0], from, limit, !descending);
    page.ids = std::move(rows.ids);
    if (rows.next) {
      page.next = to_string(*rows.next);
      return page;
    }
    auto valued = static_cast<uint64_t>(std::max<int64_t>(0, (*read)[1].integer));
    if (page.total <= valued)
      return page; // every job has a number: no second part
    if (page.ids.size() == limit) {
      page.next = "~";
      return page;
    }
    from = cursor{};
    from->tail = true;
  }
  if (!read_tail(reads, project, index, *from, limit, page))
    page.result = outcome::unavailable;
  return page;
}

} // namespace atlas::job_index
