#pragma once

// One page of a project's job listing sorted by a metric or a parameter,
// from its index (keys::project_column) and the project's listing. Plain
// C++ over a function that runs Redis reads (one round trip per call).
//
// The jobs whose latest value is a number come first, in its order; the
// jobs with a text value or none follow, newest first (read from the
// project's listing, skipping those the column's index holds). A page's
// cost does not depend on the project's size: a page in that second part
// reads at most max_tail_scan of the listing's ids, and may then hold fewer
// rows than asked, with a next cursor.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "adapters/redis_client.hpp"

namespace atlas::job_index {

using redis_reads = std::function<std::optional<std::vector<redis_reply>>(
  const std::vector<std::vector<std::string>>&)>;

/// The most ids of the listing one page looks at in the second part.
inline constexpr uint64_t max_tail_scan = 10'000;

struct column_page {
  enum class outcome : uint8_t { page, not_indexed, bad_cursor, unavailable } result = outcome::page;
  std::vector<std::string> ids; // the page, in order
  uint64_t total = 0;           // the project's jobs
  std::string next;             // "" on the last page
  uint64_t version = 0;         // the listing version it was read at
};

/// `column`: "metric:<name>", "param:<name>", or a bare name (a parameter
/// when the project has one indexed by that name, else a metric).
/// not_indexed when the indexes are being built or a bare name is neither
/// (the caller reads the project's records instead).
column_page read_column_page(const redis_reads& reads, const std::string& project,
                             const std::string& column, bool descending,
                             const std::string& cursor, uint64_t limit);

} // namespace atlas::job_index
