// A real worker slot (event loop, bundle extraction, the bench-sleep runner)
// whose job ends while the job's lifecycle actor does not answer: the slot
// must not touch the job's files on its own, and must hand over the end
// once a (new) master adopts the job. The wait is bounded by the slot's own
// deadline for that question (5 s).

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/policy/job_runners.hpp"
#include "actors/worker_slot.hpp"
#include "adapters/archive.hpp"
#include "bench/runner/bench_sleep_runner.hpp"
#include "adapters/event_loop.hpp"
#include "messages/actors.hpp"
#include "messages/types.hpp"
#include "library/job_paths.hpp"

using namespace atlas;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// What a fake lifecycle actor heard from the slot.
struct heard {
  std::mutex m;
  std::condition_variable cv;
  int placed_asked = 0;
  std::vector<job_state> reports;

  template <class Pred>
  bool wait_for(Pred pred, std::chrono::seconds bound) {
    std::unique_lock<std::mutex> lock{m};
    return cv.wait_for(lock, bound, pred);
  }
  void note(const std::function<void()>& f) {
    {
      std::lock_guard<std::mutex> g{m};
      f();
    }
    cv.notify_all();
  }
};

/// A lifecycle actor that answers reports and, when `answers_placed`, the
/// question whether the job is still placed on the slot; otherwise it
/// leaves that question unanswered (a master that hangs).
job_actor::behavior_type fake_job(job_actor::pointer self, std::shared_ptr<heard> log,
                                  bool answers_placed) {
  return {
    [=](dispatch_atom, worker_slot_actor&, const slot_info&) {},
    [=](report_atom, const job_report& rep) {
      log->note([&] { log->reports.push_back(rep.state); });
      return true;
    },
    [=](started_atom, const std::string&) {},
    [=](adopt_atom, worker_slot_actor&, const slot_info&) { return true; },
    [=](lost_atom, const std::string&) {},
    [=](stop_atom) { return true; },
    [=](preempt_atom, int64_t) {},
    [=](get_atom) { return job_record{}; },
    [=](placed_atom, const std::string&) -> caf::result<bool> {
      log->note([&] { ++log->placed_asked; });
      if (answers_placed)
        return true;
      return self->make_response_promise<bool>(); // never delivered
    },
    [=](stats_atom) { return actor_stats{}; },
  };
}

// (An argument, as CAF 0.17 binds a null tuple for argument-less spawns,
// which UBSan reports.)
node_actor::behavior_type fake_node(node_actor::pointer, int) {
  return {
    [](redis_atom) {},
    [](redis_atom, int64_t) {},
    [](kill_atom) {},
    [](drain_atom, int32_t) { return true; },
    [](register_atom, worker_slot_actor&) {},
    [](register_atom, http_gateway_actor&) {},
    [](register_atom, tracking_actor&) {},
    [](connect_atom) {},
    [](connect_atom, cluster_actor&) {},
    [](register_atom, master_actor&) {},
    [](ping_atom) {},
    [](actors_atom) { return std::vector<actor_stats>{}; },
    [](stats_atom) { return actor_stats{}; },
    [](connect_atom, const std::string&) {},
    [](idle_atom, const std::string&) {},
    [](slots_atom, put_atom) { return std::string{}; },
    [](slots_atom, delete_atom, worker_slot_actor&) {},
  };
}

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/atlas-slot-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

} // namespace

TEST_CASE("a slot whose question goes unanswered holds the job's end until it is adopted",
          "[worker_slot]") {
  temp_dir tmp;
  auto cfg = std::make_shared<node_config>();
  cfg->node_id = "n1";
  cfg->host_address = "127.0.0.1";
  cfg->shared_fs = "yes";
  cfg->runner = "bench-sleep";
  cfg->job_store_dir_root = tmp.path + "/store";
  cfg->working_dir_root = tmp.path + "/work";
  cfg->job_results_root = tmp.path + "/results";
  const std::string id = "held-1";
  auto paths = job_paths::of(*cfg, id);
  fs::create_directories(tmp.path + "/src");
  fs::create_directories(cfg->job_store_dir_root);
  std::ofstream(tmp.path + "/src/main.py") << "print('hi')\n";
  REQUIRE(archive::create_tgz(tmp.path + "/src", paths.bundle, id));

  event_loop loop;
  loop.start();
  job_runners runners;
  runners.add(std::make_unique<bench_sleep_runner>(loop, 0));
  caf::actor_system_config sys_cfg;
  register_message_types(sys_cfg);
  sys_cfg.set("logger.verbosity", caf::atom("quiet"));
  auto sys = std::make_unique<caf::actor_system>(sys_cfg);
  auto node = sys->spawn(fake_node, 0);
  node_context ctx{cfg, &loop, nullptr, &runners, nullptr};
  auto slot = spawn_worker_slot(*sys, ctx, 0, {}, master_actor{}, node);

  auto silent_log = std::make_shared<heard>();
  auto silent = sys->spawn(fake_job, silent_log, false);
  job_record rec;
  rec.job_id = id;
  rec.state = job_state::pending;
  rec.spec = R"({"entrypoint": ["/bin/true"]})";
  rec.slot = "n1/0";
  caf::anon_send(slot, run_atom::value, rec, caf::actor_cast<caf::actor>(silent));

  // The job ends at once; the slot asks whether it may archive, and waits.
  REQUIRE(silent_log->wait_for([&] { return silent_log->placed_asked == 1; }, 10s));
  auto asked = std::chrono::steady_clock::now();
  // Past the question's deadline (5 s, checked at most a second late) the
  // slot holds the job: files untouched, no report to anyone.
  std::this_thread::sleep_for(7s);
  CHECK(fs::exists(paths.work_dir));
  CHECK_FALSE(fs::exists(paths.artifacts));
  CHECK(silent_log->reports.empty());

  // A new master adopts the job: the slot archives, then reports the end.
  auto adopter_log = std::make_shared<heard>();
  auto adopter = sys->spawn(fake_job, adopter_log, true);
  caf::anon_send(slot, adopt_atom::value, id, caf::actor_cast<caf::actor>(adopter));
  REQUIRE(adopter_log->wait_for([&] { return !adopter_log->reports.empty(); }, 10s));
  CHECK(adopter_log->reports.front() == job_state::completed);
  CHECK(fs::exists(paths.artifacts));
  CHECK_FALSE(fs::exists(paths.work_dir));
  CHECK(std::chrono::steady_clock::now() - asked >= 5s);

  for (auto a : {caf::actor_cast<caf::actor>(slot), caf::actor_cast<caf::actor>(silent),
                 caf::actor_cast<caf::actor>(adopter), caf::actor_cast<caf::actor>(node)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  slot = nullptr;
  silent = nullptr;
  adopter = nullptr;
  node = nullptr;
  sys.reset();
  loop.stop();
}
