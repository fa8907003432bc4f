#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adapters/docker_client.hpp"
#include "adapters/job_runner.hpp"

namespace atlas {

class event_loop;

/// How this node runs containers (from atlas.config.yaml `docker:` and the
/// node's directories).
struct docker_settings {
  std::string socket = "/var/run/docker.sock";
  std::string node_id;             ///< label atlas.node of every container
  std::string default_image;       ///< for specs that name none
  std::string network_mode = "none";
  std::string user;
  std::string python = "python3";
  std::string working_dir_root;    ///< a job's directory is <root>/<job_id>, bound at /job
  std::string results_root;        ///< bound at the same path
  std::string config_dir;          ///< bound read-only at /root/.foundations/config
  std::vector<std::string> volume_roots; ///< where the spec's own volumes may come from
  std::map<std::string, std::string> node_env; ///< the node's environment: not passed on
};

/// Runs each job in a Docker container (Engine API v1.41 over the socket).
///
/// Each run has its own thread (never a CAF scheduler thread, never libuv's
/// small pool, which a long wait would exhaust): create, start, follow the
/// logs into the job's log file, wait, inspect (an OOM kill fails the job
/// with "out of memory"), remove. Signals go to the engine from libuv's
/// thread pool. No container outlives its run: it is removed when it ends,
/// when it fails to start, and by the destructor; remove_leftovers() clears
/// those of a previous run of this node that was killed.
///
/// Thread safety: start(), signal() may be called from any thread;
/// callbacks run on the run's thread. The loop must outlive the runner. A
/// run whose engine hangs at shutdown is left to finish on its own (its
/// thread is detached after a bounded wait, its callbacks no longer run).
class docker_runner final : public job_runner {
public:
  docker_runner(docker_settings settings, event_loop& loop);
  /// Removes the containers still running (their on_exit is not called)
  /// and joins the runs' threads.
  ~docker_runner() override;
  docker_runner(const docker_runner&) = delete;
  docker_runner& operator=(const docker_runner&) = delete;

  const char* name() const override { return "docker"; }
  void start(run_request req, std::function<void(int pid)> on_started,
             std::function<void(process_exit)> on_exit) override;
  void signal(const std::string& job_id, int sig) override;

  /// Removes every container labelled with this node (blocking: call at
  /// start-up, before any job runs). The number removed, or -1 with `error`.
  int remove_leftovers(std::string& error);

  /// The engine answers its ping (blocking).
  bool available(std::string& error) const;

private:
  struct run;
  struct core; // what the runs' threads share with the runner (they may outlive it)

  std::shared_ptr<core> core_;
  event_loop& loop_;
};

} // namespace atlas
