#pragma once

// How a slot runs a job, whatever runs it: a local process group, a Docker
// container, or (benchmarks only) nothing at all. The slot actor keeps the
// job's lifecycle; a runner only starts, signals and reports the end.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "adapters/process.hpp"

namespace atlas {

/// Everything a runner needs to start one job. Plain data.
struct run_request {
  std::string job_id;
  /// Names this run among the node's runs, for signal(). Not the job id: a
  /// discarded copy of a job may still be ending on one slot while the job
  /// runs again on another slot of the same node.
  std::string run_id;
  std::vector<std::string> argv; ///< the command as make_launch built it
  std::vector<std::string> env;  ///< "K=V" each, the job's whole environment
  std::string cwd;               ///< the job's working directory (job_source)
  std::string log_path;          ///< stdout and stderr are appended here
  uint64_t log_cap_bytes = 64ull << 20;
  std::string spec_json;          ///< the job's spec as submitted (Docker-style fields)
  std::vector<std::string> gpus; ///< GPU ids given to this run
  double cpus = 0;               ///< CPUs the job asked for; 0: no CPU limit
  uint64_t memory_bytes = 0;     ///< memory it asked for; 0: no memory limit
};

/// Starts jobs and tells how they ended.
///
/// Thread safety: every member may be called from any thread; callbacks run
/// on whatever thread the runner uses (the libuv loop for processes) and must
/// only post messages.
class job_runner {
public:
  virtual ~job_runner() = default;

  /// The name used in `runner:` of atlas.config.yaml.
  virtual const char* name() const = 0;

  /// Starts `req`. `on_started(pid)` runs once the job runs (pid > 0 when it
  /// is a local process group, else 0); it is not called when the start
  /// fails. `on_exit` runs exactly once, with `error` set when the start
  /// failed.
  virtual void start(run_request req, std::function<void(int pid)> on_started,
                     std::function<void(process_exit)> on_exit) = 0;

  /// Sends `sig` to the run: SIGTERM asks it to stop, SIGKILL ends it now.
  /// Does nothing when `run_id` does not run here (anymore).
  virtual void signal(const std::string& run_id, int sig) = 0;
};

} // namespace atlas
