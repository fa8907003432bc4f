#pragma once

// The values of `foundations submit` flags that shape scheduling (--time,
// --after, --cpus, --memory, --ram), parsed with no I/O so they can be
// unit-tested. Each returns nullopt when the text is not a valid value; the
// caller prints one line naming the flag.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::cli {

/// A run time limit in seconds (> 0): "120", "90s", "30m", "2h", "1.5h",
/// "MM:SS" or "H:MM:SS".
std::optional<double> parse_time_limit(std::string_view text);

/// Dependencies as "<job_id>[:ok|:any|:failed]", comma-separated (a
/// repeated --after is joined with commas); at most 64. Each comes back as
/// written, with ":ok" added when no condition was given.
std::optional<std::vector<std::string>> parse_after(std::string_view text);

/// A number of CPUs > 0, fractional allowed ("0.5", "4").
std::optional<double> parse_cpus(std::string_view text);

/// A memory size (adapters/byte_size.hpp: "64M", "1.5g", "512m") > 0, as the
/// normalised text the server reads again (lower case, no spaces).
std::optional<std::string> parse_memory_flag(std::string_view text);

/// --ram: gigabytes > 0, fractional allowed ("4", "1.5"), as mem_limit ("1.5g").
std::optional<std::string> parse_ram_gb(std::string_view text);

} // namespace atlas::cli
