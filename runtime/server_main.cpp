// atlas-server: one per node. `start` returns once the node serves (the node
// runs on in the background, its log in a file); `--foreground` stays
// attached. `stop` drains the node started from the same FOUNDATIONS_HOME.

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/http_bridge.hpp"
#include "actors/cluster_door.hpp"
#include "actors/http_gateway.hpp"
#include "actors/lookup.hpp"
#include "actors/master.hpp"
#include "actors/node.hpp"
#include "actors/worker_slot.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/http_server.hpp"
#include "adapters/process.hpp"
#include "messages/errors.hpp"
#include "messages/types.hpp"
#include "runtime/cluster_secret.hpp"
#include "runtime/config.hpp"
#include "runtime/job_codec.hpp"
#include "runtime/job_files.hpp"
#include "runtime/logging.hpp"
#include "runtime/redis_server.hpp"

namespace fs = std::filesystem;
using namespace atlas;

namespace {

constexpr const char* version = "0.1.0";

void usage(std::ostream& out) {
  out << "usage: atlas-server start [-p] [-g] [--role auto|master|worker] [--foreground]\n"
         "       atlas-server stop\n"
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
  if (!(in >> pid) || !is_live_server(pid))
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

/// Everything a running node owns, in the order it is torn down.
struct node_runtime {
  std::shared_ptr<node_config> cfg;
  event_loop loop;
  std::unique_ptr<process_supervisor> processes;
  std::atomic<int> redis_pid{0};
  std::unique_ptr<caf::actor_system_config> caf_cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::vector<std::unique_ptr<http_server>> servers;
  node_actor node;
  lookup_actor lookup;
  master_actor master;
  cluster_actor door;
  http_gateway_actor gateway;
  std::vector<worker_slot_actor> slots;
  // Shared with each server's handler; emptied once the servers are closed.
  std::vector<std::shared_ptr<http_bridge_actor>> bridges;
};

/// Starts listening on `port` with a bridge into the gateway.
status serve(node_runtime& rt, uint16_t port) {
  http_server_options opts;
  opts.host = rt.cfg->http_host;
  opts.port = port;
  opts.max_header_bytes = rt.cfg->max_header_bytes;
  opts.max_body_bytes = rt.cfg->max_body_bytes;
  opts.max_upload_bytes = rt.cfg->max_upload_bytes;
  opts.upload_dir = rt.cfg->node_dir + "/uploads";
  opts.idle_timeout_ms = rt.cfg->idle_timeout_s * 1000;
  auto bridge_slot = std::make_shared<http_bridge_actor>();
  auto server = std::make_unique<http_server>(
    rt.loop, opts, [bridge_slot](http_request&& req, uint64_t token) {
      caf::anon_send(*bridge_slot, std::move(req), token);
    });
  *bridge_slot = spawn_http_bridge(*rt.sys, server.get(), rt.gateway);
  rt.bridges.push_back(bridge_slot);
  auto st = server->listen();
  if (!st)
    return st;
  rt.servers.push_back(std::move(server));
  return status::success();
}

/// The host part of HOST_ADDRESS: where other nodes reach this one.
std::string advertised_host(const node_config& cfg) {
  auto rest = cfg.host_address.substr(cfg.host_address.find("://") + 3);
  auto end = rest.rfind(':');
  return rest.substr(0, end == std::string::npos ? rest.find('/') : end);
}

/// Makes sure Redis is there: the managed one is started (or an already
/// running one reused); a configured one must answer, except on workers,
/// which wait for the master's.
status ensure_redis(node_runtime& rt) {
  auto& cfg = *rt.cfg;
  if (cfg.manage_redis) {
    if (port_in_use("127.0.0.1", cfg.redis_port)) {
      if (!redis_answers("127.0.0.1", cfg.redis_port, std::chrono::seconds(2)))
        return status::fail("port " + std::to_string(cfg.redis_port)
                            + " (Redis) is in use by another program");
      spdlog::warn("using the Redis already running on port {}", cfg.redis_port);
      return status::success();
    }
    caf::anon_send(rt.node, redis_atom::value);
    if (!redis_answers("127.0.0.1", cfg.redis_port, std::chrono::seconds(15)))
      return status::fail("redis-server did not start on port " + std::to_string(cfg.redis_port)
                          + "; see " + cfg.node_dir + "/redis/redis.log");
    return status::success();
  }
  if (redis_answers(cfg.redis_host, cfg.redis_port, std::chrono::seconds(5)))
    return status::success();
  auto where = cfg.redis_host + ":" + std::to_string(cfg.redis_port);
  if (cfg.is_master)
    return status::fail("cannot reach Redis at " + where
                        + " (REDIS_ADDRESS or database.config.yaml)");
  spdlog::warn("cannot reach Redis at {} yet; waiting for the master", where);
  return status::success();
}

/// The master's part: queue owner, its door on the CAF port, its endpoint
/// in Redis for the workers to find.
status bring_up_master(node_runtime& rt, const std::string& secret) {
  auto& cfg = *rt.cfg;
  rt.master = spawn_master(*rt.sys, rt.cfg, rt.lookup);
  rt.door = spawn_cluster_door(*rt.sys, secret, rt.master);
  auto port = rt.sys->middleman().publish(rt.door, cfg.caf_port, nullptr, true);
  if (!port)
    return status::fail("cannot listen on CAF port " + std::to_string(cfg.caf_port) + ": "
                        + rt.sys->render(port.error()));
  auto endpoint = advertised_host(cfg) + ":" + std::to_string(*port);
  caf::scoped_actor self{*rt.sys};
  status result = status::success();
  self->request(rt.lookup, std::chrono::seconds(30), endpoint_atom::value, endpoint)
    .receive([](bool) {},
             [&](caf::error& err) {
               result = status::fail("cannot record the master's endpoint in Redis: "
                                     + error_message(err));
             });
  spdlog::info("master endpoint {} recorded", endpoint);
  return result;
}

/// Brings the node up; returns an error line when it cannot serve.
status bring_up(node_runtime& rt) {
  auto& cfg = *rt.cfg;
  rt.loop.start();
  rt.processes = std::make_unique<process_supervisor>(rt.loop);
  rt.caf_cfg = std::make_unique<caf::actor_system_config>();
  register_message_types(*rt.caf_cfg);
  rt.caf_cfg->load<caf::io::middleman>();
  rt.caf_cfg->set("scheduler.policy", caf::atom("sharing"));
  rt.caf_cfg->set("logger.console", caf::atom("none"));
  // Heartbeats in every process: a hung peer (not only a dead one) is seen.
  rt.caf_cfg->set("middleman.heartbeat-interval",
                  caf::timespan{std::chrono::milliseconds(cfg.heartbeat_ms)});
  rt.caf_cfg->set("middleman.connection-timeout",
                  caf::timespan{std::chrono::milliseconds(cfg.connection_timeout_ms)});
  rt.sys = std::make_unique<caf::actor_system>(*rt.caf_cfg);

  if (auto n = kill_leftover_jobs(cfg.node_dir); n > 0)
    spdlog::warn("ended {} job process group(s) left running by this node's previous run", n);
  auto secret = ensure_cluster_secret(cfg);
  node_context ctx{rt.cfg, &rt.loop, rt.processes.get(), &rt.redis_pid};
  if (cfg.is_master) {
    rt.node = spawn_node(*rt.sys, ctx);
    if (auto st = ensure_redis(rt); !st)
      return st;
    rt.lookup = spawn_lookup(*rt.sys, cfg.redis_host, cfg.redis_port);
    if (auto st = bring_up_master(rt, secret); !st)
      return st;
  } else {
    rt.lookup = spawn_lookup(*rt.sys, cfg.redis_host, cfg.redis_port);
    rt.node = spawn_node(*rt.sys, ctx, rt.lookup, secret);
    if (auto st = ensure_redis(rt); !st)
      return st;
  }
  rt.gateway = spawn_http_gateway(*rt.sys, rt.cfg, &rt.loop, rt.lookup, rt.master);
  caf::anon_send(rt.node, register_atom::value, rt.gateway);
  if (rt.master) { // the master's own jobs are answered by its own gateway
    node_info me{cfg.node_id, cfg.host_address, version, cfg.num_workers, now_seconds()};
    caf::anon_send(rt.master, join_atom::value, me, caf::actor_cast<caf::actor>(rt.gateway),
                   caf::actor_cast<caf::actor>(rt.node));
    caf::anon_send(rt.node, register_atom::value, rt.master);
  }
  if (auto st = serve(rt, cfg.http_port); !st)
    return st;
  if (cfg.is_master && cfg.gateway_port != 0 && cfg.gateway_port != cfg.http_port)
    if (auto st = serve(rt, cfg.gateway_port); !st)
      return st;
  for (int i = 0; i < cfg.num_workers; ++i)
    rt.slots.push_back(spawn_worker_slot(*rt.sys, ctx, i, {}, rt.master, rt.node));
  if (!cfg.is_master)
    caf::anon_send(rt.node, connect_atom::value);
  return status::success();
}

/// Drains, then tears the node down in the reverse order of bring_up.
/// False when part of it could not be stopped in time.
bool tear_down(node_runtime& rt) {
  if (rt.sys && rt.node) {
    spdlog::info("draining node={} (up to {} s)", rt.cfg->node_id, rt.cfg->drain_timeout_s);
    caf::scoped_actor self{*rt.sys};
    self->request(rt.node, std::chrono::seconds(rt.cfg->drain_timeout_s + 15),
                  drain_atom::value, int32_t{rt.cfg->drain_timeout_s})
      .receive([](bool) {},
               [](caf::error& err) {
                 spdlog::warn("drain incomplete: {}", error_message(err));
               });
  }
  spdlog::debug("closing HTTP servers");
  for (auto& s : rt.servers)
    s->close(); // no handler runs after this
  if (rt.sys) {
    for (auto& b : rt.bridges) {
      caf::anon_send_exit(*b, caf::exit_reason::user_shutdown);
      *b = nullptr;
    }
    for (auto& s : rt.slots)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.gateway, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.master, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.door, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.lookup, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.node, caf::exit_reason::user_shutdown);
    rt.slots.clear();
    rt.gateway = nullptr;
    rt.master = nullptr;
    rt.door = nullptr;
    rt.lookup = nullptr;
    rt.node = nullptr;
  }
  if (int pid = rt.redis_pid.load(); pid > 0) {
    // The drained node no longer restarts it: stop Redis so it flushes its
    // AOF, and wait until its exit callback (holding an actor handle) ran.
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 200 && rt.redis_pid.load() > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (rt.sys) {
    // Every actor of ours has its exit message. CAF 0.17 can still wait
    // forever in ~actor_system once remote nodes were involved (seen on
    // worker nodes), so the wait is bounded; the caller then exits at once.
    spdlog::debug("stopping the actor system ({} actors running)", rt.sys->registry().running());
    rt.sys->await_actors_before_shutdown(false);
    auto done = std::make_shared<std::promise<void>>();
    auto stopped = done->get_future();
    std::thread([sys = rt.sys.release(), done] {
      delete sys;
      done->set_value();
    }).detach();
    if (stopped.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
      spdlog::warn("the actor system did not stop within 2 s; exiting without waiting");
      return false;
    }
  }
  rt.servers.clear();
  spdlog::debug("stopping the event loop");
  rt.loop.stop();
  return true;
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
  // only: block them before any other thread exists. SIGCHLD stays with libuv.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (!init_logging(cfg->log_level, "", cfg->node_id))
    std::cerr << "atlas-server: unknown log level " << cfg->log_level << "\n";
  for (auto& w : loaded_cfg.warnings)
    spdlog::warn("{}", w);

  node_runtime rt;
  rt.cfg = cfg;
  if (auto st = bring_up(rt); !st) {
    spdlog::error("{}", st.error());
    ready.say(st.error());
    if (!tear_down(rt))
      std::_Exit(1);
    return 1;
  }
  {
    std::ofstream out(pid_file(*cfg));
    out << ::getpid() << "\n";
  }
  auto redis = cfg->redis_host + ":" + std::to_string(cfg->redis_port);
  auto summary =
    cfg->is_master
      ? "master node " + cfg->node_id + " serving: scheduler API " + cfg->host_address
          + (cfg->gateway_port ? ", gateway port " + std::to_string(cfg->gateway_port) : "")
          + ", CAF port " + std::to_string(cfg->caf_port) + ", Redis " + redis + ", "
      : "worker node " + cfg->node_id + " serving: node API " + cfg->host_address
          + ", joining the master found through Redis " + redis + ", ";
  summary += std::to_string(cfg->num_workers) + " slot(s); log: "
             + (foreground ? std::string{"stderr"} : log_file);
  spdlog::info("{}", summary);
  ready.say("ok " + summary);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("signal {} received: stopping", sig);
  bool clean = tear_down(rt);
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

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "version" || cmd == "--version") {
    std::cout << "atlas-server " << version << "\n";
    return 0;
  }
  if (cmd == "stop")
    return stop();
  if (cmd == "-h" || cmd == "--help") {
    usage(std::cout);
    return 0;
  }
  if (cmd != "start") {
    usage(std::cerr);
    return 2;
  }
  start_flags flags;
  bool foreground = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-p")
      flags.auth = true;
    else if (a == "-g")
      flags.gpu = true;
    else if (a == "--foreground")
      foreground = true;
    else if (a == "--role" && i + 1 < argc)
      flags.role = argv[++i];
    else if (a.rfind("--role=", 0) == 0)
      flags.role = a.substr(7);
    else {
      std::cerr << "atlas-server: unknown option '" << a << "'\n";
      usage(std::cerr);
      return 2;
    }
  }
  if (flags.role != "auto" && flags.role != "master" && flags.role != "worker") {
    std::cerr << "atlas-server: --role: expected auto, master or worker, got '" << flags.role
              << "'\n";
    return 2;
  }
  return start(flags, foreground);
}
