#pragma once

// atlas-ctl's usage table and event lines (`usage`, `events`): pure
// formatting and parsing, no CAF and no I/O, unit-tested alone like render.hpp.

#include <cstdint>
#include <string>
#include <vector>

#include "adapters/status.hpp"
#include "library/usage.hpp"
#include "runtime/ctl/render.hpp"

namespace atlas::ctl {

/// An epoch time from "YYYY-MM-DD" (a UTC day: its first second, or with
/// `end_of_day` its last) or from epoch seconds ("1714521600", "1714521600.5").
result<double> parse_when(const std::string& text, bool end_of_day);

/// "512 B", "1.5 KiB", "3.0 GiB"; "-" for 0.
std::string format_bytes(uint64_t bytes);

/// An amount of (slot, GPU, CPU) time: "12.0s", "4.5m", "3.2h"; "-" for 0.
std::string format_amount(double seconds);

/// The aggregated rows of `usage`: a title line (the UTC days, what they
/// are summed by), then one row per name and a total.
std::string usage_text(const std::vector<usage::totals>& rows, const std::string& by,
                       double since, double until, const render_options& o);

/// One line (no newline) of `events` for an event object (library/events.hpp):
/// local time, kind, then for a job its id, from→state, slot, reason, return
/// code; for a node the node, what happened and the detail. Text that is not
/// an event comes back as it is.
std::string event_line(const std::string& event_json, const render_options& o);

} // namespace atlas::ctl
