#include "runtime/ctl/connect.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/io/middleman.hpp>
#include <spdlog/spdlog.h>

#include "actors/cluster_link.hpp"
#include "actors/peer_check.hpp"
#include "adapters/peer_directory.hpp"
#include "runtime/cluster_tls.hpp"

#include "adapters/redis_client.hpp"
#include "library/redis_server.hpp"
#include "messages/errors.hpp"
#include "messages/redis_keys.hpp"
#include "messages/types.hpp"
#include "runtime/cluster_secret.hpp"

namespace atlas::ctl {

namespace {

constexpr auto handshake_timeout = std::chrono::seconds(3); // one CAF handshake, retries included
constexpr auto connect_deadline = std::chrono::seconds(6); // handshake and join, retries included
constexpr auto join_timeout = std::chrono::milliseconds(2500); // one try of the join

bool cursor_hidden = false; // by watch, on a terminal

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
  redis_client redis(redis_target_of(cfg), std::chrono::seconds(2));
  if (auto st = redis.connect(); !st)
    fail("cannot find the master: " + st.error() + " (set REDIS_ADDRESS, or use --master HOST:PORT)");
  std::string error;
  auto reply = redis.command({"GET", keys::master_endpoint}, &error);
  auto where = redis_target_of(cfg).describe();
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

/// An operator's certificate: the one named by the environment, else one
/// valid for an hour, issued now from the cluster CA into a private
/// directory that is gone again once loaded.
std::shared_ptr<tls_context> operator_tls(const node_config& cfg, std::string& error) {
  auto env = [](const char* name) {
    auto v = std::getenv(name);
    return std::string(v != nullptr ? v : "");
  };
  auto ca = cluster_ca(cfg.foundations_home);
  if (!env("ATLAS_CTL_CERT").empty()) {
    auto ca_cert = env("ATLAS_CTL_CA").empty() ? ca.cert : env("ATLAS_CTL_CA");
    return tls_context::make({ca_cert, env("ATLAS_CTL_CERT"), env("ATLAS_CTL_KEY")}, error);
  }
  if (::access(ca.key.c_str(), R_OK) != 0) {
    error = "no operator certificate: set ATLAS_CTL_CERT and ATLAS_CTL_KEY (issued with "
            "`atlas-server issue-cert NAME --role operator`), or run atlas-ctl where the "
            "cluster CA key (" + ca.key + ") is readable";
    return nullptr;
  }
  char dir[] = "/tmp/atlas-ctl-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    error = std::string("cannot make a private directory: ") + std::strerror(errno);
    return nullptr;
  }
  auto user = env("USER").empty() ? std::to_string(::getuid()) : env("USER");
  auto name = "atlas-ctl-" + user;
  std::shared_ptr<tls_context> ctx;
  if (auto st = issue_certificate_into(cfg.foundations_home, name, "operator", 3600, dir); !st)
    error = st.error();
  else
    ctx = tls_context::make({std::string(dir) + "/ca.crt", std::string(dir) + "/" + name + ".crt",
                             std::string(dir) + "/" + name + ".key"}, error);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return ctx;
}

/// The master's cluster door over a new link through the cluster port; CAF's
/// handshake over it runs on another thread, waited for until `deadline`.
cluster_actor open_door(session& s, std::chrono::steady_clock::time_point deadline) {
  auto where = s.where.text();
  auto result = std::make_shared<std::promise<caf::expected<cluster_actor>>>();
  auto door_future = result->get_future();
  auto* sys = s.sys;
  auto port = s.where.port;
  auto timeout = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
  s.front->dial(
    s.where.host, s.where.port, "master",
    [sys, port, result, timeout](int fd, const peer_identity&) {
      std::thread([sys, fd, port, result, timeout] {
        result->set_value(attach_outbound(*sys, fd, port, std::max(timeout, std::chrono::seconds(1))));
      }).detach();
    },
    [result](const std::string& error) {
      result->set_value(caf::expected<cluster_actor>{make_error(ec::unavailable, error)});
    });
  if (door_future.wait_until(deadline) != std::future_status::ready)
    fail("cannot reach the master at " + where + ": its cluster port accepted but did not "
         "answer within " + std::to_string(handshake_timeout.count())
         + " s (a hung master, or not atlas-server)");
  auto door = door_future.get();
  if (door)
    return std::move(*door);
  fail("cannot reach the master at " + where + ": " + describe(door.error()));
}

} // namespace

void show_cursor_at_finish() {
  cursor_hidden = true;
}

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

std::string describe(const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return "no answer within the timeout";
  if (err == caf::sec::unexpected_message)
    return "it does not understand the request (an older atlas-server?)";
  return error_message(err);
}

masters_view read_masters_view(const session& s) {
  masters_view m;
  redis_client redis(s.redis, std::chrono::seconds(1));
  m.known = read_masters(redis, s.lease_ttl, m.active, m.standbys);
  return m;
}

void connect(session& s, const node_config& cfg, const std::string& master_flag) {
  s.redis = redis_target_of(cfg);
  s.lease_ttl = std::chrono::milliseconds(cfg.lease_ttl_ms);
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
  auto secret = read_cluster_secret(cfg); // the credential when TLS is off
  if (!cfg.cluster_tls && secret.empty())
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
  cluster_peers().add_local(local_node_bytes(*s.sys));
  spdlog::set_level(spdlog::level::off); // atlas-ctl says what failed, in one line
  s.loop = std::make_unique<event_loop>();
  s.loop->start();
  caf_front_options fo;
  if (cfg.cluster_tls) {
    std::string error;
    auto ctx = operator_tls(cfg, error);
    if (!ctx)
      fail(error);
    fo.tls = [ctx](std::string&) { return ctx; };
  }
  s.front = std::make_unique<caf_front>(*s.loop, fo);

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

} // namespace atlas::ctl
