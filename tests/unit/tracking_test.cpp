// The tracking actor against a real redis-server, next to a lookup that
// stores the job records as the lifecycle actor does: the job's secret,
// Redis going away and coming back, the lease's fence.

#include "tests/unit/lookup_fixture.hpp"

#include <csignal>
#include <thread>

#include "actors/dashboard/tracking.hpp"

using namespace atlas;
using namespace atlas::test;
using namespace std::chrono_literals;

namespace {

struct tracking_fixture : fixture {
  tracking_actor tracking;

  tracking_fixture() { respawn_tracking(redis_write_options{}); }
  ~tracking_fixture() { caf::anon_send_exit(tracking, caf::exit_reason::user_shutdown); }

  void respawn_tracking(redis_write_options opts) {
    if (tracking)
      caf::anon_send_exit(tracking, caf::exit_reason::user_shutdown);
    tracking = spawn_tracking(*sys, redis_target{"127.0.0.1", server.port(), {}, {}},
                              std::move(opts));
  }
  std::optional<std::string> store(ec* code, std::string op, std::vector<std::string> args) {
    return ask_to<std::string>(tracking, code, track_atom::value, std::move(op), std::move(args));
  }
};

} // namespace

TEST_CASE_METHOD(tracking_fixture, "a tracking secret works while its dispatch runs and never after",
                 "[tracking]") {
  const std::string batch = R"({"entries":[{"kind":"metric","key":"m","value":1}]})";
  auto track = [&](const job_record& rec, ec* code) {
    return ask_to<std::string>(tracking, code, track_atom::value, std::string("track"),
                            std::vector<std::string>{rec.job_id, rec.job_secret, batch});
  };
  auto rec = new_job("track-1");
  REQUIRE(enqueue(rec));
  dispatch(rec);
  REQUIRE(put(rec));
  move_to(rec, job_state::running);
  REQUIRE(put(rec));
  CHECK(track(rec, nullptr) == std::string(R"({"stored":1})"));
  // Lost and requeued: the next dispatch gets a new secret, the old one ends.
  move_to(rec, job_state::lost);
  move_to(rec, job_state::queued);
  rec.retries = 1;
  REQUIRE(put(rec));
  ec code{};
  CHECK_FALSE(track(rec, &code));
  CHECK(code == ec::forbidden);
  dispatch(rec);
  REQUIRE(put(rec));
  CHECK(track(rec, nullptr));
  // Ended: refused, and its digest is gone.
  move_to(rec, job_state::completed);
  REQUIRE(put(rec));
  code = ec{};
  CHECK_FALSE(track(rec, &code));
  CHECK(code == ec::forbidden);
  CHECK(run({"EXISTS", keys::job_secret("track-1")}).integer == 0);
  // A digest left over (written by an older node) does not open an ended
  // job either: the record's state is checked too.
  REQUIRE(run({"SET", keys::job_secret("track-1"), dashboard::secret_digest(rec.job_secret)})
            .is_status("OK"));
  code = ec{};
  CHECK_FALSE(track(rec, &code));
  CHECK(code == ec::forbidden);
}

TEST_CASE_METHOD(tracking_fixture, "an operation waits for a restarted Redis and is then stored",
                 "[tracking]") {
  REQUIRE(store(nullptr, "describe", {"p1", "before"}));
  server.stop(SIGTERM);
  std::thread restart([&] {
    std::this_thread::sleep_for(300ms);
    server.start();
  });
  auto stored = store(nullptr, "describe", {"p1", "after"}); // retried with backoff
  restart.join();
  CHECK(stored == std::string("true"));
  auto project = store(nullptr, "project", {"p1"});
  REQUIRE(project);
  CHECK(project->find("\"description\":\"after\"") != std::string::npos);
}

TEST_CASE_METHOD(tracking_fixture, "a fenced tracking actor writes only while the lease is its master's",
                 "[tracking][lease]") {
  const std::string mine = "1 m-1 http://m1:5000/";
  run({"SET", keys::master_lease, mine});
  redis_write_options opts;
  opts.retry_s = 1;
  opts.fence = mine;
  respawn_tracking(opts);
  REQUIRE(store(nullptr, "describe", {"p1", "mine"}));
  run({"SET", keys::master_lease, "2 m-2 http://m2:5000/"});
  ec code{};
  CHECK_FALSE(store(&code, "describe", {"p1", "stale"}));
  CHECK(code == ec::unavailable);
  CHECK(run({"HGET", keys::project_descriptions, "p1"}).str == "mine");
}

TEST_CASE_METHOD(tracking_fixture, "the tracking actor gives its own account and refuses bad operations",
                 "[tracking]") {
  ec code{};
  CHECK_FALSE(store(&code, "no-such-op", {}));
  CHECK(code == ec::invalid_argument);
  REQUIRE(store(nullptr, "describe", {"p1", "x"}));
  auto stats = ask_to<actor_stats>(tracking, nullptr, stats_atom::value);
  REQUIRE(stats);
  CHECK(stats->name == "tracking");
  CHECK(stats->summary.find("1 answered, 1 refused") != std::string::npos);
}
