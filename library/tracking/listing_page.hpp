#pragma once

// Paging of the job listing (GET /api/v2beta/projects/<p>/job_listing):
// `limit` (at most job_index::max_page rows, also the cap when none is
// asked, so one request never serialises a whole project), `cursor` (the
// `next_cursor` of the page before) and `since` (the `version` of the last
// answer: "unchanged" while nothing a listing shows was written). Plain C++.
//
// In its default order (newest first), unfiltered or filtered by one
// status, a page is read from the project's sorted index (of that status);
// sorted by one metric or parameter, unfiltered, from that column's index
// (library/column_page.hpp): its cost does not depend on the project's size.
// Any other sort or filter reads the records of the project's newest
// job_index::max_scan jobs and answers one page of the result; its cursor
// is then an offset ("@<n>"), and the answer says how many jobs were read
// of how many (`scanned_jobs`, `project_jobs`).

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace atlas::dashboard {

struct listing_page_request {
  uint64_t limit = 0;
  std::string cursor;
  std::optional<uint64_t> since;
  std::map<std::string, std::string> rest; // the filters and sorts (listing_query.hpp)
  bool by_index = true;                    // the default order: the index serves it
  std::string status;                      // by_index: only jobs of this status ("" all)
  std::string column;                      // by_index: sorted by this metric or parameter
  bool descending = false;                 // ... from its highest value
  uint64_t offset = 0;                     // !by_index: where the page starts
};

/// Nullopt with `error` (a 400) for a bad limit, cursor or since.
std::optional<listing_page_request> parse_listing_page(std::map<std::string, std::string> query,
                                                       std::string& error);

/// The answer's paging fields, and the rows job_listing_json keeps.
struct listing_page {
  uint64_t version = 0;
  bool indexed = false;   // the rows given are the page (total, next as the index said)
  uint64_t total = 0;
  std::string next;       // "" on the last page
  uint64_t offset = 0;    // !indexed: the page is rows [offset, offset + limit)
  uint64_t limit = 0;
  uint64_t scanned = 0;      // !indexed: the project's newest jobs read (job_index::max_scan at most)
  uint64_t project_jobs = 0; // !indexed: of how many
};

/// {"unchanged": true, "version": v}: the answer to a `since` that is current.
std::string unchanged_json(uint64_t version);

/// `query` with its cursor replaced by `cursor`, as a query string (the
/// Link header's next page).
std::string query_with_cursor(std::map<std::string, std::string> query, const std::string& cursor);

} // namespace atlas::dashboard
