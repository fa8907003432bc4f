#pragma once

#include <string>

// Logging set-up. spdlog stays out of this header: code that logs includes
// <spdlog/spdlog.h> in its .cpp and uses spdlog's default logger, e.g.
//
//   spdlog::info("job started job_id={} slot={}", id, slot);
//
// Log lines read `2026-01-01T10:00:00.123Z info [node=n1] message` (UTC,
// millisecond precision). Inside the message, use the same keys everywhere
// so that logs can be grepped across nodes:
//   job_id=<id>   the job a line is about
//   slot=<name>   the worker slot a line is about
//   node=<id>     another node (the local one is already in the prefix)
// and name the acting actor first, e.g. "master: job queued job_id=42".

namespace atlas {

/// True when `level` is one init_logging accepts: trace, debug, info, warn
/// (or warning), error, in any letter case. For config validation.
bool is_valid_log_level(const std::string& level);

/// Makes spdlog's default logger write lines of the format above, at
/// `level` and above, to `file` (appended to; it and missing directories
/// are created; once it reaches `max_bytes` it becomes `<file>.1`, the
/// older ones shift up and the one past `max_files` goes) or to stderr when
/// `file` is empty (coloured only on a terminal). A file gets each line at
/// once; on stderr lines at warn and above are flushed at once, the rest at
/// least every second.
///
/// Returns false, with the reason in `*error` when given, for an unknown
/// level or a file that cannot be opened; logging is then left as it was.
/// Never throws.
///
/// Threads: call it at start-up, before other threads log. It may be called
/// again (e.g. by tests), but only while no other thread is logging.
[[nodiscard]] bool init_logging(const std::string& level, const std::string& file,
                                const std::string& node_id, std::string* error = nullptr,
                                size_t max_bytes = 10u << 20, size_t max_files = 5);

/// Flushes the log and ends the once-a-second flusher thread; call it last
/// thing before exit. Logging still works afterwards, flushed on warn only.
/// Never throws.
void shutdown_logging();

} // namespace atlas
