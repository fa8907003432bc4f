#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace atlas {

/// The observed lifecycle of a job. Written once here, with its terminal set
/// and its legal transitions; every actor and route goes through these.
///
///   queued -> pending -> running -> completed | failed | cancelled
///   queued | pending -> cancelled | failed
///   pending | running -> lost -> queued (requeued while retries remain) | failed
enum class job_state : uint8_t {
  queued,
  pending,
  running,
  completed,
  failed,
  cancelled,
  lost,
};

/// Every state, in the enum's order.
inline constexpr job_state all_job_states[] = {job_state::queued,    job_state::pending,
                                               job_state::running,   job_state::completed,
                                               job_state::failed,    job_state::cancelled,
                                               job_state::lost};

std::string_view to_string(job_state x);

/// Parses the names written by to_string.
std::optional<job_state> parse_job_state(std::string_view name);

/// True for states a job never leaves.
bool is_terminal(job_state x);

/// True when the lifecycle allows going from `from` to `to`.
bool can_transition(job_state from, job_state to);

/// The status the original Atlas API reports: queued, pending, running,
/// completed or failed (cancelled and lost fold into failed and queued).
std::string_view api_status(job_state x);

/// Which listing of the original API a job appears in: queued_jobs,
/// running_jobs, completed_jobs or failed_jobs.
std::string_view listing_of(job_state x);

} // namespace atlas
