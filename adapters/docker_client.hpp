#pragma once

// A thin client for the Docker Engine API (pinned to v1.41) over its unix
// socket, on top of http_client (libcurl). No CAF here.
//
// Contract: every call blocks until the engine answers (wait() and logs()
// until the container ends), so none may run on a CAF scheduler thread: the
// docker runner calls them from its own threads. Calls are independent (one
// curl handle each), so any thread may call any of them at the same time.
// Nothing throws; every failure is one readable line in `error`, worded for
// a job's failure reason ("Docker image 'x' not found on this node", "cannot
// reach the Docker engine at /var/run/docker.sock: ...").

#include <cstdint>
#include <functional>
#include <string>

#include "adapters/status.hpp"
#include <string_view>
#include <vector>

namespace atlas {

/// What inspect tells about a container's end.
struct container_state {
  std::string status; // created, running, exited, dead, ...
  bool running = false;
  bool oom_killed = false;
  int64_t exit_code = 0;
  std::string error;  // the engine's own error (e.g. a failed start)
};

/// A running container's resource use so far (one stats sample).
struct container_usage {
  double cpu_seconds = 0;    // user + system CPU time of its processes
  uint64_t memory_bytes = 0; // its memory use (the cgroup's peak where the engine tells it)
};

/// One container of a listing.
struct container_summary {
  std::string id;
  std::string job_id; // its atlas.job_id label
  std::string state;  // running, exited, ...
};

/// One readable line for a failed engine call: `what` names the call
/// ("create", "start", ...); `status`, `body` and `transport_error` are what
/// http_client returned. Pure, so it is unit-tested without an engine.
std::string describe_engine_error(const std::string& what, long status, const std::string& body,
                                  const std::string& transport_error);

class docker_client {
public:
  /// `socket`: path of the engine's unix socket.
  explicit docker_client(std::string socket);

  const std::string& socket() const { return socket_; }

  /// GET /_ping: the engine answers.
  result<bool> ping() const;

  /// POST /containers/create?name=<name> with the JSON `body`; the new id.
  result<std::string> create(const std::string& name, const std::string& body) const;
  result<bool> start(const std::string& id) const;
  /// POST /containers/{id}/wait: blocks until it ends; its exit code.
  result<int64_t> wait(const std::string& id) const;
  result<container_state> inspect(const std::string& id) const;
  /// One sample of its CPU time and memory (GET /containers/<id>/stats, one-shot).
  result<container_usage> stats(const std::string& id) const;
  /// POST /containers/{id}/stop?t=N: SIGTERM, then SIGKILL after N seconds.
  result<bool> stop(const std::string& id, int timeout_s) const;
  /// POST /containers/{id}/kill?signal=<sig> (a number or a name like SIGTERM).
  result<bool> kill(const std::string& id, const std::string& signal) const;
  /// DELETE /containers/{id}?force=1&v=1 (a running one is killed first).
  /// A container that is already gone counts as removed.
  result<bool> remove(const std::string& id) const;
  /// Containers (running or not) carrying label `key=value`.
  result<std::vector<container_summary>> list_labelled(const std::string& key,
                                                       const std::string& value) const;
  /// GET /containers/{id}/logs?follow=1&stdout=1&stderr=1: hands the raw
  /// multiplexed stream to `on_chunk` until the container ends (see
  /// docker_log_demux for its framing).
  result<bool> follow_logs(const std::string& id,
                           const std::function<void(std::string_view)>& on_chunk) const;

private:
  std::string url(const std::string& path) const;
  std::string socket_;
};

} // namespace atlas
