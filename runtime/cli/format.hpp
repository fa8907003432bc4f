#pragma once

// Small pieces of the `foundations` CLI with no I/O, kept in the core library
// so they can be unit-tested without the command line.

#include <string>

namespace atlas::cli {

/// A new random job id (UUID version 4, lower-case hex with dashes).
std::string new_job_id();

/// "1h02m03s", "4m05s", "12s" for a duration in seconds; negative counts as 0.
std::string format_duration(long long seconds);

} // namespace atlas::cli
