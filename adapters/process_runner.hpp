#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include "adapters/job_runner.hpp"

namespace atlas {

/// Runs each job as a local process group through a process_supervisor
/// (the default runner, and the way the original worker image ran jobs).
/// The supervisor must outlive the runner.
class process_runner final : public job_runner {
public:
  explicit process_runner(process_supervisor& processes) : processes_(processes) {}

  const char* name() const override { return "process"; }
  void start(run_request req, std::function<void(int pid)> on_started,
             std::function<void(process_exit)> on_exit) override;
  void signal(const std::string& job_id, int sig) override;

private:
  process_supervisor& processes_;
  std::mutex mutex_;
  std::unordered_map<std::string, int> pids_; // running jobs by id
};

} // namespace atlas
