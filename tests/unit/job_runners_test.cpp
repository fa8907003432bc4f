#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <memory>
#include <mutex>
#include <optional>

#include "actors/policy/job_runners.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/process_runner.hpp"

using namespace std::chrono_literals;

namespace {

// Waits (bounded) for one run's start and end.
struct one_run {
  std::mutex mtx;
  std::condition_variable cv;
  int pid = -1;
  std::optional<atlas::process_exit> exit;

  void start(atlas::job_runner& runner, atlas::run_request req) {
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
        cv.notify_all();
      });
  }
  bool started() {
    std::unique_lock<std::mutex> g{mtx};
    return cv.wait_for(g, 10s, [&] { return pid > 0 || exit; }) && pid > 0;
  }
  bool ended() {
    std::unique_lock<std::mutex> g{mtx};
    return cv.wait_for(g, 10s, [&] { return exit.has_value(); });
  }
};

atlas::run_request request(std::string id, std::vector<std::string> argv) {
  atlas::run_request req;
  req.run_id = id;
  req.job_id = std::move(id);
  req.argv = std::move(argv);
  req.env = {"PATH=/usr/bin:/bin"};
  return req;
}

} // namespace

TEST_CASE("the process runner reports a job's start and exit code", "[job_runners]") {
  atlas::event_loop loop;
  loop.start();
  auto sup = std::make_unique<atlas::process_supervisor>(loop);
  atlas::process_runner runner{*sup};
  one_run run;
  run.start(runner, request("j1", {"sh", "-c", "exit 3"}));
  REQUIRE(run.ended());
  CHECK(run.pid > 0);
  CHECK(run.exit->exit_status == 3);
  loop.stop();
}

TEST_CASE("the process runner signals a running job by its id, and ignores unknown ids",
          "[job_runners]") {
  atlas::event_loop loop;
  loop.start();
  auto sup = std::make_unique<atlas::process_supervisor>(loop);
  atlas::process_runner runner{*sup};
  one_run run;
  run.start(runner, request("j2", {"sleep", "30"}));
  REQUIRE(run.started());
  runner.signal("no-such-job", SIGKILL); // nothing happens
  runner.signal("j2", SIGTERM);
  REQUIRE(run.ended());
  CHECK(run.exit->term_signal == SIGTERM);
  runner.signal("j2", SIGKILL); // over: a no-op, never another process
  loop.stop();
}

TEST_CASE("a node runs jobs with its configured runner, and says when it has none",
          "[job_runners]") {
  atlas::event_loop loop;
  auto sup = std::make_unique<atlas::process_supervisor>(loop);
  atlas::job_runners runners;
  runners.add(std::make_unique<atlas::process_runner>(*sup));
  atlas::node_config cfg;
  atlas::job_record job;
  std::string error;
  cfg.runner = "process";
  auto* r = runners.choose(cfg, job, error);
  REQUIRE(r != nullptr);
  CHECK(std::string(r->name()) == "process");
  cfg.runner = "docker";
  CHECK(runners.choose(cfg, job, error) == nullptr);
  CHECK(error == "this node has no 'docker' runner");
}

namespace {

/// Stands in for the docker runner in the choice only (it runs nothing).
struct named_runner final : atlas::job_runner {
  const char* name() const override { return "docker"; }
  void start(atlas::run_request, std::function<void(int)>,
             std::function<void(atlas::process_exit)>) override {}
  void signal(const std::string&, int) override {}
};

} // namespace

TEST_CASE("a job whose spec names an image runs in a container where the node has Docker",
          "[job_runners]") {
  atlas::event_loop loop;
  auto sup = std::make_unique<atlas::process_supervisor>(loop);
  atlas::job_runners runners;
  runners.add(std::make_unique<atlas::process_runner>(*sup));
  atlas::node_config cfg;
  atlas::job_record job;
  job.spec = R"({"image":"python:3.11","command":["main.py"]})";
  std::string error;
  CHECK(std::string(runners.choose(cfg, job, error)->name()) == "process"); // no Docker here
  runners.add(std::make_unique<named_runner>());
  CHECK(std::string(runners.choose(cfg, job, error)->name()) == "docker");
  job.spec = R"({"command":["main.py"]})";
  CHECK(std::string(runners.choose(cfg, job, error)->name()) == "process");
  cfg.runner = "docker"; // configured: every job runs in a container
  CHECK(std::string(runners.choose(cfg, job, error)->name()) == "docker");
}

TEST_CASE("two runs of one job on one node are signalled apart by their run ids",
          "[job_runners]") {
  // A discarded copy may still be ending on one slot while the job runs again
  // on another: the copy's end must not make the new run unreachable.
  atlas::event_loop loop;
  loop.start();
  auto sup = std::make_unique<atlas::process_supervisor>(loop);
  atlas::process_runner runner{*sup};
  auto old_req = request("j3", {"sleep", "30"});
  old_req.run_id = "j3-slot0";
  auto new_req = request("j3", {"sleep", "30"});
  new_req.run_id = "j3-slot1";
  one_run old_copy, new_copy;
  old_copy.start(runner, old_req);
  new_copy.start(runner, new_req);
  REQUIRE(old_copy.started());
  REQUIRE(new_copy.started());
  runner.signal("j3-slot0", SIGKILL);
  REQUIRE(old_copy.ended());
  CHECK(old_copy.exit->term_signal == SIGKILL);
  runner.signal("j3-slot1", SIGTERM);
  REQUIRE(new_copy.ended());
  CHECK(new_copy.exit->term_signal == SIGTERM);
  loop.stop();
}
