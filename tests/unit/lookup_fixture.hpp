#pragma once

// A real redis-server with a lookup actor in front of it, and the helpers
// that move a job record as its lifecycle actor does (lookup and tracking
// tests).

#include "tests/unit/redis_server.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/lookup.hpp"
#include "adapters/redis_client.hpp"
#include "library/tracking/store.hpp"
#include "messages/actors.hpp"
#include "messages/errors.hpp"
#include "messages/redis_keys.hpp"
#include "messages/types.hpp"

namespace atlas::test {

using namespace std::chrono_literals;

struct fixture {
  test::redis_server server;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  lookup_actor lookup;
  std::unique_ptr<redis_client> redis; // the test's own look at Redis

  fixture() {
    REQUIRE(server.start());
    register_message_types(cfg);
    cfg.set("logger.verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    lookup = spawn_lookup(*sys, "127.0.0.1", server.port(), 2);
    redis = std::make_unique<redis_client>("127.0.0.1", server.port());
  }
  ~fixture() {
    caf::anon_send_exit(lookup, caf::exit_reason::user_shutdown);
    lookup = nullptr; // its thread ends once no handle is left
    sys.reset();      // waits for that before Redis goes
  }

  /// Sends one message to the lookup and waits for its answer: the value,
  /// or the error's code in `*code`.
  template <class T, class... Ts>
  std::optional<T> ask(ec* code, Ts&&... xs) {
    return ask_to<T>(lookup, code, std::forward<Ts>(xs)...);
  }
  /// The same to any actor.
  template <class T, class Handle, class... Ts>
  std::optional<T> ask_to(const Handle& who, ec* code, Ts&&... xs) {
    caf::scoped_actor self{*sys};
    std::optional<T> out;
    self->request(who, 10s, std::forward<Ts>(xs)...)
      .receive([&](T& x) { out = std::move(x); },
               [&](caf::error& err) {
                 if (code != nullptr)
                   *code = static_cast<ec>(err.code());
               });
    return out;
  }
  /// A new lookup actor with `opts` (fenced, waiting for replicas).
  void respawn(lookup_options opts) {
    caf::anon_send_exit(lookup, caf::exit_reason::user_shutdown);
    lookup = spawn_lookup(*sys, redis_target{"127.0.0.1", server.port(), {}, {}}, std::move(opts));
  }
  bool enqueue(const job_record& rec) { return ask<bool>(nullptr, enqueue_atom::value, rec).value_or(false); }
  bool put(const job_record& rec) { return ask<bool>(nullptr, put_atom::value, rec).value_or(false); }
  std::vector<job_record> list(job_state s) {
    return ask<std::vector<job_record>>(nullptr, list_atom::value, s).value_or(std::vector<job_record>{});
  }
  std::vector<job_record> list_all() {
    return ask<std::vector<job_record>>(nullptr, list_atom::value).value_or(std::vector<job_record>{});
  }

  redis_reply run(const std::vector<std::string>& argv) {
    auto r = redis->command(argv);
    REQUIRE(r);
    return *r;
  }
  /// The state sets and finished lists that hold `id`.
  std::set<std::string> indexes_of(const std::string& id) {
    std::set<std::string> out;
    for (auto s : all_job_states)
      if (run({"SISMEMBER", keys::state_set(to_string(s)), id}).integer == 1)
        out.insert(std::string(to_string(s)));
    for (auto list : {"completed_jobs", "failed_jobs"})
      if (run({"ZSCORE", keys::ended_list(list), id}).type != redis_reply::kind::nil)
        out.insert(list);
    return out;
  }
  /// Calls per command name since the last CONFIG RESETSTAT, as Redis
  /// counts them (the test's own INFO and CONFIG left out).
  std::map<std::string, long> commandstats() {
    auto info = run({"INFO", "commandstats"});
    std::map<std::string, long> out;
    std::istringstream in(info.str);
    for (std::string line; std::getline(in, line);) {
      const std::string prefix = "cmdstat_";
      if (line.rfind(prefix, 0) != 0)
        continue;
      auto colon = line.find(':');
      auto name = line.substr(prefix.size(), colon - prefix.size());
      auto calls = line.find("calls=");
      if (name == "info" || name.rfind("config", 0) == 0 || calls == std::string::npos)
        continue;
      out[name] = std::stol(line.substr(calls + 6));
    }
    return out;
  }
};

inline job_record new_job(const std::string& id) {
  job_record rec;
  rec.job_id = id;
  rec.username = "ann";
  rec.spec = R"({"command":["main.py"]})";
  rec.queued_time = 1000;
  rec.history.push_back({job_state::queued, 1000, ""});
  return rec;
}

/// What the job actor does to its record on a transition.
inline void move_to(job_record& rec, job_state s) {
  rec.state = s;
  rec.history.push_back({s, rec.history.back().time + 1, rec.slot});
}

inline void dispatch(job_record& rec) {
  move_to(rec, job_state::pending);
  rec.slot = "n1/0";
  rec.node = "n1";
  rec.host_address = "10.0.0.7";
  rec.job_secret = dashboard::new_job_secret();
}

} // namespace atlas::test
