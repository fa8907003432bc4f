#include "messages/job_state.hpp"

namespace atlas {

std::string_view to_string(job_state x) {
  switch (x) {
    case job_state::queued: return "queued";
    case job_state::pending: return "pending";
    case job_state::running: return "running";
    case job_state::completed: return "completed";
    case job_state::failed: return "failed";
    case job_state::cancelled: return "cancelled";
    case job_state::lost: return "lost";
  }
  return "unknown";
}

std::optional<job_state> parse_job_state(std::string_view name) {
  for (auto s : {job_state::queued, job_state::pending, job_state::running,
                 job_state::completed, job_state::failed, job_state::cancelled,
                 job_state::lost})
    if (to_string(s) == name)
      return s;
  return std::nullopt;
}

bool is_terminal(job_state x) {
  return x == job_state::completed || x == job_state::failed
         || x == job_state::cancelled;
}

bool can_transition(job_state from, job_state to) {
  using s = job_state;
  switch (from) {
    case s::queued:
      return to == s::pending || to == s::cancelled || to == s::failed;
    case s::pending:
      return to == s::running || to == s::cancelled || to == s::failed
             || to == s::lost || to == s::queued;
    case s::running:
      return to == s::completed || to == s::failed || to == s::cancelled
             || to == s::lost;
    case s::lost:
      return to == s::queued || to == s::failed;
    case s::completed:
    case s::failed:
    case s::cancelled:
      return false;
  }
  return false;
}

std::string_view api_status(job_state x) {
  switch (x) {
    case job_state::queued:
    case job_state::lost: return "queued";
    case job_state::pending: return "pending";
    case job_state::running: return "running";
    case job_state::completed: return "completed";
    case job_state::failed:
    case job_state::cancelled: return "failed";
  }
  return "failed";
}

std::string_view listing_of(job_state x) {
  switch (x) {
    case job_state::queued:
    case job_state::lost: return "queued_jobs";
    case job_state::pending:
    case job_state::running: return "running_jobs";
    case job_state::completed: return "completed_jobs";
    case job_state::failed:
    case job_state::cancelled: return "failed_jobs";
  }
  return "failed_jobs";
}

} // namespace atlas
