#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <memory>
#include <mutex>
#include <optional>

#include "actors/policy/job_runners.hpp"
#include "bench/runner/bench_sleep_runner.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/process_runner.hpp"

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

struct one_run {
  std::mutex mtx;
  std::condition_variable cv;
  std::optional<int> pid;
  std::optional<atlas::process_exit> exit;
  clock_type::time_point ended_at;

  void start(atlas::job_runner& runner, const std::string& id) {
    atlas::run_request req;
    req.job_id = id;
    req.run_id = id;
    req.argv = {"/nonexistent/never-run"}; // would fail if anything were spawned
    runner.start(
      std::move(req),
      [this](int p) {
        std::lock_guard<std::mutex> g{mtx};
        pid = p;
        cv.notify_all();
      },
      [this](atlas::process_exit ex) {
        std::lock_guard<std::mutex> g{mtx};
        exit = std::move(ex);
        ended_at = clock_type::now();
        cv.notify_all();
      });
  }
  bool started() {
    std::unique_lock<std::mutex> g{mtx};
    return cv.wait_for(g, 10s, [&] { return pid.has_value(); });
  }
  bool ended() {
    std::unique_lock<std::mutex> g{mtx};
    return cv.wait_for(g, 10s, [&] { return exit.has_value(); });
  }
};

} // namespace

TEST_CASE("a bench-sleep job runs no process and exits 0 after its time",
          "[bench_sleep_runner]") {
  atlas::event_loop loop;
  loop.start();
  atlas::bench_sleep_runner runner{loop, 50};
  CHECK(std::string(runner.name()) == "bench-sleep");
  one_run run;
  auto t0 = clock_type::now();
  run.start(runner, "b1");
  REQUIRE(run.ended());
  CHECK(run.pid == 0); // no local process group
  CHECK(run.exit->exit_status == 0);
  CHECK(run.exit->term_signal == 0);
  CHECK(run.exit->error.empty());
  CHECK(run.ended_at - t0 >= 48ms); // libuv counts whole milliseconds
  loop.stop();
}

TEST_CASE("a bench-sleep job ends at once when signalled; unknown ids are ignored",
          "[bench_sleep_runner]") {
  atlas::event_loop loop;
  loop.start();
  atlas::bench_sleep_runner runner{loop, 60000};
  one_run run;
  run.start(runner, "b2");
  REQUIRE(run.started());
  runner.signal("no-such-job", SIGKILL);
  runner.signal("b2", SIGTERM);
  REQUIRE(run.ended());
  CHECK(run.exit->term_signal == SIGTERM);
  CHECK(run.exit->exit_status != 0);
  runner.signal("b2", SIGKILL); // over: a no-op
  loop.stop();
}

TEST_CASE("bench-sleep is never chosen unless the node was given it", "[bench_sleep_runner]") {
  atlas::event_loop loop;
  auto sup = std::make_unique<atlas::process_supervisor>(loop);
  atlas::job_runners runners;
  runners.add(std::make_unique<atlas::process_runner>(*sup));
  atlas::node_config cfg;
  atlas::job_record job;
  std::string error;
  CHECK(cfg.runner == "process"); // the default
  cfg.runner = "bench-sleep";
  CHECK(runners.choose(cfg, job, error) == nullptr);
  CHECK(error == "this node has no 'bench-sleep' runner");
  runners.add(std::make_unique<atlas::bench_sleep_runner>(loop, 0));
  auto* r = runners.choose(cfg, job, error);
  REQUIRE(r != nullptr);
  CHECK(std::string(r->name()) == "bench-sleep");
}
