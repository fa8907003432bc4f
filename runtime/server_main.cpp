// atlas-server: one per node. `start` returns once the node serves (the node
// runs on in the background, its log in a file); `--foreground` stays
// attached. `stop` drains the node started from the same FOUNDATIONS_HOME.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <linux/close_range.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "library/config.hpp"
#include "runtime/gpu_detect.hpp"
#include "runtime/node_capacity.hpp"
#include "runtime/cluster_tls.hpp"
#include "runtime/logging.hpp"
#include "runtime/node_runtime.hpp"
#include "runtime/start_options.hpp"
#include "library/redis_server.hpp"

namespace fs = std::filesystem;
using namespace atlas;

namespace {

void usage(std::ostream& out) {
  out << "usage: atlas-server start [-p|--authentication] [-g|--enable-gpu] [-d|--dashboard-port N]\n"
         "                          [-s|--scheduler-host HOST] [--role auto|master|worker]\n"
         "                          [--foreground|-l|--logs]\n"
         "       atlas-server stop\n"
         "       atlas-server issue-cert NAME [--role worker|operator] [--days N] --out DIR\n"
         "       atlas-server version\n";
}

std::string pid_file(const node_config& cfg) {
  return cfg.node_dir + "/atlas-server.pid";
}

/// True while `pid` is a live (not zombie) atlas-server process.
bool is_live_server(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0)
    return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(") ");
  if (close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z')
    return false; // killed, not yet reaped
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv0;
  std::getline(cmd, argv0, '\0');
  return argv0.find("atlas-server") != std::string::npos;
}

std::optional<pid_t> running_pid(const node_config& cfg) {
  std::ifstream in(pid_file(cfg));
  pid_t pid = 0;
  // A master stepping down runs again in the same process (restart_as_standby).
  if (!(in >> pid) || pid == ::getpid() || !is_live_server(pid))
    return std::nullopt;
  return pid;
}

/// Tells the parent of a daemonised start how it went (one line), or prints
/// it when running in the foreground.
struct readiness {
  int fd = -1;
  void say(const std::string& line) {
    if (fd >= 0) {
      auto text = line + "\n";
      [[maybe_unused]] auto n = ::write(fd, text.data(), text.size());
      ::close(fd);
      fd = -1;
    } else {
      std::cerr << (line.rfind("ok ", 0) == 0 ? line.substr(3) : line) << std::endl;
    }
  }
};

/// The arguments this process started with, for restart_as_standby.
std::vector<std::string> original_args;

/// A master that lost its lease holds state that may be stale everywhere:
/// it starts again, in the same process, and comes up as a standby. Every
/// descriptor but the log closes at the exec (not before: other threads
/// still use them), so that its ports are free again.
[[noreturn]] void restart_as_standby() {
  std::vector<std::string> args = original_args;
  if (std::find(args.begin(), args.end(), "--foreground") == args.end())
    args.push_back("--foreground"); // already detached: stay in this process
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  spdlog::default_logger()->flush();
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) // Linux < 5.11: one by one
    for (int fd = 3; fd < 65536; ++fd)
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  ::execv("/proc/self/exe", argv.data());
  std::perror("atlas-server: cannot start again as a standby");
  std::_Exit(1);
}

int start(const start_flags& flags, bool foreground) {
  auto env = current_environment();
  auto home = foundations_home(env);
  if (auto st = write_default_config(home); !st) {
    std::cerr << "atlas-server: " << st.error() << "\n";
    return 1;
  }
  auto loaded_cfg = load_node_config(env, flags);
  if (!loaded_cfg.ok()) {
    std::cerr << "atlas-server: " << loaded_cfg.error << "\n";
    return 1;
  }
  auto cfg = std::make_shared<node_config>(loaded_cfg.config);
  if (cfg->gpu) {
    if (auto st = apply_gpu_mode(*cfg, env); !st) {
      std::cerr << "atlas-server: " << st.error() << "\n";
      return 1;
    }
  }
  std::error_code ec;
  fs::create_directories(cfg->node_dir, ec);
  if (auto pid = running_pid(*cfg)) {
    std::cerr << "atlas-server: a node is already running from " << cfg->node_dir
              << " (pid " << *pid << ")\n";
    return 1;
  }
  auto log_file = cfg->node_dir + "/atlas-server.log";

  readiness ready;
  if (!foreground) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) { // jobs and Redis must not inherit it
      std::perror("atlas-server: pipe");
      return 1;
    }
    auto child = ::fork();
    if (child < 0) {
      std::perror("atlas-server: fork");
      return 1;
    }
    if (child > 0) { // the parent waits for one line from the node
      ::close(fds[1]);
      std::string line;
      char buf[512];
      pollfd p{fds[0], POLLIN, 0};
      while (::poll(&p, 1, 120000) > 0) {
        auto n = ::read(fds[0], buf, sizeof(buf));
        if (n <= 0)
          break;
        line.append(buf, static_cast<size_t>(n));
        if (line.find('\n') != std::string::npos)
          break;
      }
      if (line.rfind("ok ", 0) == 0) {
        std::cout << line.substr(3);
        return 0;
      }
      std::cerr << "atlas-server: "
                << (line.empty() ? "the node exited during start-up; see " + log_file + "\n"
                                 : line);
      return 1;
    }
    ::close(fds[0]);
    ready.fd = fds[1];
    ::setsid();
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::close(devnull);
    int logfd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(logfd, 1);
    ::dup2(logfd, 2);
    ::close(logfd);
  }

  // Signals that end the node are taken by sigwait below, on this thread
  // only: block them before any other thread exists. SIGCHLD keeps its
  // default: the process adapter reaps its children (adapters/process.cpp).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  // In the background the node's own log rotates (stdout and stderr stay
  // on the file it started with, for what does not log through spdlog).
  if (!init_logging(cfg->log_level, foreground ? std::string{} : log_file, cfg->node_id))
    std::cerr << "atlas-server: unknown log level " << cfg->log_level << "\n";
  for (auto& w : loaded_cfg.warnings)
    spdlog::warn("{}", w);
  apply_node_capacity(*cfg);

  node_runtime rt(cfg);
  if (auto st = rt.bring_up(); !st) {
    spdlog::error("{}", st.error());
    ready.say(st.error());
    if (!rt.tear_down())
      std::_Exit(1);
    return 1;
  }
  {
    std::ofstream out(pid_file(*cfg));
    out << ::getpid() << "\n";
  }
  auto redis = cfg->redis_sentinels.empty() ? cfg->redis_host + ":" + std::to_string(cfg->redis_port)
                                            : redis_target_of(*cfg).describe();
  auto standby = rt.standby_line();
  auto summary =
    !standby.empty()
      ? standby + "; its ports answer 503 naming it until this node takes over; log: "
          + (foreground ? std::string{"stderr"} : log_file)
    : cfg->is_master
      ? "master node " + cfg->node_id + " serving: scheduler API " + cfg->host_address
          + (cfg->gateway_port ? ", gateway port " + std::to_string(cfg->gateway_port) : "")
          + ", CAF port " + std::to_string(cfg->caf_port) + ", Redis " + redis + ", "
      : "worker node " + cfg->node_id + " serving: node API " + cfg->host_address
          + ", joining the master found through Redis " + redis + ", ";
  if (standby.empty())
    summary += std::to_string(cfg->num_workers) + " slot(s)"
               + (cfg->gpu ? ", " + std::to_string(cfg->gpus.size()) + " GPU(s)" : std::string{})
               + (cfg->runner == "docker" ? ", runner docker" : std::string{}) + "; log: "
               + (foreground ? std::string{"stderr"} : log_file);
  spdlog::info("{}", summary);
  ready.say("ok " + summary);

  // Until a stop signal: a master renews its lease (or, standing by, tries
  // to take it) every tick.
  int sig = 0;
  for (;;) {
    auto wait = rt.tick_interval();
    timespec ts{static_cast<time_t>(wait.count() / 1000),
                static_cast<long>(wait.count() % 1000) * 1000000};
    sig = sigtimedwait(&stop_signals, nullptr, &ts);
    if (sig > 0)
      break;
    if (rt.tick() == node_runtime::lease_news::lost)
      restart_as_standby();
  }
  spdlog::info("signal {} received: stopping", sig);
  bool clean = rt.tear_down();
  fs::remove(pid_file(*cfg), ec);
  spdlog::info("node stopped");
  if (!clean) {
    spdlog::default_logger()->flush();
    std::_Exit(0); // threads still blocked inside CAF must not run destructors
  }
  return 0;
}

int stop() {
  auto env = current_environment();
  auto loaded_cfg = load_node_config(env, start_flags{});
  if (!loaded_cfg.ok()) {
    std::cerr << "atlas-server: " << loaded_cfg.error << "\n";
    return 1;
  }
  auto& cfg = loaded_cfg.config;
  auto pid = running_pid(cfg);
  if (!pid) {
    std::cerr << "atlas-server: no node is running from " << cfg.node_dir << "\n";
    return 1;
  }
  ::kill(*pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::seconds(cfg.drain_timeout_s + cfg.stop_grace_s + 30);
  while (is_live_server(*pid)) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "atlas-server: node (pid " << *pid << ") did not stop in time\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cout << "Atlas node " << cfg.node_id << " stopped\n";
  return 0;
}

/// A certificate of the cluster CA for a node or an operator that does not
/// share FOUNDATIONS_HOME (runtime/cluster_tls.hpp).
int issue_cert(int argc, char** argv) {
  if (argc < 3 || argv[2][0] == '-') {
    usage(std::cerr);
    return 2;
  }
  std::string name = argv[2], role = "worker", out;
  long days = 365;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--role")
      role = argv[i + 1];
    else if (a == "--out")
      out = argv[i + 1];
    else if (a == "--days")
      days = std::strtol(argv[i + 1], nullptr, 10);
    else
      return usage(std::cerr), 2;
  }
  if ((argc - 3) % 2 != 0 || out.empty() || days <= 0 || (role != "worker" && role != "operator")) {
    std::cerr << "atlas-server: issue-cert needs --out DIR, a --role of worker or operator and "
                 "--days above 0\n";
    return 2;
  }
  auto st = issue_certificate_into(foundations_home(current_environment()), name, role,
                                   days * 86400, out);
  if (!st) {
    std::cerr << "atlas-server: " << st.error() << "\n";
    return 1;
  }
  std::cout << "issued " << out << "/" << name << ".crt (" << role << ", " << days
            << " days) with its key and the cluster CA's certificate\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "version" || cmd == "--version") {
    std::cout << "atlas-server " << server_version << "\n";
    return 0;
  }
  if (cmd == "stop")
    return stop();
  if (cmd == "issue-cert")
    return issue_cert(argc, argv);
  if (cmd == "-h" || cmd == "--help") {
    usage(std::cout);
    return 0;
  }
  if (cmd != "start") {
    usage(std::cerr);
    return 2;
  }
  original_args.assign(argv, argv + argc);
  auto opts = parse_start_options({argv + 2, argv + argc}, current_environment());
  if (!opts.error.empty()) {
    std::cerr << "atlas-server: " << opts.error << "\n";
    usage(std::cerr);
    return 2;
  }
  for (auto& [key, value] : opts.env)
    ::setenv(key.c_str(), value.c_str(), 1);
  auto& flags = opts.flags;
  auto foreground = opts.foreground;
  return start(flags, foreground);
}
