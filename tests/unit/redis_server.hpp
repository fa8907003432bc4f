#pragma once

// A real redis-server for unit tests: started by the test on 127.0.0.1 in
// its own temporary directory, always stopped by its pid, every wait bounded.

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace atlas::test {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// A port nothing listens on right now: bind to port 0 and let the kernel choose.
inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// A real redis-server on 127.0.0.1, in its own temporary directory, started
// daemonized and always stopped by the pid from its pid file.
class redis_server {
public:
  redis_server() : port_(free_port()) {
    // The daemon then becomes our child when it detaches, so we can reap it.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    char tmpl[] = "/tmp/atlas-redis-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr)
      dir_ = tmpl;
  }
  ~redis_server() {
    stop(SIGTERM);
    std::error_code ec;
    if (!dir_.empty())
      std::filesystem::remove_all(dir_, ec);
  }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  uint16_t port() const { return port_; }

  // Starts redis-server and waits, bounded, until it answers PING.
  bool start() {
    const std::string pidfile = dir_ + "/redis.pid";
    std::filesystem::remove(pidfile);
    const std::string port = std::to_string(port_);
    const pid_t launcher = ::fork();
    if (launcher == 0) {
      ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "yes", "--pidfile",
               pidfile.c_str(), "--dir", dir_.c_str(), "--logfile",
               (dir_ + "/redis.log").c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (launcher < 0)
      return false;
    const auto deadline = clock_type::now() + 10s;
    bool launcher_done = false;
    while (clock_type::now() < deadline) {
      int st = 0;
      if (!launcher_done && ::waitpid(launcher, &st, WNOHANG) == launcher) {
        launcher_done = true;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
          return false;
      }
      if (launcher_done && pid_ <= 0)
        pid_ = read_pid(pidfile);
      if (pid_ > 0 && answers_ping())
        return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  // Sends `sig` to the server and waits, bounded, until it is gone.
  void stop(int sig) {
    if (pid_ <= 0)
      return;
    ::kill(pid_, sig);
    ::kill(pid_, SIGCONT); // a paused server must run to act on SIGTERM
    if (!wait_gone(5s)) {
      ::kill(pid_, SIGKILL);
      wait_gone(5s);
    }
    pid_ = -1;
  }

  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

private:
  static pid_t read_pid(const std::string& file) {
    std::ifstream in(file);
    long pid = 0;
    return (in >> pid) ? static_cast<pid_t>(pid) : -1;
  }

  // Once gone, the pid is never signalled again: it may be reused.
  bool wait_gone(std::chrono::milliseconds limit) const {
    const auto deadline = clock_type::now() + limit;
    while (!gone(pid_)) {
      if (clock_type::now() >= deadline)
        return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  // True once `pid` has exited. The daemon is normally our child (see the
  // subreaper above) and is reaped here; were it not, a zombie counts as gone.
  static bool gone(pid_t pid) {
    const pid_t reaped = ::waitpid(pid, nullptr, WNOHANG);
    if (reaped == pid)
      return true;
    if (reaped == 0) // our child, still running or its threads still exiting
      return false;
    if (::kill(pid, 0) != 0)
      return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_field, comm, state;
    return !(stat >> pid_field >> comm >> state) || state == "Z";
  }

  bool answers_ping() const {
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeval{0, 200000});
    bool ok = false;
    if (c != nullptr && c->err == 0) {
      redisSetTimeout(c, timeval{0, 200000});
      if (auto* r = static_cast<redisReply*>(redisCommand(c, "PING"))) {
        ok = r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG";
        freeReplyObject(r);
      }
    }
    if (c != nullptr)
      redisFree(c);
    return ok;
  }

  uint16_t port_;
  std::string dir_;
  pid_t pid_ = -1;
};

} // namespace atlas::test
