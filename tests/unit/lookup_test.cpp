// The lookup actor against a real redis-server: what one job's lifecycle
// costs in Redis commands (counted by Redis itself), and that the indexes
// stay right on the rare paths (a guessed previous state that is wrong, a
// stale index entry, a repeated or conflicting submission, deletion).
// (The tracking secret's checks are in tracking_test.cpp.)

#include "tests/unit/lookup_fixture.hpp"

#include "adapters/json.hpp"
#include "library/events.hpp"
#include "library/job_codec.hpp"
#include "library/job_index.hpp"
#include "library/usage.hpp"

#include <csignal>
#include <thread>

using namespace atlas;
using namespace atlas::test;
using namespace std::chrono_literals;

TEST_CASE_METHOD(fixture, "one job's lifecycle costs 34 Redis commands, no MULTI/EXEC",
                 "[lookup]") {
  run({"CONFIG", "RESETSTAT"});
  auto rec = new_job("life-1");
  REQUIRE(enqueue(rec));
  dispatch(rec);
  REQUIRE(put(rec));
  move_to(rec, job_state::running);
  REQUIRE(put(rec));
  move_to(rec, job_state::completed);
  REQUIRE(put(rec));

  auto stats = commandstats();
  long total = 0;
  for (auto& [name, calls] : stats)
    total += calls;
  INFO("commands: " << [&] {
    std::string s;
    for (auto& [name, calls] : stats)
      s += name + "=" + std::to_string(calls) + " ";
    return s;
  }());
  // enqueue 2, pending 4 (with secret and routing), running 2, end 3 (with
  // the secret's deletion: it must not outlive the job; SET, SREM: out of
  // the running set once the record says it ended, its finished list being
  // its index now); each transition's event (4 XADD) and the end's
  // once-marker (SET NX). The enqueue and the end run in a script (their
  // events depend on the SET NX before them). The listing indexes
  // (library/job_index.hpp): the enqueue's three ZADD (its project's, its
  // status's, everyone's), SADD and version INCR; each later write's INCR
  // and its move between status indexes (ZREM, ZADD); the end's two ZADD
  // (ended, by end time).
  CHECK(total == 16 + 16 + 2);
  CHECK(stats["zadd"] == 8);
  CHECK(stats["zrem"] == 3);
  CHECK(stats["incr"] == 4);
  CHECK(stats["eval"] == 2);
  CHECK(stats["xadd"] == 4);
  CHECK(stats.count("multi") == 0);
  CHECK(stats.count("exec") == 0);
  CHECK(stats.count("exists") == 0);

  // And what they left is complete: the record, its one index, the
  // routing entry; the secret's digest is gone with the job's end.
  auto stored = ask<job_record>(nullptr, get_atom::value, std::string("life-1"));
  REQUIRE(stored);
  CHECK(stored->state == job_state::completed);
  CHECK(stored->history.size() == 4);
  CHECK(indexes_of("life-1") == std::set<std::string>{"completed_jobs"});
  CHECK(run({"EXISTS", keys::all_jobs}).integer == 0); // atlas:index:all holds every id
  CHECK(run({"HGET", keys::routing_map, "life-1"}).str == "10.0.0.7");
  CHECK(run({"EXISTS", keys::job_secret("life-1")}).integer == 0);
}

TEST_CASE_METHOD(fixture, "a requeued job and an unstored running state still end in one index",
                 "[lookup]") {
  auto rec = new_job("requeued-1");
  REQUIRE(enqueue(rec));
  dispatch(rec);
  REQUIRE(put(rec));
  // Lost and requeued are stored as one write (lost never on its own).
  move_to(rec, job_state::lost);
  move_to(rec, job_state::queued);
  REQUIRE(put(rec));
  CHECK(indexes_of("requeued-1") == std::set<std::string>{"queued"});
  dispatch(rec);
  REQUIRE(put(rec));
  CHECK(indexes_of("requeued-1") == std::set<std::string>{"pending"});
  // Pending → running → completed reported at once: the history's guess
  // (running) is wrong, the SMOVE says so and the index is repaired.
  move_to(rec, job_state::running);
  move_to(rec, job_state::completed);
  REQUIRE(put(rec));
  CHECK(indexes_of("requeued-1") == std::set<std::string>{"completed_jobs"});
  // A write sent again after it was applied (an answer lost) repairs too.
  REQUIRE(put(rec));
  CHECK(indexes_of("requeued-1") == std::set<std::string>{"completed_jobs"});
}

TEST_CASE_METHOD(fixture, "writes waiting together share one round trip and are all stored",
                 "[lookup]") {
  // Sent without waiting, as the master's job actors do: the lookup batches
  // what is in its mailbox. Two writes of one job may share a batch.
  constexpr int n = 200;
  caf::scoped_actor self{*sys};
  std::vector<job_record> recs;
  for (int i = 0; i < n; ++i)
    recs.push_back(new_job("batch-" + std::to_string(i)));
  using handle = decltype(self->request(lookup, 10s, put_atom::value, job_record{}));
  std::vector<handle> asked;
  // Every request leaves before any answer is read.
  auto fire = [&](auto atom, auto change) {
    for (auto& r : recs) {
      change(r);
      asked.push_back(self->request(lookup, 10s, atom, r));
    }
  };
  auto answers = [&] {
    int ok = 0;
    for (auto& h : asked)
      h.receive([&](bool b) { ok += b ? 1 : 0; }, [&](caf::error&) {});
    asked.clear();
    return ok;
  };
  fire(enqueue_atom::value, [](job_record&) {});
  CHECK(answers() == n);
  fire(put_atom::value, dispatch);
  // Running is followed at once by its end, in the same batch: the second
  // write's index move depends on the first's.
  fire(put_atom::value, [](job_record& r) { move_to(r, job_state::running); });
  fire(put_atom::value, [](job_record& r) { move_to(r, job_state::completed); });
  // Reads queued right behind the writes see them.
  using read_handle = decltype(self->request(lookup, 10s, get_atom::value, std::string{}));
  std::vector<read_handle> reads;
  for (auto& r : recs)
    reads.push_back(self->request(lookup, 10s, get_atom::value, r.job_id));
  CHECK(answers() == 3 * n);
  int read_completed = 0;
  for (auto& h : reads)
    h.receive([&](job_record& got) { read_completed += got.state == job_state::completed; },
              [&](caf::error&) {});
  CHECK(read_completed == n);
  CHECK(list(job_state::completed).size() == n);
  CHECK(run({"SCARD", keys::state_set("running")}).integer == 0);
  CHECK(run({"SCARD", keys::state_set("queued")}).integer == 0);
  CHECK(indexes_of("batch-7") == std::set<std::string>{"completed_jobs"});
  auto stats = ask<actor_stats>(nullptr, stats_atom::value);
  REQUIRE(stats);
  INFO(stats->summary);
  unsigned long writes = 0, trips = 0;
  REQUIRE(std::sscanf(stats->summary.c_str(), "%*[^,], %lu reads and writes in %lu round trips", &writes,
                      &trips) == 2);
  CHECK(writes == 5 * n);
  CHECK(trips < writes / 4); // batches of several requests each
}

TEST_CASE_METHOD(fixture, "a batch whose first write has a wrong guess is repaired from its last",
                 "[lookup]") {
  auto rec = new_job("guess-1");
  REQUIRE(enqueue(rec));
  dispatch(rec);
  REQUIRE(put(rec));
  move_to(rec, job_state::running);
  REQUIRE(put(rec));
  // The running write sent again (its answer was lost), then the end, in one
  // batch: the first SMOVE (pending → running) finds nothing to move and
  // asks for a repair, the second (running → completed) succeeds. Repairing
  // from the first write's record would put the job back under running.
  auto completed = rec;
  move_to(completed, job_state::completed);
  caf::scoped_actor self{*sys};
  auto first = self->request(lookup, 10s, put_atom::value, rec);
  auto second = self->request(lookup, 10s, put_atom::value, completed);
  int ok = 0;
  first.receive([&](bool b) { ok += b ? 1 : 0; }, [&](caf::error&) {});
  second.receive([&](bool b) { ok += b ? 1 : 0; }, [&](caf::error&) {});
  CHECK(ok == 2);
  CHECK(indexes_of("guess-1") == std::set<std::string>{"completed_jobs"});
  CHECK(list(job_state::completed).size() == 1);
}

TEST_CASE_METHOD(fixture, "a stale index entry does not show a job under the wrong state",
                 "[lookup]") {
  auto done = new_job("stale-1");
  REQUIRE(enqueue(done));
  dispatch(done);
  REQUIRE(put(done));
  move_to(done, job_state::running);
  REQUIRE(put(done));
  move_to(done, job_state::completed);
  REQUIRE(put(done));
  auto waiting = new_job("stale-2");
  REQUIRE(enqueue(waiting));

  // As a write cut off half way could leave them: a completed job's id in
  // the running set, a queued one's in pending, an id without a record.
  run({"SADD", keys::state_set("running"), "stale-1"});
  run({"SADD", keys::state_set("pending"), "stale-2"});
  run({"SADD", keys::all_jobs, "no-record"});
  run({"SADD", keys::state_set("queued"), "no-record"});

  CHECK(list(job_state::running).empty());
  CHECK(list(job_state::pending).empty());
  auto queued = list(job_state::queued);
  REQUIRE(queued.size() == 1);
  CHECK(queued[0].job_id == "stale-2");
  auto completed = list(job_state::completed);
  REQUIRE(completed.size() == 1);
  CHECK(completed[0].job_id == "stale-1");
  CHECK(list_all().size() == 2);
}

TEST_CASE_METHOD(fixture, "a second submission of an id is refused and leaves no index entry",
                 "[lookup]") {
  auto first = new_job("dup-1");
  REQUIRE(enqueue(first));
  // The same write again (its answer was lost and it was sent again): ours.
  CHECK(enqueue(first));
  dispatch(first);
  REQUIRE(put(first));
  move_to(first, job_state::running);
  REQUIRE(put(first));
  move_to(first, job_state::completed);
  REQUIRE(put(first));

  auto second = new_job("dup-1");
  second.queued_time = 2000;
  ec code = ec::unspecified;
  CHECK_FALSE(ask<bool>(&code, enqueue_atom::value, second));
  CHECK(code == ec::conflict);
  auto stored = ask<job_record>(nullptr, get_atom::value, std::string("dup-1"));
  REQUIRE(stored);
  CHECK(stored->state == job_state::completed); // not overwritten
  CHECK(indexes_of("dup-1") == std::set<std::string>{"completed_jobs"});
}

TEST_CASE_METHOD(fixture, "deleting a job removes its record, indexes, routing and tracking keys",
                 "[lookup]") {
  auto rec = new_job("gone-1");
  REQUIRE(enqueue(rec));
  dispatch(rec);
  REQUIRE(put(rec));
  move_to(rec, job_state::running);
  REQUIRE(put(rec));
  move_to(rec, job_state::failed);
  REQUIRE(put(rec));
  run({"SADD", keys::state_set("running"), "gone-1"}); // a stale entry goes too
  REQUIRE(run({"DBSIZE"}).integer > 0);

  CHECK(ask<bool>(nullptr, delete_atom::value, std::string("gone-1")).value_or(false));
  auto left = run({"KEYS", "*"});
  std::string names;
  for (auto& k : left.elements)
    names += k.str + " ";
  INFO("keys left: " << names);
  // The event stream keeps the job's history (usage totals would stay too);
  // the set of projects and the listing version stay.
  std::set<std::string> kept;
  for (auto& k : left.elements)
    kept.insert(k.str);
  CHECK(kept == std::set<std::string>{keys::events, keys::projects, keys::listing_version});
}

namespace {

std::vector<std::string> event_states(const std::string& page_json, const std::string& id) {
  std::vector<std::string> out;
  auto page = events::from_json(page_json);
  REQUIRE(page);
  for (auto& e : page->events) {
    std::string err;
    auto v = json::parse(e.json, err);
    REQUIRE(v);
    if (v->get_string("job_id") == id)
      out.push_back(v->get_string("state").value_or("") + std::to_string(v->get_int("n").value_or(0)));
  }
  return out;
}

} // namespace

TEST_CASE_METHOD(fixture, "each transition is published once, a job's end counted once, across a new lookup",
                 "[lookup]") {
  auto rec = new_job("ev-1");
  REQUIRE(enqueue(rec));
  REQUIRE(enqueue(rec)); // sent again (its answer lost): no second event
  dispatch(rec);
  REQUIRE(put(rec));
  // A new master: its lookup knows nothing, the stored record says how far
  // the stream got.
  respawn(lookup_options{});
  auto stored = ask<job_record>(nullptr, get_atom::value, std::string("ev-1"));
  REQUIRE(stored);
  CHECK(stored->published == 2);
  rec = *stored;
  move_to(rec, job_state::running);
  rec.start_time = rec.history.back().time;
  REQUIRE(put(rec));
  move_to(rec, job_state::completed);
  rec.end_time = rec.start_time + 2.5;
  rec.cpu_seconds = 1.5;
  rec.peak_memory_bytes = 1 << 20;
  REQUIRE(put(rec));
  REQUIRE(put(rec)); // the final write sent again
  auto page = ask<std::string>(nullptr, events_atom::value, std::string(""), uint64_t{100});
  REQUIRE(page);
  CHECK(event_states(*page, "ev-1")
        == std::vector<std::string>{"queued1", "pending2", "running3", "completed4"});
  // Resumed after its second event: the last two.
  auto first = events::from_json(*page);
  REQUIRE(first);
  auto rest = ask<std::string>(nullptr, events_atom::value, first->events.at(1).id, uint64_t{100});
  REQUIRE(rest);
  CHECK(event_states(*rest, "ev-1") == std::vector<std::string>{"running3", "completed4"});
  ec code{};
  CHECK_FALSE(ask<std::string>(&code, events_atom::value, std::string("nope"), uint64_t{1}));
  CHECK(code == ec::invalid_argument);

  auto usage_json = ask<std::string>(nullptr, usage_atom::value, 0.0, 2 * 86400.0);
  REQUIRE(usage_json);
  auto rows = usage::from_json(*usage_json);
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  CHECK(rows->at(0).user == "ann");
  CHECK(rows->at(0).jobs == 1);
  CHECK(rows->at(0).slot_seconds == Approx(2.5));
  CHECK(rows->at(0).cpu_seconds == Approx(1.5));
  CHECK(rows->at(0).peak_memory_bytes == (1u << 20));
  auto counts = ask<std::vector<uint64_t>>(nullptr, metrics_atom::value);
  REQUIRE(counts);
  CHECK(counts->at(static_cast<size_t>(job_state::completed)) == 1);
}

TEST_CASE_METHOD(fixture, "a write waits for Redis to come back and is then stored",
                 "[lookup]") {
  auto rec = new_job("retry-1");
  REQUIRE(enqueue(rec));
  server.stop(SIGTERM);
  std::thread restart([&] {
    std::this_thread::sleep_for(300ms);
    server.start();
  });
  dispatch(rec);
  bool stored = put(rec); // retried with backoff while Redis is away
  restart.join();
  CHECK(stored);
  // This test's server keeps nothing across a restart: only the write
  // made after it is there, in its index.
  CHECK(indexes_of("retry-1") == std::set<std::string>{"pending"});
  auto got = ask<job_record>(nullptr, get_atom::value, std::string("retry-1"));
  REQUIRE(got);
  CHECK(got->state == job_state::pending);
}

TEST_CASE_METHOD(fixture, "a fenced lookup writes only while the lease is its master's",
                 "[lookup][lease]") {
  const std::string mine = "1 m-1 http://m1:5000/";
  run({"SET", keys::master_lease, mine});
  lookup_options opts;
  opts.retry_s = 1;
  opts.fence = mine;
  respawn(opts);
  auto rec = new_job("fenced-1");
  REQUIRE(enqueue(rec));
  dispatch(rec);
  REQUIRE(put(rec));
  CHECK(indexes_of("fenced-1") == std::set<std::string>{"pending"});
  REQUIRE(ask<bool>(nullptr, endpoint_atom::value, std::string{"m1:5559"}));

  // Another master took the lease: nothing this one sends changes anything.
  run({"SET", keys::master_lease, "2 m-2 http://m2:5000/"});
  move_to(rec, job_state::running);
  ec code = ec::unspecified;
  CHECK_FALSE(ask<bool>(&code, put_atom::value, rec));
  CHECK(code == ec::unavailable);
  CHECK(indexes_of("fenced-1") == std::set<std::string>{"pending"});
  CHECK(run({"GET", keys::job("fenced-1")}).str.find("\"running\"") == std::string::npos);
  CHECK_FALSE(enqueue(new_job("fenced-2")));
  CHECK(run({"EXISTS", keys::job("fenced-2")}).integer == 0);
  CHECK_FALSE(ask<bool>(nullptr, endpoint_atom::value, std::string{"m1:5559"}));
  CHECK(run({"GET", keys::master_endpoint}).str == "m1:5559");
  // Reads still work: a master that lost the lease may say what it saw.
  CHECK(list(job_state::pending).size() == 1);
}

TEST_CASE_METHOD(fixture, "a write that too few replicas confirm is not acknowledged",
                 "[lookup][wait]") {
  lookup_options opts;
  opts.retry_s = 1;
  opts.min_replica_acks = 1; // this Redis has none
  opts.wait_timeout_ms = 50;
  respawn(opts);
  ec code = ec::unspecified;
  CHECK_FALSE(ask<bool>(&code, enqueue_atom::value, new_job("unconfirmed")));
  CHECK(code == ec::unavailable);
  opts.min_replica_acks = 0;
  respawn(opts);
  // Sent again, the write is recognised as the same job's.
  CHECK(enqueue(new_job("unconfirmed")));
}

TEST_CASE_METHOD(fixture, "a project's jobs come in pages, newest first, each once",
                 "[lookup][paging]") {
  for (int i = 0; i < 25; ++i) {
    auto rec = new_job("p-" + std::to_string(i));
    rec.project_name = "big";
    rec.seq = 1000 + static_cast<uint64_t>(i);
    REQUIRE(enqueue(rec));
  }
  auto other = new_job("q-0");
  other.project_name = "small";
  other.seq = 2000;
  REQUIRE(enqueue(other));
  auto page = [&](const std::string& cursor, uint64_t limit) {
    ec code{};
    auto p = ask<job_page>(&code, list_atom::value, std::string("big"), std::string(), cursor, limit);
    INFO("error " << static_cast<int>(code));
    REQUIRE(p);
    return *p;
  };
  // Before the indexes are known complete, a caller must read everything.
  CHECK_FALSE(page("", 10).indexed);
  run({"SET", keys::indexes_built, job_index::generation});

  std::vector<std::string> seen;
  std::string cursor;
  for (int round = 0; round < 5; ++round) {
    auto p = page(cursor, 10);
    CHECK(p.indexed);
    CHECK(p.total == 25);
    CHECK(p.version >= 26);
    for (auto& r : p.jobs)
      seen.push_back(r.job_id);
    cursor = p.next;
    if (cursor.empty())
      break;
  }
  REQUIRE(seen.size() == 25);
  CHECK(seen.front() == "p-24");
  CHECK(seen.back() == "p-0");
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 25);

  // What a filter no index serves reads: the newest jobs, with the count.
  auto newest = ask<job_page>(nullptr, list_atom::value, jobs_atom::value, std::string("big"), uint64_t{3});
  REQUIRE(newest);
  CHECK(newest->indexed);
  CHECK(newest->total == 25);
  std::set<std::string> read;
  for (auto& r : newest->jobs)
    read.insert(r.job_id);
  CHECK(read == std::set<std::string>{"p-24", "p-23", "p-22"});

  // A status's pages: the running job alone, the queued ones apart.
  auto run = new_job("p-run");
  run.project_name = "big";
  run.seq = 5000;
  REQUIRE(enqueue(run));
  dispatch(run);
  REQUIRE(put(run));
  move_to(run, job_state::running);
  REQUIRE(put(run));
  auto running = ask<job_page>(nullptr, list_atom::value, std::string("big"), std::string("running"),
                               std::string(), uint64_t{10});
  REQUIRE(running);
  REQUIRE(running->jobs.size() == 1);
  CHECK(running->jobs[0].job_id == "p-run");
  CHECK(running->total == 1);
  auto queued = ask<job_page>(nullptr, list_atom::value, std::string("big"), std::string("queued"),
                              std::string(), uint64_t{100});
  REQUIRE(queued);
  CHECK(queued->total == 25);
  // No job of a status: an empty page; no job at all: not found.
  auto none = ask<job_page>(nullptr, list_atom::value, std::string("big"), std::string("failed"),
                            std::string(), uint64_t{10});
  REQUIRE(none);
  CHECK(none->jobs.empty());
  ec missing{};
  CHECK_FALSE(ask<job_page>(&missing, list_atom::value, std::string("nope"), std::string(),
                            std::string(), uint64_t{10}));
  CHECK(missing == ec::not_found);
  REQUIRE(ask<bool>(nullptr, delete_atom::value, std::string("p-run")));

  // A removed job leaves its pages; a bad cursor is a clear error.
  REQUIRE(ask<bool>(nullptr, delete_atom::value, std::string("p-24")));
  CHECK(page("", 3).jobs.front().job_id == "p-23");
  CHECK(page("", 3).total == 24);
  ec code{};
  CHECK_FALSE(ask<job_page>(&code, list_atom::value, std::string("big"), std::string(),
                            std::string("nope"), uint64_t{3}));
  CHECK(code == ec::invalid_argument);
}

TEST_CASE_METHOD(fixture, "finished jobs are listed by end time, completed apart from failed",
                 "[lookup][paging]") {
  run({"SET", keys::indexes_built, job_index::generation});
  for (int i = 0; i < 6; ++i) {
    auto rec = new_job("e-" + std::to_string(i));
    rec.project_name = "p";
    REQUIRE(enqueue(rec));
    dispatch(rec);
    REQUIRE(put(rec));
    move_to(rec, i % 3 == 0 ? job_state::failed : job_state::completed);
    rec.end_time = 5000 - i; // the last submitted ended first
    REQUIRE(put(rec));
  }
  auto done = ask<job_page>(nullptr, list_atom::value, job_state::completed, std::string(), uint64_t{10});
  REQUIRE(done);
  std::vector<std::string> ids;
  for (auto& r : done->jobs)
    ids.push_back(r.job_id);
  CHECK(ids == std::vector<std::string>{"e-1", "e-2", "e-4", "e-5"});
  auto failed = ask<job_page>(nullptr, list_atom::value, job_state::cancelled, std::string(), uint64_t{1});
  REQUIRE(failed);
  CHECK(failed->total == 2);
  REQUIRE(failed->jobs.size() == 1);
  CHECK(failed->jobs[0].job_id == "e-0");
  CHECK_FALSE(failed->next.empty());
  ec code{};
  CHECK_FALSE(ask<job_page>(&code, list_atom::value, job_state::running, std::string(), uint64_t{1}));
  CHECK(code == ec::invalid_argument);
}

TEST_CASE_METHOD(fixture, "completed and failed jobs are kept and counted by their lists, "
                          "a store's from before them by its sets", "[lookup]") {
  auto finish = [&](const std::string& id, job_state end) {
    auto rec = new_job(id);
    REQUIRE(enqueue(rec));
    dispatch(rec);
    REQUIRE(put(rec));
    move_to(rec, end);
    REQUIRE(put(rec));
  };
  finish("c-1", job_state::completed);
  finish("c-2", job_state::completed);
  finish("f-1", job_state::failed);
  finish("x-1", job_state::cancelled);
  CHECK(indexes_of("f-1") == std::set<std::string>{"failed_jobs"});
  CHECK(indexes_of("x-1") == std::set<std::string>{"failed_jobs", "cancelled"});
  auto counts = ask<std::vector<uint64_t>>(nullptr, metrics_atom::value);
  REQUIRE(counts);
  CHECK(counts->at(static_cast<size_t>(job_state::completed)) == 2);
  CHECK(counts->at(static_cast<size_t>(job_state::failed)) == 1);
  CHECK(counts->at(static_cast<size_t>(job_state::cancelled)) == 1);

  // Written before the listing indexes: its ids in sets only, its record.
  auto old = new_job("old-1");
  move_to(old, job_state::completed);
  run({"SET", keys::job("old-1"), to_stored_json(old)});
  run({"SADD", keys::all_jobs, "old-1"});
  run({"SADD", keys::state_set("completed"), "old-1"});
  auto ids = [](const std::vector<job_record>& recs) {
    std::set<std::string> out;
    for (auto& r : recs)
      out.insert(r.job_id);
    return out;
  };
  CHECK(ids(list(job_state::completed)) == std::set<std::string>{"c-1", "c-2", "old-1"});
  CHECK(ids(list(job_state::failed)) == std::set<std::string>{"f-1"});
  CHECK(ids(list_all()) == std::set<std::string>{"c-1", "c-2", "f-1", "x-1", "old-1"});
}

namespace {

/// Every job id of a project's listing sorted by `column`, page after page
/// (at most 40 pages), each page indexed and counting `total` jobs.
std::vector<std::string> walk_column(fixture& f, const std::string& project, const std::string& column,
                                     bool descending, uint64_t limit, uint64_t total) {
  std::vector<std::string> seen;
  std::string cursor;
  for (int round = 0; round < 40; ++round) {
    ec code{};
    auto p = f.ask<job_page>(&code, list_atom::value, project, column, descending, cursor, limit);
    INFO("error " << static_cast<int>(code) << " at cursor " << cursor);
    REQUIRE(p);
    REQUIRE(p->indexed);
    CHECK(p->total == total);
    for (auto& r : p->jobs)
      seen.push_back(r.job_id);
    cursor = p->next;
    if (cursor.empty())
      break;
  }
  return seen;
}

} // namespace

TEST_CASE_METHOD(fixture, "a listing sorted by a metric pages its numbers in order, then the rest "
                          "newest first, every job once", "[lookup][paging]") {
  run({"SET", keys::indexes_built, job_index::generation});
  // 20 jobs with a number (4 per value: ties), 10 without one.
  std::vector<std::pair<double, std::string>> valued;
  for (int i = 0; i < 30; ++i) {
    auto rec = new_job("m-" + std::to_string(i));
    rec.project_name = "m";
    rec.seq = 100 + static_cast<uint64_t>(i);
    REQUIRE(enqueue(rec));
    if (i < 20) {
      double loss = (i % 5) * 0.25;
      run(job_index::column_value("m", rec.job_id, "metric:loss", loss));
      run({"HSET", keys::job_metrics(rec.job_id), "loss", "{}"});
      valued.emplace_back(loss, rec.job_id);
    }
  }
  std::sort(valued.begin(), valued.end());
  auto walk = [&](const std::string& column, bool descending, uint64_t limit) {
    return walk_column(*this, "m", column, descending, limit, 30);
  };
  std::vector<std::string> want;
  for (auto& [loss, id] : valued)
    want.push_back(id);
  for (int i = 29; i >= 20; --i)
    want.push_back("m-" + std::to_string(i));
  CHECK(walk("metric:loss", false, 7) == want);
  CHECK(walk("loss", false, 20) == want); // a bare name: the metric, as no parameter has it
  std::vector<std::string> down;
  for (auto it = valued.rbegin(); it != valued.rend(); ++it)
    down.push_back(it->second);
  for (int i = 29; i >= 20; --i)
    down.push_back("m-" + std::to_string(i));
  CHECK(walk("metric:loss", true, 3) == down);

  // A name no index has is left to the caller (it reads the records).
  auto unknown = ask<job_page>(nullptr, list_atom::value, std::string("m"), std::string("nothing"),
                               true, std::string(), uint64_t{5});
  REQUIRE(unknown);
  CHECK_FALSE(unknown->indexed);
  ec code{};
  CHECK_FALSE(ask<job_page>(&code, list_atom::value, std::string("m"), std::string("metric:loss"),
                            true, std::string("12:x:y"), uint64_t{5}));
  CHECK(code == ec::invalid_argument);

  // A removed job leaves the metric's index with the rest.
  REQUIRE(ask<bool>(nullptr, delete_atom::value, std::string("m-3")));
  CHECK(run({"ZSCORE", keys::project_column("m", "metric:loss"), "m-3"}).type == redis_reply::kind::nil);
  CHECK(run({"ZCARD", keys::project_column("m", "metric:loss")}).integer == 19);
}

TEST_CASE_METHOD(fixture, "many jobs sharing one metric value page through without loss",
                 "[lookup][paging]") {
  run({"SET", keys::indexes_built, job_index::generation});
  std::set<std::string> all;
  for (int i = 0; i < 90; ++i) {
    auto rec = new_job("t-" + std::to_string(i));
    rec.project_name = "t";
    REQUIRE(enqueue(rec));
    run(job_index::column_value("t", rec.job_id, "param:lr", 0.1));
    all.insert(rec.job_id);
  }
  auto seen = walk_column(*this, "t", "lr", true, 10, 90);
  CHECK(seen.size() == 90);
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == all);
}

TEST_CASE_METHOD(fixture, "a master's recovery reads the unfinished jobs, those they wait for and "
                          "the newest, never every finished one", "[lookup]") {
  auto started = [&](const std::string& id, uint64_t seq) {
    auto rec = new_job(id);
    rec.seq = seq;
    REQUIRE(enqueue(rec));
    dispatch(rec);
    REQUIRE(put(rec));
    move_to(rec, job_state::running);
    REQUIRE(put(rec));
    return rec;
  };
  auto finish = [&](const std::string& id, uint64_t seq) {
    auto rec = started(id, seq);
    move_to(rec, job_state::completed);
    REQUIRE(put(rec));
  };
  finish("old-1", 10);
  finish("dep-1", 11);
  auto waits = new_job("waits-1");
  waits.seq = 12;
  waits.after = {{"dep-1", "ok"}};
  REQUIRE(enqueue(waits));
  started("runs-1", 13);
  finish("new-1", 14);
  // An end cut off after its SADD: the record still says running, and the
  // id is in the running set still (the SREM comes after the record).
  started("cut-1", 9);
  run({"SADD", keys::state_set("completed"), "cut-1"});

  auto recs = ask<std::vector<job_record>>(nullptr, recover_atom::value);
  REQUIRE(recs);
  std::map<std::string, job_state> got;
  for (auto& r : *recs)
    got[r.job_id] = r.state;
  CHECK(got == std::map<std::string, job_state>{{"waits-1", job_state::queued},
                                                {"dep-1", job_state::completed},
                                                {"runs-1", job_state::running},
                                                {"cut-1", job_state::running},
                                                {"new-1", job_state::completed}});
}

TEST_CASE_METHOD(fixture, "a sweep's trials and a project's newest sweeps come from their indexes",
                 "[lookup]") {
  run({"SET", keys::indexes_built, job_index::generation});
  for (int s = 0; s < 3; ++s)
    for (int t = 0; t < 4; ++t) {
      auto rec = new_job("s" + std::to_string(s) + "-t" + std::to_string(t));
      rec.project_name = "sw";
      rec.sweep_id = "sweep-" + std::to_string(s);
      rec.seq = 100 * static_cast<uint64_t>(s + 1) + static_cast<uint64_t>(t);
      REQUIRE(enqueue(rec));
    }
  auto plain = new_job("plain-1");
  plain.project_name = "sw";
  REQUIRE(enqueue(plain));
  auto trials = [&](const std::string& sweep, uint64_t limit) {
    auto recs = ask<std::vector<job_record>>(nullptr, list_atom::value, sweep_atom::value,
                                             std::string("sw"), sweep, limit);
    REQUIRE(recs);
    std::set<std::string> ids;
    for (auto& r : *recs)
      ids.insert(r.job_id);
    return ids;
  };
  CHECK(trials("sweep-1", 1) == std::set<std::string>{"s1-t0", "s1-t1", "s1-t2", "s1-t3"});
  auto newest = trials("", 2); // the two newest sweeps: 2 and 1
  CHECK(newest.size() == 8);
  CHECK(newest.count("s2-t0") == 1);
  CHECK(newest.count("s0-t0") == 0);
  REQUIRE(ask<bool>(nullptr, delete_atom::value, std::string("s1-t2")));
  CHECK(trials("sweep-1", 1).size() == 3);
  CHECK(trials("nope", 1).empty());
}
