#include "adapters/process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace atlas {

namespace {

// How long a leftover grandchild (one that left the job's group) may keep
// the output pipes open after the leader exited.
constexpr uint64_t grace_ms = 300;

constexpr size_t read_buf_size = 64 * 1024;

std::string errno_text(int err) {
  return uv_strerror(uv_translate_sys_error(err));
}

std::string path_of(const std::vector<std::string>& env) {
  for (const auto& kv : env)
    if (kv.rfind("PATH=", 0) == 0)
      return kv.substr(5);
  const char* parent = std::getenv("PATH");
  return parent ? parent : "/usr/local/bin:/usr/bin:/bin";
}

// Resolves argv[0] like execvp would, but against the child's PATH, so that
// a missing program gives a clear error before anything is forked.
// Returns 0 and sets `out`, or an errno value.
int find_program(const std::string& name, const std::vector<std::string>& env,
                 std::string& out) {
  if (name.find('/') != std::string::npos) {
    out = name; // relative to the child's cwd; exec reports failures
    return 0;
  }
  int err = ENOENT;
  const std::string path = path_of(env);
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t end = path.find(':', begin);
    if (end == std::string::npos)
      end = path.size();
    std::string dir = path.substr(begin, end - begin);
    begin = end + 1;
    // Relative entries would depend on the cwd: skip them.
    if (dir.empty() || dir[0] != '/')
      continue;
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (::access(candidate.c_str(), X_OK) == 0) {
      out = std::move(candidate);
      return 0;
    }
    err = EACCES;
  }
  return err;
}

/// The child's side of its start: stdin on /dev/null, stdout and stderr
/// into the pipes, its own session (and so group), default signal handling
/// and no blocked signals (the loop thread blocks SIGPIPE, and this process
/// ignores it). Errors (an errno value) come back from posix_spawn, exec's
/// included.
int spawn_child(const std::string& file, const process_spec& spec, int out_fd, int err_fd,
                char* const* argv, char* const* envp, pid_t& pid) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  if (int e = posix_spawn_file_actions_init(&actions); e != 0)
    return e;
  if (int e = posix_spawnattr_init(&attr); e != 0) {
    posix_spawn_file_actions_destroy(&actions);
    return e;
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  int e = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (e == 0)
    e = posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  if (e == 0)
    e = posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  if (e == 0 && !spec.cwd.empty())
    e = posix_spawn_file_actions_addchdir_np(&actions, spec.cwd.c_str());
  if (e == 0)
    e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK
                                            | POSIX_SPAWN_SETSIGDEF);
  if (e == 0)
    e = posix_spawnattr_setsigmask(&attr, &none);
  if (e == 0)
    e = posix_spawnattr_setsigdefault(&attr, &all);
  if (e == 0)
    e = posix_spawn(&pid, file.c_str(), &actions, &attr, argv, envp);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  return e;
}

// struct clone_args of <linux/sched.h>, whose macros clash with <sched.h>.
struct clone3_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
    set_tid_size, cgroup;
};
constexpr uint64_t clone_into_cgroup = 0x200000000ULL;

/// spawn_child's work, started in the cgroup `cgroup_fd`: posix_spawn has no
/// cgroup attribute in this glibc, so a fork-like clone3, then only
/// async-signal-safe calls in the child until execve. Signals are blocked
/// around it so no handler of ours runs in the child. An exec failure comes
/// back as its errno through a close-on-exec pipe.
int spawn_child_in_cgroup(const std::string& file, const process_spec& spec, int out_fd,
                          int err_fd, char* const* argv, char* const* envp, pid_t& pid) {
  int status[2];
  if (::pipe2(status, O_CLOEXEC) != 0)
    return errno;
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  clone3_args args{};
  args.flags = clone_into_cgroup;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(spec.cgroup_fd);
  long child = ::syscall(SYS_clone3, &args, sizeof args);
  if (child == 0) {
    auto die = [&](int e) {
      (void)!::write(status[1], &e, sizeof e);
      ::_exit(127);
    };
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0)
      die(errno);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0)
      die(errno);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP)
        ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(file.c_str(), argv, envp);
    die(errno);
  }
  int e = child < 0 ? errno : 0;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(status[1]);
  if (child > 0) {
    int exec_err = 0;
    ssize_t n;
    do
      n = ::read(status[0], &exec_err, sizeof exec_err);
    while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof exec_err)) {
      ::waitpid(static_cast<pid_t>(child), nullptr, 0);
      e = exec_err;
    } else {
      pid = static_cast<pid_t>(child);
    }
  }
  ::close(status[0]);
  return e;
}

} // namespace

struct process_supervisor::run {
  process_supervisor* owner = nullptr;
  process_spec spec;
  std::function<void(int)> on_started;
  std::function<void(process_exit)> on_exit;
  process_exit result;

  uv_poll_t exit_watch{}; // readable on `pidfd` once the child has exited
  int pidfd = -1;
  uv_pipe_t out{};
  uv_pipe_t err{};
  uv_timer_t grace{};
  int open_handles = 0; // initialised and not yet closed
  bool closing = false;

  int pid = 0;
  bool exited = false;
  bool out_eof = false;
  bool err_eof = false;

  int log_fd = -1;
  uint64_t logged = 0;
  bool ends_with_newline = true;

  ~run() {
    if (log_fd >= 0)
      ::close(log_fd);
    if (pidfd >= 0)
      ::close(pidfd);
  }
};

process_supervisor::process_supervisor(event_loop& loop)
  : loop_(loop), read_buf_(read_buf_size) {
}

process_supervisor::~process_supervisor() {
  // The loop has stopped (see header): nothing else touches runs_. Children
  // still running would outlive their job, so end them here.
  for (auto& [ptr, r] : runs_) {
    if (r->pid > 0 && !r->exited) {
      ::kill(-r->pid, SIGKILL);
      ::waitpid(r->pid, nullptr, 0); // the closed handle will not reap it
    }
  }
}

void process_supervisor::spawn(process_spec spec, std::function<void(int pid)> on_started,
                               std::function<void(process_exit)> on_exit) {
  try {
    auto r = std::make_unique<run>();
    r->owner = this;
    r->spec = std::move(spec);
    r->on_started = std::move(on_started);
    r->on_exit = std::move(on_exit);
    // std::function needs a copyable callable: carry the run in a shared
    // holder, so it is freed if the loop stops before running it.
    auto holder = std::make_shared<std::unique_ptr<run>>(std::move(r));
    ++running_;
    loop_.post([this, holder](uv_loop_t* loop) { start_run(loop, std::move(*holder)); });
  } catch (...) {
    // Out of memory while queueing: nothing was started, nothing to report.
  }
}

bool process_supervisor::signal_group(int pid, int sig) {
  // kill(0 or -1, ...) would hit our own group or every process we may signal.
  if (pid <= 1)
    return false;
  return ::kill(-pid, sig) == 0;
}

void process_supervisor::start_run(uv_loop_t* loop, std::unique_ptr<run> owned) {
  run* r = owned.get();
  runs_.emplace(r, std::move(owned));
  const process_spec& spec = r->spec;
  const std::string shown = spec.argv.empty() ? std::string{} : spec.argv[0];
  auto fail = [&](const std::string& why) {
    r->result.error = "cannot start '" + shown + "': " + why;
    report(r);
  };

  if (spec.argv.empty() || spec.argv[0].empty())
    return fail("empty command");
  std::string file;
  if (int e = find_program(spec.argv[0], spec.env, file); e != 0)
    return fail(errno_text(e));
  if (!spec.cwd.empty()) {
    struct stat st {};
    if (::stat(spec.cwd.c_str(), &st) != 0)
      return fail("working directory '" + spec.cwd + "': " + errno_text(errno));
    if (!S_ISDIR(st.st_mode))
      return fail("working directory '" + spec.cwd + "' is not a directory");
  }
  if (!spec.log_path.empty()) {
    r->log_fd = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (r->log_fd < 0)
      return fail("log file '" + spec.log_path + "': " + errno_text(errno));
  }

  std::vector<char*> args;
  for (const auto& a : spec.argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (const auto& kv : spec.env)
    env.push_back(const_cast<char*>(kv.c_str()));
  env.push_back(nullptr);

  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0)
    return fail("pipe: " + errno_text(errno));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return fail("pipe: " + errno_text(e));
  }
  pid_t pid = 0;
  int spawned = spec.cgroup_fd >= 0
                  ? spawn_child_in_cgroup(file, spec, out_pipe[1], err_pipe[1], args.data(),
                                          env.data(), pid)
                  : spawn_child(file, spec, out_pipe[1], err_pipe[1], args.data(), env.data(), pid);
  ::close(out_pipe[1]); // the child has its copies
  ::close(err_pipe[1]);
  int pidfd = spawned == 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)) : -1;
  if (spawned == 0 && pidfd < 0) {
    // Its exit could not be seen: it must not run unwatched.
    int e = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    spawned = e;
  }
  if (spawned != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return fail(errno_text(spawned));
  }
  r->pid = pid;
  r->pidfd = pidfd;

  uv_pipe_init(loop, &r->out, 0);
  uv_pipe_init(loop, &r->err, 0);
  uv_timer_init(loop, &r->grace);
  uv_poll_init(loop, &r->exit_watch, pidfd);
  r->out.data = r->err.data = r->grace.data = r->exit_watch.data = r;
  r->open_handles = 4;
  uv_pipe_open(&r->out, out_pipe[0]);
  uv_pipe_open(&r->err, err_pipe[0]);
  uv_poll_start(&r->exit_watch, UV_READABLE, &process_supervisor::on_pidfd);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&r->out), &on_alloc, &on_read);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&r->err), &on_alloc, &on_read);
  if (r->on_started) {
    try {
      r->on_started(r->pid);
    } catch (...) {
      // The caller's callback failed; the run goes on regardless.
    }
  }
}

void process_supervisor::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  // One buffer per supervisor is enough: libuv hands it to on_read before
  // asking again, all on the loop thread.
  auto& b = static_cast<run*>(h->data)->owner->read_buf_;
  *buf = uv_buf_init(b.data(), static_cast<unsigned>(b.size()));
}

void process_supervisor::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* r = static_cast<run*>(s->data);
  if (n > 0) {
    r->owner->append_log(r, buf->base, static_cast<size_t>(n));
    return;
  }
  if (n == 0)
    return; // EAGAIN
  // EOF or a read error: this stream is done either way.
  uv_read_stop(s);
  if (s == reinterpret_cast<uv_stream_t*>(&r->out))
    r->out_eof = true;
  else
    r->err_eof = true;
  r->owner->finish_if_done(r);
}

void process_supervisor::on_pidfd(uv_poll_t* p, int, int) {
  auto* r = static_cast<run*>(p->data);
  int status = 0;
  rusage used{}; // of the leader and the children it waited for
  pid_t got = ::wait4(r->pid, &status, WNOHANG, &used);
  if (got == 0 || (got < 0 && errno == EINTR))
    return; // not yet: the poll reports again
  uv_poll_stop(p);
  r->exited = true;
  if (got < 0) { // reaped elsewhere: the status is lost
    r->result.exit_status = -1;
  } else if (WIFSIGNALED(status)) {
    r->result.exit_status = -1;
    r->result.term_signal = WTERMSIG(status);
  } else {
    r->result.exit_status = WEXITSTATUS(status);
  }
  if (got > 0) {
    auto secs = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    r->result.cpu_seconds = secs(used.ru_utime) + secs(used.ru_stime);
    r->result.peak_memory_bytes = static_cast<uint64_t>(used.ru_maxrss) * 1024; // KiB on Linux
  }
  // The group is the job's alone: whatever is left in it goes with the leader.
  ::kill(-r->pid, SIGKILL);
  if (!(r->out_eof && r->err_eof))
    uv_timer_start(&r->grace, &process_supervisor::on_grace_timeout, grace_ms, 0);
  r->owner->finish_if_done(r);
}

void process_supervisor::on_grace_timeout(uv_timer_t* t) {
  auto* r = static_cast<run*>(t->data);
  r->owner->close_run(r);
}

void process_supervisor::finish_if_done(run* r) {
  if (r->exited && r->out_eof && r->err_eof)
    close_run(r);
}

void process_supervisor::close_run(run* r) {
  if (r->closing)
    return;
  r->closing = true;
  uv_handle_t* handles[] = {
    reinterpret_cast<uv_handle_t*>(&r->exit_watch), reinterpret_cast<uv_handle_t*>(&r->out),
    reinterpret_cast<uv_handle_t*>(&r->err), reinterpret_cast<uv_handle_t*>(&r->grace)};
  for (auto* h : handles)
    uv_close(h, &process_supervisor::on_closed);
}

void process_supervisor::on_closed(uv_handle_t* h) {
  auto* r = static_cast<run*>(h->data);
  if (--r->open_handles == 0)
    r->owner->report(r);
}

void process_supervisor::report(run* r) {
  auto node = runs_.extract(r);
  auto on_exit = std::move(r->on_exit);
  process_exit result = std::move(r->result);
  node = {}; // frees the run (and closes its log) before the caller hears of it
  --running_;
  if (on_exit) {
    try {
      on_exit(std::move(result));
    } catch (...) {
      // The caller's callback failed; nothing more to do for this run.
    }
  }
}

void process_supervisor::append_log(run* r, const char* data, size_t len) {
  if (r->log_fd < 0 || r->result.log_truncated)
    return;
  // Plain blocking appends on the loop thread: they are short, local, and
  // keep stdout and stderr in arrival order.
  auto write_all = [r](const char* p, size_t n) {
    while (n > 0 && r->log_fd >= 0) {
      ssize_t w = ::write(r->log_fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) { // disk full or similar: stop logging, keep running
        ::close(r->log_fd);
        r->log_fd = -1;
        return;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  };
  const uint64_t cap = r->spec.log_cap_bytes;
  const size_t room = r->logged >= cap ? 0 : static_cast<size_t>(std::min<uint64_t>(cap - r->logged, len));
  if (room > 0) {
    write_all(data, room);
    r->logged += room;
    r->ends_with_newline = data[room - 1] == '\n';
  }
  if (room == len)
    return;
  r->result.log_truncated = true;
  std::string marker = r->ends_with_newline ? "" : "\n";
  marker += "[atlas] log truncated after " + std::to_string(cap) + " bytes\n";
  write_all(marker.data(), marker.size());
}

} // namespace atlas
