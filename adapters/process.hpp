#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/event_loop.hpp"

namespace atlas {

/// What to run. Plain data; copied into the supervisor by spawn().
struct process_spec {
  /// argv[0] is looked up in the PATH of `env` (or the parent's PATH when
  /// `env` has none) unless it contains a '/'. Must not be empty.
  std::vector<std::string> argv;
  /// The child's full environment, "K=V" each; empty means an empty
  /// environment, not the parent's.
  std::vector<std::string> env;
  /// Working directory; empty keeps the parent's.
  std::string cwd;
  /// stdout and stderr are appended here (created 0644, O_APPEND); empty
  /// discards them.
  std::string log_path;
  /// After this many bytes written by this run, output is discarded and one
  /// line "[atlas] log truncated after N bytes" is appended once.
  uint64_t log_cap_bytes = 64ull << 20;
  /// A cgroup v2 directory (O_DIRECTORY fd) the child starts in, through
  /// clone3's CLONE_INTO_CGROUP, so its limits hold from its first
  /// instruction; -1: the parent's cgroup. The caller keeps it open until
  /// on_started or on_exit.
  int cgroup_fd = -1;
};

/// How a run ended.
struct process_exit {
  int64_t exit_status = -1; ///< exit code, or -1 (killed, or never started)
  int term_signal = 0;      ///< signal that ended it, or 0
  /// Non-empty when the process could not start, e.g.
  /// "cannot start 'foo': no such file or directory".
  std::string error;
  bool log_truncated = false; ///< output went past log_cap_bytes
  /// Why the job failed when its runner knows better than its exit code
  /// (a container's "out of memory"); empty otherwise.
  std::string failure;
  /// What it used, when the runner can tell (0 otherwise): user + system
  /// CPU time, and its largest resident memory.
  double cpu_seconds = 0;
  uint64_t peak_memory_bytes = 0;
};

/// Runs child processes on an event_loop: posix_spawn (a vfork-style start,
/// no copy of this multi-threaded process's page tables as with fork), the
/// exit watched through a pidfd on the loop.
///
/// Each child leads its own session and process group, has stdin on
/// /dev/null, and its stdout and stderr are read on the loop thread and
/// appended to the log in arrival order. The exit is reported once the child
/// has exited and its pipes reached EOF, or ~300 ms after the exit when a
/// grandchild that left the group still holds them. When the leader exits,
/// its whole process group is SIGKILLed, so nothing of the job survives it.
///
/// Thread safety: spawn(), signal_group() and running() may be called from
/// any thread. Callbacks run on the loop thread.
///
/// Lifetime: the loop must outlive the supervisor, and the owner must stop
/// the loop before destroying the supervisor. The destructor then SIGKILLs
/// the groups of children still running; their on_exit is never called.
class process_supervisor {
public:
  explicit process_supervisor(event_loop& loop);
  ~process_supervisor();
  process_supervisor(const process_supervisor&) = delete;
  process_supervisor& operator=(const process_supervisor&) = delete;

  /// Starts `spec` on the loop. `on_started(pid)` runs on the loop thread
  /// once the child exists (pid > 0); it is not called when the start fails.
  /// `on_exit` runs on the loop thread exactly once (unless the loop is
  /// stopped first), carrying `error` when the start failed. Exceptions
  /// thrown by the callbacks are caught and dropped.
  void spawn(process_spec spec, std::function<void(int pid)> on_started,
             std::function<void(process_exit)> on_exit);

  /// Sends `sig` to the whole process group led by `pid`. Returns false when
  /// there is no such group (or pid <= 1). Meant for runs not yet reported:
  /// after on_exit the number may belong to someone else.
  static bool signal_group(int pid, int sig);

  /// Runs accepted by spawn() whose on_exit has not been called yet.
  size_t running() const { return running_.load(); }

private:
  struct run;

  void start_run(uv_loop_t* loop, std::unique_ptr<run> owned);
  void finish_if_done(run* r);
  void close_run(run* r);
  void report(run* r);
  void append_log(run* r, const char* data, size_t len);

  static void on_alloc(uv_handle_t* h, size_t hint, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_pidfd(uv_poll_t* p, int status, int events);
  static void on_grace_timeout(uv_timer_t* t);
  static void on_closed(uv_handle_t* h);

  event_loop& loop_;
  std::atomic<size_t> running_{0};
  // Touched on the loop thread only (and by the destructor once the loop
  // has stopped).
  std::unordered_map<run*, std::unique_ptr<run>> runs_;
  std::vector<char> read_buf_;
};

} // namespace atlas
