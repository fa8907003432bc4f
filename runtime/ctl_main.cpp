// atlas-ctl: the operator's view of a running cluster. Connects to the
// master's actor system over CAF (its endpoint from --master or from Redis),
// shows the cluster secret at its door, and asks the actors themselves.
// Every wait is bounded; a master that cannot be reached is one line on
// stderr and exit status 1.

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "adapters/redis_client.hpp"
#include "messages/actors.hpp"
#include "messages/errors.hpp"
#include "messages/redis_keys.hpp"
#include "messages/types.hpp"
#include "runtime/cluster_secret.hpp"
#include "runtime/config.hpp"
#include "runtime/ctl_render.hpp"
#include "runtime/job_codec.hpp"

using namespace atlas;

namespace {

constexpr auto handshake_timeout = std::chrono::seconds(3); // one CAF handshake, retries included
constexpr auto connect_deadline = std::chrono::seconds(6); // handshake and join, retries included
constexpr auto join_timeout = std::chrono::milliseconds(2500); // one try of the join
constexpr auto request_timeout = std::chrono::seconds(5); // each question to the master

const char* usage_text =
  "usage: atlas-ctl [--master HOST:PORT] [--json] [--no-color] COMMAND [ARGS]\n"
  "\n"
  "commands:\n"
  "  nodes                        every node: role, address, slots, GPUs, jobs, heartbeat\n"
  "  slots [--node N]             every slot: state, current job, GPUs, jobs run, last error\n"
  "  jobs [--state S] [--user U]  job records in submission order\n"
  "  job ID                       one job's lifecycle: each transition's time, where it ran\n"
  "  queue                        the queue in dispatch order, each job's reason to wait\n"
  "  actors [--node N]            every actor: mailbox, messages handled, last message\n"
  "  drain NODE / undrain NODE    stop / resume dispatching new jobs to a node\n"
  "  watch [--count N] [--interval S]\n"
  "                               nodes, slots and queue, refreshed every second\n"
  "\n"
  "options:\n"
  "  --master HOST:PORT  the master's CAF endpoint (default: read from Redis at\n"
  "                      REDIS_ADDRESS, key atlas:master:endpoint)\n"
  "  --json              machine-readable output\n"
  "  --no-color          no ANSI colours (they are used only on a terminal anyway)\n"
  "  -h, --help          this text\n";

bool cursor_hidden = false; // by watch, on a terminal

[[noreturn]] void finish(int code) {
  if (cursor_hidden)
    std::fputs("\x1b[?25h", stdout);
  // CAF 0.17 can hang in ~actor_system after remote connections.
  std::fflush(nullptr);
  std::_Exit(code);
}

[[noreturn]] void fail(const std::string& line) {
  std::fprintf(stderr, "atlas-ctl: %s\n", line.c_str());
  finish(1);
}

[[noreturn]] void usage_error(const std::string& line) {
  std::fprintf(stderr, "atlas-ctl: %s (see atlas-ctl --help)\n", line.c_str());
  finish(2);
}

struct options {
  std::string master;
  bool json = false;
  bool color = true;
  std::string command;
  std::vector<std::string> args;
  std::string node;
  std::string state;
  std::string user;
  long count = 0;      // watch: 0 = until interrupted
  double interval = 1; // watch: seconds between refreshes
};

options parse(int argc, char** argv) {
  options o;
  auto value = [&](int& i, const std::string& a, const std::string& name) -> std::string {
    if (a.size() > name.size() && a.compare(0, name.size() + 1, name + "=") == 0)
      return a.substr(name.size() + 1);
    if (i + 1 >= argc)
      usage_error(name + " needs a value");
    return argv[++i];
  };
  auto is = [](const std::string& a, const std::string& name) {
    return a == name || a.rfind(name + "=", 0) == 0;
  };
  const std::pair<const char*, std::string options::*> strings[] = {
    {"--master", &options::master}, {"--node", &options::node},
    {"--state", &options::state},   {"--user", &options::user}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto string_option = std::find_if(std::begin(strings), std::end(strings),
                                      [&](auto& x) { return is(a, x.first); });
    if (a == "-h" || a == "--help") {
      std::fputs(usage_text, stdout);
      finish(0);
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--no-color" || a == "--no-colour") {
      o.color = false;
    } else if (string_option != std::end(strings)) {
      o.*(string_option->second) = value(i, a, string_option->first);
    } else if (is(a, "--count") || is(a, "--interval")) {
      auto name = is(a, "--count") ? "--count" : "--interval";
      auto text = value(i, a, name);
      char* end = nullptr;
      auto x = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0' || x <= 0)
        usage_error(std::string{name} + ": expected a positive number, got '" + text + "'");
      if (is(a, "--count"))
        o.count = static_cast<long>(x);
      else
        o.interval = x;
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else if (o.command.empty()) {
      o.command = a;
    } else {
      o.args.push_back(a);
    }
  }
  static const std::vector<std::string> commands = {"nodes", "slots", "jobs", "job", "queue",
                                                    "actors", "drain", "undrain", "watch"};
  if (o.command.empty()) {
    std::fputs(usage_text, stderr);
    finish(2);
  }
  if (std::find(commands.begin(), commands.end(), o.command) == commands.end())
    usage_error("unknown command '" + o.command + "'");
  bool one_arg = o.command == "job" || o.command == "drain" || o.command == "undrain";
  if (one_arg && o.args.size() != 1)
    usage_error(o.command + " needs exactly one argument");
  if (!one_arg && !o.args.empty())
    usage_error("unexpected argument '" + o.args.front() + "'");
  if (!o.state.empty() && !parse_job_state(o.state))
    usage_error("--state: expected queued, pending, running, completed, failed, cancelled "
                "or lost, got '" + o.state + "'");
  return o;
}

struct endpoint {
  std::string host;
  uint16_t port = 0;
  std::string text() const { return host + ":" + std::to_string(port); }
};

std::optional<endpoint> parse_endpoint(std::string s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return std::nullopt;
  endpoint e;
  e.host = s.substr(0, colon);
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']')
    e.host = e.host.substr(1, e.host.size() - 2);
  auto port = s.substr(colon + 1);
  char* end = nullptr;
  auto n = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || n <= 0 || n > 65535)
    return std::nullopt;
  e.port = static_cast<uint16_t>(n);
  return e;
}

/// The master's endpoint as recorded in Redis.
endpoint endpoint_from_redis(const node_config& cfg) {
  redis_client redis(cfg.redis_host, cfg.redis_port, std::chrono::seconds(2));
  if (auto st = redis.connect(); !st)
    fail("cannot find the master: " + st.error() + " (set REDIS_ADDRESS, or use --master HOST:PORT)");
  std::string error;
  auto reply = redis.command({"GET", keys::master_endpoint}, &error);
  auto where = cfg.redis_host + ":" + std::to_string(cfg.redis_port);
  if (!reply)
    fail("cannot read the master's endpoint from Redis at " + where + ": " + error);
  if (reply->is_nil())
    fail("no master has recorded its endpoint in Redis at " + where
         + " (is the master running? or use --master HOST:PORT)");
  if (reply->is_error())
    fail("Redis at " + where + " refused to tell the master's endpoint: " + reply->str);
  auto e = parse_endpoint(reply->str);
  if (!e)
    fail("Redis at " + where + " holds no valid master endpoint: '" + reply->str + "'");
  return *e;
}

/// A plain TCP connect first: its errno says clearly why a master cannot be
/// reached ("connection refused"), where CAF's error would not.
std::string tcp_probe(const endpoint& e, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto port = std::to_string(e.port);
  if (int rc = ::getaddrinfo(e.host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return gai_strerror(rc);
  std::string error = "no address";
  for (auto* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      ai->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, timeout_ms);
      if (rc == 0) {
        ::close(fd);
        error = "no answer within " + std::to_string(timeout_ms / 1000) + " s";
        continue;
      }
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      errno = so_error;
      rc = so_error == 0 ? 0 : -1;
    }
    auto err = errno;
    ::close(fd);
    if (rc == 0) {
      ::freeaddrinfo(found);
      return {};
    }
    error = std::strerror(err);
  }
  ::freeaddrinfo(found);
  if (!error.empty())
    error[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(error[0])));
  return error;
}

/// The link to the master: its handle and a blocking actor to ask with.
struct session {
  std::unique_ptr<caf::actor_system_config> cfg;
  caf::actor_system* sys = nullptr; // never destroyed: see finish()
  std::unique_ptr<caf::scoped_actor> self;
  master_actor master;
  endpoint where;
};

std::string describe(const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return "no answer within the timeout";
  if (err == caf::sec::unexpected_message)
    return "it does not understand the request (an older atlas-server?)";
  return error_message(err);
}

/// The master's cluster door over a new CAF connection. remote_actor can
/// block on a peer that accepts but never answers: it runs on another
/// thread, waited for until `deadline`; a handshake cut off by CAF's
/// connection timeout is tried again until then.
cluster_actor open_door(session& s, std::chrono::steady_clock::time_point deadline) {
  auto where = s.where.text();
  auto result = std::make_shared<std::promise<caf::expected<cluster_actor>>>();
  auto door_future = result->get_future();
  std::thread([sys = s.sys, e = s.where, result, deadline] {
    for (;;) {
      auto door = sys->middleman().remote_actor<cluster_actor>(e.host, e.port);
      if (door || door.error() != caf::sec::connection_timeout
          || std::chrono::steady_clock::now() + std::chrono::milliseconds(100) >= deadline) {
        result->set_value(std::move(door));
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }).detach();
  auto silent = "cannot reach the master at " + where + ": its CAF port accepted but did not "
                "answer within " + std::to_string(handshake_timeout.count())
                + " s (a hung master, or not atlas-server)";
  if (door_future.wait_until(deadline) != std::future_status::ready)
    fail(silent);
  auto door = door_future.get();
  if (door)
    return std::move(*door);
  auto& err = door.error();
  if (err == caf::sec::connection_timeout)
    fail(silent);
  if (err == caf::sec::incompatible_versions || err == caf::sec::incompatible_application_ids
      || err == caf::sec::unexpected_response)
    fail("cannot reach the master at " + where + ": not an atlas-server CAF port");
  fail("cannot reach the master at " + where + ": " + s.sys->render(err));
}

void connect(session& s, const node_config& cfg, const std::string& master_flag) {
  if (master_flag.empty()) {
    s.where = endpoint_from_redis(cfg);
  } else {
    auto e = parse_endpoint(master_flag);
    if (!e)
      usage_error("--master: expected HOST:PORT, got '" + master_flag + "'");
    s.where = *e;
  }
  auto where = s.where.text();
  if (auto err = tcp_probe(s.where, 2000); !err.empty())
    fail("cannot reach the master at " + where + ": " + err);
  auto secret = read_cluster_secret(cfg);
  if (secret.empty())
    fail("no cluster secret: set cluster.secret in atlas.config.yaml, ATLAS_CLUSTER_SECRET, or "
         "config/cluster.secret in FOUNDATIONS_HOME (" + cfg.foundations_home + ")");

  s.cfg = std::make_unique<caf::actor_system_config>();
  register_message_types(*s.cfg);
  s.cfg->load<caf::io::middleman>();
  s.cfg->set("scheduler.policy", caf::atom("sharing"));
  s.cfg->set("scheduler.max-threads", 2);
  s.cfg->set("logger.console", caf::atom("none"));
  s.cfg->set("logger.verbosity", caf::atom("quiet"));
  // The master runs with heartbeats; without ours it would drop us as dead.
  s.cfg->set("middleman.heartbeat-interval",
             caf::timespan{std::chrono::milliseconds(cfg.heartbeat_ms)});
  s.cfg->set("middleman.connection-timeout",
             caf::timespan{std::chrono::milliseconds(cfg.connection_timeout_ms)});
  s.sys = new caf::actor_system(*s.cfg);

  // CAF 0.17.6 drops a connection still in its handshake at the next
  // heartbeat tick (its last_seen starts at the clock's epoch), and a master
  // under load may lose a fresh connection the same way: a handshake that
  // timed out and a join left without an answer are tried again, within
  // one overall deadline.
  auto deadline = std::chrono::steady_clock::now() + connect_deadline;
  std::string why = "no answer";
  s.self = std::make_unique<caf::scoped_actor>(*s.sys);
  for (;;) {
    using std::chrono::steady_clock;
    if (steady_clock::now() + std::chrono::milliseconds(200) >= deadline)
      fail("the master at " + where + " did not let atlas-ctl in within "
           + std::to_string(connect_deadline.count()) + " s: " + why);
    auto door = open_door(s, std::min(deadline, steady_clock::now() + handshake_timeout));
    auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                           deadline - steady_clock::now()),
                         std::chrono::milliseconds(100));
    std::optional<caf::error> failed;
    (*s.self)
      ->request(door, std::min<caf::timespan>(join_timeout, left), join_atom::value, secret)
      .receive([&](master_actor& m) { s.master = std::move(m); },
               [&](caf::error& err) { failed = err; });
    if (!failed && s.master)
      return;
    if (!failed)
      fail("the master at " + where + " answered without a master handle");
    if (failed->category() == caf::atom("atlas")) // refused: wrong secret
      fail(describe(*failed));
    if (*failed == caf::sec::unexpected_message)
      fail("the master at " + where + " did not let atlas-ctl in: " + describe(*failed));
    why = describe(*failed); // a lost connection is made again by remote_actor
  }
}

/// Asks the master; on an error prints one line and exits 1.
template <class Reply, class... Ts>
Reply ask(session& s, const std::string& what, Ts... xs) {
  std::optional<Reply> out;
  std::optional<caf::error> failed;
  (*s.self)
    ->request(s.master, request_timeout, xs...)
    .receive([&](Reply& r) { out = std::move(r); }, [&](caf::error& err) { failed = err; });
  if (failed) {
    if (*failed == caf::sec::request_timeout)
      fail("the master at " + s.where.text() + " did not answer " + what + " within "
           + std::to_string(request_timeout.count()) + " s");
    if (failed->category() == caf::atom("atlas"))
      fail(describe(*failed));
    fail("the master at " + s.where.text() + " could not answer " + what + ": "
         + describe(*failed));
  }
  return std::move(*out);
}

void print(const std::string& text, bool json) {
  std::fputs(text.c_str(), stdout);
  if (json)
    std::fputc('\n', stdout);
}

std::atomic<bool> interrupted{false};

extern "C" void on_interrupt(int) {
  interrupted = true;
}

int watch(session& s, const options& o, ctl::render_options r, bool tty) {
  struct sigaction sa{};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  bool in_place = tty && !o.json;
  if (in_place) {
    std::fputs("\x1b[?25l", stdout); // hide the cursor while refreshing
    cursor_hidden = true;
  }
  for (long n = 0; !interrupted && (o.count == 0 || n < o.count); ++n) {
    if (n > 0) {
      auto until = std::chrono::steady_clock::now()
                   + std::chrono::milliseconds(static_cast<long>(o.interval * 1000));
      while (!interrupted && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (interrupted)
        break;
    }
    auto nodes = ask<std::vector<node_view>>(s, "the node list", nodes_atom::value);
    auto queue = ask<std::vector<queue_entry>>(s, "the queue", queue_atom::value);
    r.now = now_seconds();
    std::string frame;
    if (o.json)
      frame = ctl::watch_json(nodes, queue, r) + "\n";
    else if (in_place)
      frame = "\x1b[H\x1b[2J" + ctl::watch_text(s.where.text(), nodes, queue, r);
    else
      frame = (n > 0 ? "\n" : "") + ctl::watch_text(s.where.text(), nodes, queue, r);
    std::fwrite(frame.data(), 1, frame.size(), stdout);
    std::fflush(stdout);
  }
  return 0; // finish() shows the cursor again
}

int run(session& s, const options& o, bool tty) {
  ctl::render_options r;
  r.color = tty && o.color && std::getenv("NO_COLOR") == nullptr && !o.json;
  auto node_filter = [&](const std::string& name) -> std::string {
    if (name.empty())
      return {};
    auto nodes = ask<std::vector<node_view>>(s, "the node list", nodes_atom::value);
    return ctl::resolve_node(nodes, name).value_or(name);
  };
  const auto& cmd = o.command;
  if (cmd == "watch")
    return watch(s, o, r, tty);
  if (cmd == "nodes" || cmd == "slots") {
    auto nodes = ask<std::vector<node_view>>(s, "the node list", nodes_atom::value);
    r.now = now_seconds();
    if (cmd == "nodes") {
      print(o.json ? ctl::nodes_json(nodes, r) : ctl::nodes_text(nodes, r), o.json);
      return 0;
    }
    std::string node;
    if (!o.node.empty()) {
      auto found = ctl::resolve_node(nodes, o.node);
      if (!found)
        fail("no node named '" + o.node + "'");
      node = *found;
    }
    print(o.json ? ctl::slots_json(nodes, node) : ctl::slots_text(nodes, node, r), o.json);
    return 0;
  }
  if (cmd == "jobs") {
    auto jobs = ask<std::vector<job_record>>(s, "the job list", jobs_atom::value);
    jobs = ctl::filter_jobs(std::move(jobs), o.state, o.user);
    r.now = now_seconds();
    print(o.json ? ctl::jobs_json(jobs) : ctl::jobs_text(jobs, r), o.json);
    return 0;
  }
  if (cmd == "job") {
    auto job = ask<job_record>(s, "about job " + o.args[0], jobs_atom::value, o.args[0]);
    r.now = now_seconds();
    print(o.json ? ctl::job_json(job) : ctl::job_text(job, r), o.json);
    return 0;
  }
  if (cmd == "queue") {
    auto queue = ask<std::vector<queue_entry>>(s, "the queue", queue_atom::value);
    r.now = now_seconds();
    print(o.json ? ctl::queue_json(queue) : ctl::queue_text(queue, r), o.json);
    return 0;
  }
  if (cmd == "actors") {
    auto node = node_filter(o.node);
    auto actors = ask<std::vector<actor_stats>>(s, "the actor list", actors_atom::value);
    r.now = now_seconds();
    print(o.json ? ctl::actors_json(actors, node, r) : ctl::actors_text(actors, node, r),
          o.json);
    return 0;
  }
  // drain / undrain
  bool drain = cmd == "drain";
  auto node = node_filter(o.args[0]);
  ask<bool>(s, (drain ? "the drain of " : "the undrain of ") + node, drain_atom::value, node,
            drain);
  if (o.json)
    print("{\"node\":" + json::quote(node) + ",\"drained\":" + (drain ? "true" : "false") + "}",
          true);
  else
    std::printf("node %s %s\n", node.c_str(),
                drain ? "drained: no new jobs go there (running jobs go on)"
                      : "undrained: it takes new jobs again");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  auto loaded = load_node_config(current_environment(), start_flags{});
  if (!loaded.ok())
    fail(loaded.error);
  session s;
  connect(s, loaded.config, o.master);
  finish(run(s, o, ::isatty(STDOUT_FILENO) == 1));
}
