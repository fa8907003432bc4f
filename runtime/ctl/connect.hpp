#pragma once

// atlas-ctl's link to the master: its CAF endpoint (from --master or from
// Redis), a connection through its cluster door, and bounded questions.
// atlas-ctl does not recover from a failure: each one is a line on stderr
// and an exit (fail), and the actor system is never destroyed (finish).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "adapters/caf_front.hpp"
#include "adapters/event_loop.hpp"
#include "messages/actors.hpp"
#include "library/config.hpp"
#include "runtime/ctl/render.hpp"

namespace atlas::ctl {

constexpr auto request_timeout = std::chrono::seconds(5); // each question to the master

/// Exits with `code` at once: CAF 0.17 can hang in ~actor_system after
/// remote connections. Shows the cursor again if watch hid it.
[[noreturn]] void finish(int code);

/// "atlas-ctl: LINE" on stderr, then finish(1).
[[noreturn]] void fail(const std::string& line);

/// "atlas-ctl: LINE (see atlas-ctl --help)" on stderr, then finish(2).
[[noreturn]] void usage_error(const std::string& line);

/// Makes finish() show the terminal cursor again: watch hides it.
void show_cursor_at_finish();

/// Where the master's CAF port is.
struct endpoint {
  std::string host;
  uint16_t port = 0;
  std::string text() const { return host + ":" + std::to_string(port); }
};

/// The link to the master: its handle and a blocking actor to ask with.
/// The cluster port's client side (mutual TLS) runs on `loop`.
struct session {
  std::unique_ptr<event_loop> loop;
  std::unique_ptr<caf_front> front;
  std::unique_ptr<caf::actor_system_config> cfg;
  caf::actor_system* sys = nullptr; // never destroyed: see finish()
  std::unique_ptr<caf::scoped_actor> self;
  master_actor master;
  endpoint where;
  redis_target redis;                         // where the masters' lease is
  std::chrono::milliseconds lease_ttl{5000};
};

/// The active master and the standbys, from Redis; `known` false when Redis
/// did not answer within a second.
masters_view read_masters_view(const session& s);

/// One line saying why the master did not answer.
std::string describe(const caf::error& err);

/// Finds the master (`master_flag`, else the endpoint recorded in Redis),
/// connects over mutual TLS with an operator certificate and joins at its
/// door (without TLS, loopback only: with the cluster secret); fills `s`.
/// The certificate: ATLAS_CTL_CERT and ATLAS_CTL_KEY (with the CA from
/// ATLAS_CTL_CA or config/tls/ca.crt), else one valid for an hour that
/// atlas-ctl issues itself from the cluster CA, when it may read its key. Fails
/// (exits) when the master cannot be reached or refuses, all within a few
/// seconds.
void connect(session& s, const node_config& cfg, const std::string& master_flag);

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

} // namespace atlas::ctl
