#pragma once

// What the adapters count for /metrics (library/metrics.hpp reads these at
// scrape time). Plain process-wide atomics, so that an adapter counts
// without depending on the metrics library.

#include <atomic>
#include <cstdint>

namespace atlas::wire_counters {

/// Round trips to Redis (a command or a pipeline), and those that failed
/// (no connection, a broken reply).
inline std::atomic<uint64_t> redis_round_trips{0};
inline std::atomic<uint64_t> redis_errors{0};

/// BASP frames and their bytes relayed between the cluster port (TLS) and
/// CAF: "in" from peers, "out" to them.
inline std::atomic<uint64_t> cluster_frames_in{0};
inline std::atomic<uint64_t> cluster_frames_out{0};
inline std::atomic<uint64_t> cluster_bytes_in{0};
inline std::atomic<uint64_t> cluster_bytes_out{0};

/// HTTP requests answered by the server itself before any route saw them
/// (malformed, too large, timed out), by status class index: 4xx, 5xx.
inline std::atomic<uint64_t> http_refused_4xx{0};
inline std::atomic<uint64_t> http_refused_5xx{0};

} // namespace atlas::wire_counters
