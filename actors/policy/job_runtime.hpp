#pragma once

// How a job's spec becomes a process, and how a process's end becomes a job
// state. Plain C++ (no actors) so both are unit-tested alone.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "messages/cluster.hpp"
#include "messages/job.hpp"
#include "library/config.hpp"

namespace atlas {

struct launch {
  std::vector<std::string> argv;
  std::vector<std::string> env; // "K=V"
};

/// Builds the command line (adapters/job_argv) and environment as the original worker image
/// did: `python3 <command...>` unless the spec names an entrypoint, then
/// `<entrypoint...> <command...>`. The environment is this node's, plus
/// spec.environment, plus FOUNDATIONS_JOB_ID/PROJECT_NAME/USER, plus the
/// job's GPUs (job.gpus; on a GPU node a job without GPUs gets none). nullopt with `error` when the spec cannot be run.
std::optional<launch> make_launch(const node_config& cfg, const job_record& job,
                                  const slot_info& slot, const std::string& cwd,
                                  std::string& error);

struct exit_outcome {
  job_state state = job_state::failed;
  std::string reason;
  int64_t return_code = 0;
  bool has_return_code = false;
};

/// Why a slot stopped its job, if it did.
enum class stop_cause {
  none,
  user,       // a user asked: cancelled
  drain,      // its node shuts down: lost, requeued
  preempted,  // made way for a higher priority: lost ("preempted"), requeued
  time_limit, // ran past its time limit: failed ("time limit")
};

/// Maps a process end onto the lifecycle: 0 → completed; a stop (`cause`)
/// as that stop says; anything else → failed with a reason (`failure`, when
/// the runner knows it, e.g. "out of memory", wins over the exit code).
exit_outcome classify_exit(int64_t exit_status, int32_t term_signal,
                           const std::string& start_error, stop_cause cause = stop_cause::none,
                           const std::string& failure = {});

} // namespace atlas
