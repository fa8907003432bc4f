#include "adapters/process_runner.hpp"

#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "adapters/cgroup.hpp"

namespace atlas {

void process_runner::start(run_request req, std::function<void(int pid)> on_started,
                           std::function<void(process_exit)> on_exit) {
  process_spec spec;
  spec.argv = std::move(req.argv);
  spec.env = std::move(req.env);
  spec.cwd = std::move(req.cwd);
  spec.log_path = std::move(req.log_path);
  spec.log_cap_bytes = req.log_cap_bytes;
  auto id = req.run_id;
  // The job's cgroup, if it has one; read and removed once the job ended.
  auto group = std::make_shared<std::optional<cgroup::job_group>>();
  if (!cgroup_dir_.empty() && (req.cpus > 0 || req.memory_bytes > 0)) {
    std::string err;
    *group = cgroup::create(cgroup_dir_, "job-" + id, req.cpus, req.memory_bytes, err);
    if (*group)
      spec.cgroup_fd = (*group)->fd;
    else
      spdlog::warn("job_id={} runs without its memory/CPU limits: {}", req.job_id, err);
  }
  processes_.spawn(
    std::move(spec),
    [this, id, on_started = std::move(on_started)](int pid) {
      {
        std::lock_guard<std::mutex> guard(mutex_);
        pids_[id] = pid;
      }
      on_started(pid);
    },
    [this, id, group, job_id = req.job_id, on_exit = std::move(on_exit)](process_exit ex) {
      {
        std::lock_guard<std::mutex> guard(mutex_);
        pids_.erase(id);
      }
      if (*group) {
        // A job that lost a helper to the OOM killer yet exited 0 succeeded.
        bool clean = ex.term_signal == 0 && ex.exit_status == 0;
        if (!clean && cgroup::read_oom_kills(**group) > 0)
          ex.failure = "out of memory";
        if (auto err = cgroup::remove(**group); !err.empty())
          spdlog::warn("job_id={} cgroup not removed: {}", job_id, err);
      }
      on_exit(std::move(ex));
    });
}

void process_runner::signal(const std::string& run_id, int sig) {
  int pid = 0;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    auto it = pids_.find(run_id);
    if (it == pids_.end())
      return;
    pid = it->second;
  }
  // Still registered, so on_exit has not run: the group is still the job's.
  process_supervisor::signal_group(pid, sig);
}

} // namespace atlas
