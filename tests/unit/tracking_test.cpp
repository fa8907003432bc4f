// The tracking actor against a real redis-server, next to a lookup that
// stores the job records as the lifecycle actor does: the job's secret,
// Redis going away and coming back, the lease's fence.

#include "tests/unit/lookup_fixture.hpp"

#include <csignal>
#include <thread>

#include "actors/dashboard/tracking.hpp"
#include "adapters/json.hpp"
#include "library/tracking/store.hpp"

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

TEST_CASE_METHOD(tracking_fixture, "the summary keeps every value of a metric, up to the listing's cap",
                 "[tracking]") {
  // Unfenced (MULTI/EXEC) and fenced (inside the lease script) writes alike.
  bool fenced = GENERATE(false, true);
  if (fenced) {
    const std::string mine = "1 m-1 http://m1:5000/";
    run({"SET", keys::master_lease, mine});
    redis_write_options opts;
    opts.fence = mine;
    respawn_tracking(opts);
  }
  auto rec = new_job(fenced ? "values-fenced" : "values-1");
  REQUIRE(enqueue(rec));
  dispatch(rec);
  REQUIRE(put(rec));
  move_to(rec, job_state::running);
  REQUIRE(put(rec));
  auto batch = [](const std::string& key, int from, int to) {
    std::string out = R"({"entries":[)";
    for (int i = from; i < to; ++i)
      out += (i > from ? "," : "") + std::string(R"({"kind":"metric","key":")") + key
             + R"(","value":)" + std::to_string(i) + R"(,"step":)" + std::to_string(i) + "}";
    return out + "]}";
  };
  auto track = [&](const std::string& body) {
    return store(nullptr, "track", {rec.job_id, rec.job_secret, body}).has_value();
  };
  REQUIRE(track(batch("thrice", 0, 2)));
  REQUIRE(track(batch("thrice", 2, 3)));
  REQUIRE(track(batch("once", 7, 8)));
  REQUIRE(track(R"({"entries":[{"kind":"metric","key":"text","value":"a\nb, \"c\""}]})"));
  REQUIRE(track(R"({"entries":[{"kind":"metric","key":"text","value":"d"}]})"));
  // More than the cap in one batch, then across batches: the last ones stay.
  auto cap = static_cast<int>(dashboard::max_listed_metric_values);
  REQUIRE(track(batch("many", 0, cap + 3)));
  REQUIRE(track(batch("many", cap + 3, cap + 5)));
  auto body = store(nullptr, "summary", {rec.job_id});
  REQUIRE(body);
  std::string err;
  auto doc = json::parse(*body, err);
  REQUIRE(doc);
  auto values = doc->find(rec.job_id)->find("values");
  REQUIRE(values);
  CHECK(values->find("thrice")->dump() == R"({"count":3,"values":[0,1,2]})");
  CHECK(values->find("once")->dump() == R"({"count":1,"values":[7]})");
  CHECK(values->find("text")->dump() == R"({"count":2,"values":["a\nb, \"c\"","d"]})");
  auto many = values->find("many");
  CHECK(many->get_int("count") == cap + 5);
  auto& kept = many->find("values")->array;
  REQUIRE(kept.size() == static_cast<size_t>(cap));
  CHECK(kept.front().integer == 5);
  CHECK(kept.back().integer == cap + 4);
  // The latest value (what sorting uses) is still kept apart.
  CHECK(doc->find(rec.job_id)->find("metrics")->find("many")->get_int("value") == cap + 4);
  // Removing an absent tag succeeds, as the original's.
  CHECK(store(nullptr, "untag", {rec.job_id, "never-set"}) == std::string("true"));
}
