#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <unordered_map>

#include "adapters/job_runner.hpp"

namespace atlas {

/// Runs each job as a local process group through a process_supervisor
/// (the default runner, and the way the original worker image ran jobs).
/// The supervisor must outlive the runner. With `cgroup_dir` (from
/// cgroup::prepare), a job asking for memory or CPUs runs in a child cgroup
/// there with those limits, and one killed by the OOM killer fails "out of
/// memory"; without it such limits are not enforced.
class process_runner final : public job_runner {
public:
  explicit process_runner(process_supervisor& processes, std::string cgroup_dir = {})
    : processes_(processes), cgroup_dir_(std::move(cgroup_dir)) {}

  const char* name() const override { return "process"; }
  void start(run_request req, std::function<void(int pid)> on_started,
             std::function<void(process_exit)> on_exit) override;
  void signal(const std::string& run_id, int sig) override;

private:
  process_supervisor& processes_;
  std::string cgroup_dir_;
  std::mutex mutex_;
  std::unordered_map<std::string, int> pids_; // running jobs by run id
};

} // namespace atlas
