// The master, the job lifecycle and their protocol with slots, run on CAF's
// deterministic test coordinator with fake collaborators that implement the
// real typed interfaces (a lookup kept in memory, slots driven by the test).

#include <catch2/catch.hpp>

#include <map>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/master.hpp"
#include "actors/master_plan.hpp"
#include "actors/master_state.hpp"
#include "messages/actors.hpp"
#include "messages/errors.hpp"
#include "messages/types.hpp"

using namespace atlas;

namespace {

/// What the fake lookup stored: the last record of every job.
using store = std::map<std::string, job_record>;

struct fake_lookup_state {
  std::shared_ptr<store> records;
};

lookup_actor::behavior_type
fake_lookup(lookup_actor::stateful_pointer<fake_lookup_state> self, std::shared_ptr<store> db) {
  self->state.records = db;
  return {
    [=](enqueue_atom, const job_record& rec) -> caf::result<bool> {
      if (db->count(rec.job_id))
        return make_error(ec::conflict, "exists");
      (*db)[rec.job_id] = rec;
      return true;
    },
    [=](put_atom, const job_record& rec) {
      (*db)[rec.job_id] = rec;
      return true;
    },
    [=](get_atom, const std::string& id) -> caf::result<job_record> {
      if (!db->count(id))
        return make_error(ec::not_found, "no");
      return db->at(id);
    },
    [=](list_atom) {
      std::vector<job_record> out;
      for (auto& [id, rec] : *db)
        out.push_back(rec);
      return out;
    },
    [=](recover_atom) {
      std::vector<job_record> out;
      for (auto& [id, rec] : *db)
        out.push_back(rec);
      return out;
    },
    [=](list_atom, job_state s) {
      std::vector<job_record> out;
      for (auto& [id, rec] : *db)
        if (rec.state == s)
          out.push_back(rec);
      return out;
    },
    // Pages are the lookup's own (lookup_test.cpp): here, not indexed.
    [=](list_atom, const std::string&, const std::string&, const std::string&, uint64_t) {
      return job_page{{}, 0, "", 0, false};
    },
    [=](list_atom, const std::string&, const std::string&, bool, const std::string&, uint64_t) {
      return job_page{{}, 0, "", 0, false};
    },
    [=](list_atom, job_state, const std::string&, uint64_t) { return job_page{{}, 0, "", 0, false}; },
    [=](list_atom, sweep_atom, const std::string&, const std::string&, uint64_t) {
      return std::vector<job_record>{};
    },
    [=](list_atom, projects_atom) { return project_views{{}, false}; },
    [=](list_atom, jobs_atom, const std::string&, uint64_t) { return job_page{{}, 0, "", 0, false}; },
    [=](list_atom, const std::string&, uint64_t) { return job_page{{}, 0, "", 0, false}; },
    [=](delete_atom, const std::string& id) { return db->erase(id) > 0; },
    [=](endpoint_atom, const std::string&) { return true; },
    [=](endpoint_atom) -> caf::result<std::string> { return std::string{"x:1"}; },
    [=](publish_atom, const std::string&) {},
    [=](events_atom, const std::string&, uint64_t) { return std::string{"{\"events\":[]}"}; },
    [=](usage_atom, double, double) { return std::string{"{\"rows\":[]}"}; },
    [=](metrics_atom) { return std::vector<uint64_t>(7, 0); },
    [=](stats_atom) { return actor_stats{}; },
    [=](flush_atom) {},
  };
}

/// What a fake slot saw.
struct slot_log {
  std::vector<std::string> runs;  // job ids it was asked to run
  std::vector<std::string> stops; // job ids it was asked to stop
  caf::actor job;                 // lifecycle actor of the job in hand
};

struct fake_slot_state {
  std::shared_ptr<slot_log> log;
};

/// A slot whose job progresses only when the test says so: `started` makes
/// it report running, `exited` reports the end (0 = completed).
worker_slot_actor::behavior_type
fake_slot(worker_slot_actor::stateful_pointer<fake_slot_state> self,
          std::shared_ptr<slot_log> log, master_actor master, std::string key) {
  slot_info info;
  info.key = key; // "<node>/<index>", as the master checks
  info.node_id = key.substr(0, key.rfind('/'));
  info.index = std::stoi(key.substr(key.rfind('/') + 1));
  self->send(master, register_atom::value, info, worker_slot_actor{self});
  // As the real slot: running is one-way; an accepted end frees the slot on
  // the master, a refused one is followed by `idle`.
  auto report = [=](job_state s, int64_t rc) {
    auto job = caf::actor_cast<job_actor>(log->job);
    auto id = log->runs.back();
    if (s == job_state::running) {
      self->send(job, started_atom::value, id);
      return;
    }
    job_report rep{id, s, rc, true, s == job_state::completed ? "" : "failed"};
    self->request(job, caf::infinite, report_atom::value, rep)
      .then([=](bool accepted) {
        if (!accepted)
          self->send(master, idle_atom::value, key, id);
      }, [](caf::error&) {});
  };
  return {
    [=](run_atom, job_record& rec, caf::actor& job) {
      log->runs.push_back(rec.job_id);
      log->job = job;
    },
    [=](stop_atom, const std::string& id) { log->stops.push_back(id); },
    [=](drain_atom, bool) {},
    [=](preempt_atom, const std::string&) {},
    [=](limit_atom, const std::string&, uint64_t, bool) {},
    [=](get_atom) { return slot_info{}; },
    [=](stats_atom) { return actor_stats{}; },
    [=](prepared_atom, const std::string&, const std::string&, const std::string&) {},
    [=](started_atom, const std::string&, int32_t) { report(job_state::running, 0); },
    [=](exited_atom, const std::string&, int64_t status, int32_t, const std::string&,
        const std::string&, double, uint64_t) {
      report(status == 0 ? job_state::completed : job_state::failed, status);
    },
    [=](archived_atom, const std::string&, const std::string&) {},
    [=](kill_atom, const std::string&) {},
    [=](tick_atom) {},
    [=](register_atom, caf::actor&) {},
    [=](discard_atom, const std::string&) {},
    [=](adopt_atom, const std::string&, caf::actor&) {},
    [=](fetch_atom, const std::string&, uint64_t, uint64_t, const std::string&) {},
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<store> db = std::make_shared<store>();
  lookup_actor lookup;
  master_actor master;

  fixture() {
    register_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    lookup = sys->spawn(fake_lookup, db);
    auto node_cfg = std::make_shared<node_config>();
    node_cfg->node_id = "n1";
    master = spawn_master(*sys, node_cfg, lookup);
    sched->run();
  }

  ~fixture() {
    caf::anon_send_exit(master, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(lookup, caf::exit_reason::user_shutdown);
    sched->run();
    // Job actors and fake slots of unfinished jobs are still alive; nothing
    // runs them any more, so do not wait for them.
    sys->await_actors_before_shutdown(false);
  }

  worker_slot_actor slot(std::shared_ptr<slot_log> log, std::string key) {
    auto s = sys->spawn(fake_slot, log, master, std::move(key));
    sched->run();
    return s;
  }

  /// Submits a job as the gateway does and runs until everything settled.
  std::string submit(std::string id, std::string user = "ann") {
    job_record rec;
    rec.job_id = id;
    rec.username = std::move(user);
    rec.spec = "{}";
    caf::anon_send(master, submit_atom::value, rec);
    sched->run();
    return id;
  }

  job_state state_of(const std::string& id) { return db->at(id).state; }
};

} // namespace

TEST_CASE_METHOD(fixture, "a job goes queued, pending, running, completed through a slot",
                 "[actors]") {
  auto log = std::make_shared<slot_log>();
  auto s = slot(log, "n1/0");
  submit("j1");
  REQUIRE(log->runs == std::vector<std::string>{"j1"});
  CHECK(state_of("j1") == job_state::pending);
  caf::anon_send(s, started_atom::value, std::string{"j1"}, int32_t{42});
  sched->run();
  CHECK(state_of("j1") == job_state::running);
  caf::anon_send(s, exited_atom::value, std::string{"j1"}, int64_t{0}, int32_t{0}, std::string{},
                 std::string{}, 0.0, uint64_t{0});
  sched->run();
  CHECK(state_of("j1") == job_state::completed);
  CHECK(db->at("j1").end_time > 0);
  std::vector<job_state> steps;
  for (auto& t : db->at("j1").history)
    steps.push_back(t.state);
  CHECK(steps == std::vector<job_state>{job_state::queued, job_state::pending,
                                        job_state::running, job_state::completed});
  CHECK(db->at("j1").history[1].slot == "n1/0");
}

TEST_CASE_METHOD(fixture, "jobs wait in the queue until a slot frees, without polling",
                 "[actors]") {
  auto log = std::make_shared<slot_log>();
  auto s = slot(log, "n1/0");
  submit("a");
  submit("b");
  CHECK(log->runs == std::vector<std::string>{"a"});
  CHECK(state_of("b") == job_state::queued);
  caf::anon_send(s, started_atom::value, std::string{"a"}, int32_t{1});
  caf::anon_send(s, exited_atom::value, std::string{"a"}, int64_t{3}, int32_t{0}, std::string{},
                 std::string{}, 0.0, uint64_t{0});
  sched->run();
  CHECK(state_of("a") == job_state::failed);
  CHECK(db->at("a").return_code == 3);
  CHECK(log->runs == std::vector<std::string>{"a", "b"});
}

TEST_CASE_METHOD(fixture, "a job whose slot disappears is requeued and runs elsewhere",
                 "[actors]") {
  auto first = std::make_shared<slot_log>();
  auto s1 = slot(first, "n1/0");
  submit("j");
  REQUIRE(first->runs.size() == 1);
  auto second = std::make_shared<slot_log>();
  auto s2 = slot(second, "n2/0");
  caf::anon_send_exit(s1, caf::exit_reason::kill);
  sched->run();
  CHECK(second->runs == std::vector<std::string>{"j"});
  CHECK(db->at("j").retries == 1);
  CHECK(state_of("j") == job_state::pending);
}

TEST_CASE_METHOD(fixture, "a stopped queued job is cancelled and never dispatched",
                 "[actors]") {
  submit("q");
  bool answered = false;
  caf::scoped_actor client{*sys};
  client->send(master, stop_atom::value, std::string{"q"});
  sched->run();
  client->receive([&](bool ok) { answered = ok; }, [](caf::error&) {});
  CHECK(answered);
  CHECK(state_of("q") == job_state::cancelled);
  auto log = std::make_shared<slot_log>();
  slot(log, "n1/0");
  CHECK(log->runs.empty());
}

TEST_CASE_METHOD(fixture, "stopping a running job asks its slot to stop it", "[actors]") {
  auto log = std::make_shared<slot_log>();
  auto s = slot(log, "n1/0");
  submit("r");
  caf::anon_send(s, started_atom::value, std::string{"r"}, int32_t{7});
  sched->run();
  caf::anon_send(master, stop_atom::value, std::string{"r"});
  sched->run();
  CHECK(log->stops == std::vector<std::string>{"r"});
}

TEST_CASE_METHOD(fixture, "a stopped job whose slot disappears ends cancelled, in its history too",
                 "[actors]") {
  // Found by the soak campaign (tests/soak): the record said cancelled but
  // its history ended with `lost`, without a terminal state.
  auto log = std::make_shared<slot_log>();
  auto s = slot(log, "n1/0");
  submit("gone");
  caf::anon_send(s, started_atom::value, std::string{"gone"}, int32_t{7});
  sched->run();
  caf::anon_send(master, stop_atom::value, std::string{"gone"});
  sched->run();
  REQUIRE(log->stops == std::vector<std::string>{"gone"});
  caf::anon_send_exit(s, caf::exit_reason::kill);
  sched->run();
  CHECK(state_of("gone") == job_state::cancelled);
  REQUIRE_FALSE(db->at("gone").history.empty());
  CHECK(db->at("gone").history.back().state == job_state::cancelled);
  CHECK(db->at("gone").end_time > 0);
}

TEST_CASE_METHOD(fixture, "a second submission with the same id is refused", "[actors]") {
  submit("dup");
  caf::scoped_actor client{*sys};
  job_record rec;
  rec.job_id = "dup";
  client->send(master, submit_atom::value, rec);
  sched->run();
  bool refused = false;
  client->receive([](std::string&) {},
                  [&](caf::error& err) { refused = http_status_of(err) == 409; });
  CHECK(refused);
}

namespace {

/// What the master says about itself: "<n> queued, <m> active, ...".
std::string master_summary(fixture& f, const master_actor& m) {
  caf::scoped_actor client{*f.sys};
  client->send(m, stats_atom::value);
  f.sched->run();
  std::string out;
  client->receive([&](actor_stats& s) { out = s.summary; }, [](caf::error&) {});
  return out;
}

std::vector<std::string> queued_ids(fixture& f) {
  caf::scoped_actor client{*f.sys};
  client->send(f.master, list_atom::value);
  f.sched->run();
  std::vector<std::string> out;
  client->receive(
    [&](std::vector<job_record>& recs) {
      for (auto& r : recs)
        out.push_back(r.job_id);
    },
    [](caf::error&) {});
  return out;
}

} // namespace

TEST_CASE_METHOD(fixture, "a queued job is a record only: its lifecycle actor starts at dispatch",
                 "[actors]") {
  submit("w1");
  submit("w2");
  CHECK(master_summary(*this, master).rfind("2 queued, 0 active", 0) == 0);
  CHECK(queued_ids(*this) == std::vector<std::string>{"w1", "w2"});
  // Its record is answered by the master while queued.
  caf::scoped_actor client{*sys};
  client->send(master, jobs_atom::value, std::string{"w2"});
  sched->run();
  job_record got;
  client->receive([&](job_record& r) { got = r; }, [](caf::error&) {});
  CHECK(got.job_id == "w2");
  CHECK(got.state == job_state::queued);
  auto log = std::make_shared<slot_log>();
  slot(log, "n1/0");
  CHECK(log->runs == std::vector<std::string>{"w1"});
  CHECK(master_summary(*this, master).rfind("1 queued, 1 active", 0) == 0);
  CHECK(queued_ids(*this) == std::vector<std::string>{"w2"});
}

TEST_CASE_METHOD(fixture, "a job stopped while queued ends cancelled with its reason, in history too",
                 "[actors]") {
  submit("sq");
  caf::scoped_actor client{*sys};
  client->send(master, stop_atom::value, std::string{"sq"});
  sched->run();
  bool answered = false;
  client->receive([&](bool ok) { answered = ok; }, [](caf::error&) {});
  CHECK(answered);
  auto& rec = db->at("sq");
  CHECK(rec.state == job_state::cancelled);
  CHECK(rec.reason == "stopped by user while queued");
  CHECK(rec.end_time > 0);
  std::vector<job_state> steps;
  for (auto& t : rec.history)
    steps.push_back(t.state);
  CHECK(steps == std::vector<job_state>{job_state::queued, job_state::cancelled});
  CHECK(master_summary(*this, master).rfind("0 queued, 0 active", 0) == 0);
  // Stopping it again: it is neither queued nor running any more.
  client->send(master, stop_atom::value, std::string{"sq"});
  sched->run();
  bool refused = false;
  client->receive([](bool) {}, [&](caf::error& err) { refused = http_status_of(err) == 404; });
  CHECK(refused);
}

TEST_CASE_METHOD(fixture, "a requeued job drops its actor, waits as a record and can be stopped",
                 "[actors]") {
  auto log = std::make_shared<slot_log>();
  auto s = slot(log, "n1/0");
  submit("rq");
  REQUIRE(log->runs == std::vector<std::string>{"rq"});
  CHECK(master_summary(*this, master).rfind("0 queued, 1 active", 0) == 0);
  caf::anon_send_exit(s, caf::exit_reason::kill);
  sched->run();
  CHECK(state_of("rq") == job_state::queued);
  CHECK(db->at("rq").retries == 1);
  CHECK(master_summary(*this, master).rfind("1 queued, 0 active", 0) == 0);
  caf::scoped_actor client{*sys};
  client->send(master, stop_atom::value, std::string{"rq"});
  sched->run();
  client->receive([](bool) {}, [](caf::error&) {});
  CHECK(state_of("rq") == job_state::cancelled);
  CHECK(db->at("rq").reason == "stopped by user while queued");
  CHECK(db->at("rq").history.back().state == job_state::cancelled);
}

TEST_CASE_METHOD(fixture, "a restarted master queues the queued and lost records it finds, in order",
                 "[actors]") {
  auto record = [&](std::string id, job_state s, uint64_t seq) {
    job_record r;
    r.job_id = id;
    r.username = "ann";
    r.spec = "{}";
    r.state = s;
    r.seq = seq;
    r.queued_time = 1;
    r.history = {job_transition{job_state::queued, 1, {}}};
    if (s == job_state::lost) {
      r.history.push_back(job_transition{job_state::pending, 2, "n9/0"});
      r.history.push_back(job_transition{job_state::lost, 3, "n9/0"});
      r.slot = "n9/0";
    }
    (*db)[id] = r;
  };
  record("old-q", job_state::queued, 10);
  record("old-lost", job_state::lost, 5);
  record("old-done", job_state::completed, 1);
  auto cfg2 = std::make_shared<node_config>();
  cfg2->node_id = "n1";
  auto m2 = spawn_master(*sys, cfg2, lookup);
  sched->run();
  CHECK(master_summary(*this, m2).rfind("2 queued, 0 active", 0) == 0);
  CHECK(state_of("old-lost") == job_state::queued);
  CHECK(db->at("old-lost").retries == 1);
  CHECK(db->at("old-lost").slot.empty());
  CHECK(db->at("old-lost").history.back().state == job_state::queued);
  auto log = std::make_shared<slot_log>();
  sys->spawn(fake_slot, log, m2, std::string{"n1/0"});
  sched->run();
  CHECK(log->runs == std::vector<std::string>{"old-lost"}); // submitted first
  CHECK(state_of("old-lost") == job_state::pending);
  CHECK(state_of("old-q") == job_state::queued);
  caf::anon_send_exit(m2, caf::exit_reason::user_shutdown);
  sched->run();
}

TEST_CASE_METHOD(fixture, "a job stopped while its requeue is persisted ends cancelled, not queued",
                 "[actors]") {
  auto log = std::make_shared<slot_log>();
  auto s = slot(log, "n1/0");
  submit("race");
  REQUIRE(log->runs == std::vector<std::string>{"race"});
  caf::anon_send_exit(s, caf::exit_reason::kill);
  sched->run_once(); // the slot ends: the master's next message is its down
  caf::scoped_actor client{*sys};
  client->send(master, stop_atom::value, std::string{"race"});
  sched->run();
  client->receive([](bool) {}, [](caf::error&) {});
  CHECK(state_of("race") == job_state::cancelled);
  CHECK(db->at("race").history.back().state == job_state::cancelled);
  CHECK(queued_ids(*this).empty());
  CHECK(master_summary(*this, master).rfind("0 queued, 0 active", 0) == 0);
}

TEST_CASE("the dispatch input holds the free slots of undrained nodes with their nodes' busy slots", "[actors]") {
  auto cfg = std::make_shared<node_config>();
  master_state st;
  st.cfg = cfg;
  // node: busy slots, free slots. "a/b" is a node whose id contains the
  // separator: its slots must not count for node "a".
  auto add = [&](const std::string& node, int busy, int free) {
    for (int i = 0; i < busy + free; ++i) {
      slot_entry e;
      e.info.node_id = node;
      e.info.key = node + "/" + std::to_string(i);
      if (i < busy)
        e.info.current_job = node + "-job" + std::to_string(i);
      else
        st.free_slots.insert(e.info.key);
      st.put_slot(std::move(e));
    }
  };
  add("a", 2, 1);
  add("a/b", 3, 0);
  add("c", 0, 2);
  add("d", 1, 1);
  add("e", 0, 1);
  st.nodes["e"].drained = true; // takes no work
  CHECK(st.busy_on("a") == 2);
  auto keys = [](const dispatch_input& in) {
    std::vector<std::string> out;
    for (auto i : placement_order(in))
      out.push_back(in.slots[i].key);
    return out;
  };
  auto in = dispatch_input_of(st, 0);
  CHECK(in.busy == std::map<std::string, size_t>{{"a", 2}, {"c", 0}, {"d", 1}});
  CHECK(keys(in) == std::vector<std::string>{"c/0", "c/1", "d/1", "a/2"});
  cfg->placement = "pack";
  CHECK(keys(dispatch_input_of(st, 0)) == std::vector<std::string>{"a/2", "d/1", "c/0", "c/1"});
  CHECK(st.gpu_slots == 0);
  slot_entry g;
  g.info.node_id = "c";
  g.info.key = "c/0";
  g.info.gpus = {"0"};
  st.put_slot(g);
  CHECK(st.gpu_slots == 1);
  st.put_slot(g); // registered again: still one
  CHECK(st.gpu_slots == 1);
  st.erase_slot(st.slots.find("c/0"));
  CHECK(st.gpu_slots == 0);
}
