#include "adapters/process_runner.hpp"

namespace atlas {

void process_runner::start(run_request req, std::function<void(int pid)> on_started,
                           std::function<void(process_exit)> on_exit) {
  process_spec spec;
  spec.argv = std::move(req.argv);
  spec.env = std::move(req.env);
  spec.cwd = std::move(req.cwd);
  spec.log_path = std::move(req.log_path);
  spec.log_cap_bytes = req.log_cap_bytes;
  auto id = req.job_id;
  processes_.spawn(
    std::move(spec),
    [this, id, on_started = std::move(on_started)](int pid) {
      {
        std::lock_guard<std::mutex> guard(mutex_);
        pids_[id] = pid;
      }
      on_started(pid);
    },
    [this, id, on_exit = std::move(on_exit)](process_exit ex) {
      {
        std::lock_guard<std::mutex> guard(mutex_);
        pids_.erase(id);
      }
      on_exit(std::move(ex));
    });
}

void process_runner::signal(const std::string& job_id, int sig) {
  int pid = 0;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    auto it = pids_.find(job_id);
    if (it == pids_.end())
      return;
    pid = it->second;
  }
  // Still registered, so on_exit has not run: the group is still the job's.
  process_supervisor::signal_group(pid, sig);
}

} // namespace atlas
