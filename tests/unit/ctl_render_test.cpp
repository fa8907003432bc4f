#include <catch2/catch.hpp>

#include "adapters/json.hpp"
#include "runtime/ctl/render.hpp"
#include "runtime/ctl/render_schedules.hpp"

#include <sstream>

using namespace atlas;
using namespace atlas::ctl;

namespace {

constexpr double now = 1700000000.0;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

json::value parse(const std::string& text) {
  std::string error;
  auto v = json::parse(text, error);
  INFO(text << ": " << error);
  REQUIRE(v);
  return *v;
}

slot_info slot(const std::string& node, int index, const std::string& job = {},
               std::vector<std::string> gpus = {}) {
  slot_info s;
  s.node_id = node;
  s.key = node + "/" + std::to_string(index);
  s.host_address = "http://" + node + "/";
  s.index = index;
  s.current_job = job;
  s.gpus = std::move(gpus);
  s.jobs_run = 3;
  return s;
}

node_view node(const std::string& id, const std::string& role, std::vector<slot_info> slots,
               bool drained = false) {
  node_view n;
  n.info.node_id = id;
  n.info.host_address = "http://" + id + "/";
  n.info.version = "0.1.0";
  n.info.num_slots = static_cast<int32_t>(slots.size());
  n.info.started = now - 3725;
  n.role = role;
  n.drained = drained;
  n.last_seen = now - 0.4;
  n.slots = std::move(slots);
  return n;
}

std::vector<node_view> cluster() {
  return {node("master", "master", {}),
          node("w1", "worker", {slot("w1", 0, "job-a", {"0"}), slot("w1", 1, {}, {"1"})}),
          node("w2", "worker", {slot("w2", 0), slot("w2", 1)}, true)};
}

job_record job(const std::string& id, job_state state, uint64_t seq,
               const std::string& user = "alice") {
  job_record j;
  j.job_id = id;
  j.state = state;
  j.seq = seq;
  j.username = user;
  j.project_name = "proj";
  j.queued_time = now - 100;
  return j;
}

} // namespace

TEST_CASE("ages are relative to now, times are local", "[ctl_render]") {
  CHECK(format_age(now, 0) == "-");
  CHECK(format_age(now, now - 3.24) == "3.2s ago");
  CHECK(format_age(now, now) == "0.0s ago");
  CHECK(format_age(now, now - 245) == "4m05s ago");
  CHECK(format_age(now, now - 7380) == "2h03m ago");
  CHECK(format_age(now, now - 3 * 86400 - 4 * 3600) == "3d04h00m ago");
  CHECK(format_age(now, now + 2) == "in 2.0s");
  CHECK(format_span(0.42) == "0.4s");
  CHECK(format_span(3723) == "1h02m03s");
  CHECK(format_local_time(0) == "-");
  auto t = format_local_time(now);
  CHECK(t.size() == 19);
  CHECK(t[4] == '-');
  CHECK(t[13] == ':');
}

TEST_CASE("tables align on visible text, with or without colour", "[ctl_render]") {
  std::vector<std::vector<cell>> rows = {{"a", cell{"running", "32"}, "x"},
                                         {"longer-name", cell{"failed", "31"}, ""}};
  auto plain = lines(render_table({"NAME", "STATE", "NOTE"}, rows, false));
  REQUIRE(plain.size() == 3);
  CHECK(plain[0] == "NAME         STATE    NOTE");
  CHECK(plain[1] == "a            running  x");
  CHECK(plain[2] == "longer-name  failed"); // no trailing spaces
  auto colored = render_table({"NAME", "STATE", "NOTE"}, rows, true);
  CHECK(colored.find("\x1b[32mrunning\x1b[0m  x") != std::string::npos);
  CHECK(colored.find("\x1b[1mNAME\x1b[0m") != std::string::npos);
  CHECK(render_table({"A"}, {{"b"}}, false).find('\x1b') == std::string::npos);
}

TEST_CASE("nodes as JSON: slot counts, GPUs, running jobs, ages", "[ctl_render]") {
  auto v = parse(nodes_json(cluster(), {now, false}));
  auto* nodes = v.find("nodes");
  REQUIRE(nodes);
  REQUIRE(nodes->array.size() == 3);
  auto& m = nodes->array[0];
  CHECK(m.get_string("node_id") == "master");
  CHECK(m.get_string("role") == "master");
  CHECK(m.get_int("slots") == 0);
  auto& w1 = nodes->array[1];
  CHECK(w1.get_int("slots") == 2);
  CHECK(w1.get_int("busy") == 1);
  CHECK(w1.get_int("free") == 1);
  CHECK(w1.find("gpus")->array.size() == 2);
  REQUIRE(w1.find("running_jobs")->array.size() == 1);
  CHECK(w1.find("running_jobs")->array[0].string == "job-a");
  CHECK(w1.find("heartbeat_age_s")->number == Approx(0.4));
  CHECK(w1.find("uptime_s")->number == Approx(3725));
  CHECK(w1.get_string("version") == "0.1.0");
  CHECK(w1.get_string("host_address") == "http://w1/");
  CHECK(w1.find("drained")->boolean == false);
  CHECK(nodes->array[2].find("drained")->boolean == true);
  for (auto key : {"node_id", "role", "host_address", "slots", "busy", "free", "gpus",
                   "running_jobs", "heartbeat_age_s", "version", "uptime_s", "drained"})
    CHECK(m.find(key) != nullptr);
}

TEST_CASE("a node never heard from has a null heartbeat age", "[ctl_render]") {
  auto nodes = cluster();
  nodes[0].last_seen = 0;
  auto v = parse(nodes_json(nodes, {now, false}));
  CHECK(v.find("nodes")->array[0].find("heartbeat_age_s")->is_null());
  auto text = nodes_text(nodes, {now, false});
  CHECK(text.find("drained") != std::string::npos);
  CHECK(text.find("1h02m05s") != std::string::npos); // uptime
}

TEST_CASE("slots show their state and can be limited to one node", "[ctl_render]") {
  auto nodes = cluster();
  auto text = slots_text(nodes, "", {now, false});
  auto ls = lines(text);
  REQUIRE(ls.size() == 5);
  CHECK(ls[1].find("w1/0") == 0);
  CHECK(ls[1].find("busy") != std::string::npos);
  CHECK(ls[1].find("job-a") != std::string::npos);
  CHECK(ls[2].find("free") != std::string::npos);
  CHECK(ls[3].find("drained") != std::string::npos);
  CHECK(lines(slots_text(nodes, "w2", {now, false})).size() == 3);
  CHECK(slots_text(nodes, "nope", {now, false}) == "no slots on node nope\n");
  auto v = parse(slots_json(nodes, "w1"));
  REQUIRE(v.find("slots")->array.size() == 2);
  CHECK(v.find("slots")->array[0].get_string("state") == "busy");
  CHECK(v.find("slots")->array[0].get_int("jobs_run") == 3);
}

TEST_CASE("nodes are resolved by id or address", "[ctl_render]") {
  auto nodes = cluster();
  CHECK(resolve_node(nodes, "w1") == "w1");
  CHECK(resolve_node(nodes, "http://w2") == "w2");
  CHECK(resolve_node(nodes, "http://w2/") == "w2");
  CHECK_FALSE(resolve_node(nodes, "w3"));
}

TEST_CASE("jobs are filtered by state and user, in submission order", "[ctl_render]") {
  std::vector<job_record> jobs = {job("c", job_state::running, 3),
                                  job("a", job_state::completed, 1, "bob"),
                                  job("b", job_state::running, 2, "bob")};
  auto all = filter_jobs(jobs, "", "");
  REQUIRE(all.size() == 3);
  CHECK(all[0].job_id == "a");
  CHECK(all[2].job_id == "c");
  auto running = filter_jobs(jobs, "running", "");
  REQUIRE(running.size() == 2);
  auto bobs = filter_jobs(jobs, "running", "bob");
  REQUIRE(bobs.size() == 1);
  CHECK(bobs[0].job_id == "b");
  CHECK(jobs_text({}, {now, false}) == "no jobs\n");
  auto text = jobs_text(all, {now, false});
  CHECK(lines(text).size() == 4);
  CHECK(text.find("1m40s ago") != std::string::npos);
}

TEST_CASE("jobs as JSON carry the full record with its history", "[ctl_render]") {
  auto j = job("a", job_state::running, 1);
  j.history = {{job_state::queued, now - 100, ""}, {job_state::pending, now - 90, "w1/0"},
               {job_state::running, now - 89.5, "w1/0"}};
  auto v = parse(jobs_json({j}));
  auto* jobs = v.find("jobs");
  REQUIRE(jobs);
  REQUIRE(jobs->array.size() == 1);
  auto& r = jobs->array[0];
  CHECK(r.get_string("job_id") == "a");
  CHECK(r.get_string("state") == "running");
  CHECK(r.get_string("username") == "alice");
  auto* history = r.find("history");
  REQUIRE(history);
  REQUIRE(history->array.size() == 3);
  CHECK(history->array[1].get_string("state") == "pending");
  CHECK(history->array[1].get_string("slot") == "w1/0");
  CHECK(history->array[2].find("time")->number == Approx(now - 89.5));
  CHECK(parse(job_json(j)).get_string("job_id") == "a");
}

TEST_CASE("one job shows each transition with its time, where it ran and retries",
          "[ctl_render]") {
  auto j = job("abc", job_state::completed, 1);
  j.node = "w1";
  j.host_address = "http://w1/";
  j.slot = "w1/0";
  j.retries = 1;
  j.max_retries = 2;
  j.start_time = now - 80;
  j.end_time = now - 20;
  j.has_return_code = true;
  j.history = {{job_state::queued, now - 100, ""},
               {job_state::pending, now - 95, "w2/0"},
               {job_state::lost, now - 90, "w2/0"},
               {job_state::queued, now - 90, ""},
               {job_state::pending, now - 81, "w1/0"},
               {job_state::running, now - 80, "w1/0"},
               {job_state::completed, now - 20, "w1/0"}};
  auto text = job_text(j, {now, false});
  CHECK(text.find("w1 (http://w1/)") != std::string::npos);
  CHECK(text.find("1/2") != std::string::npos);
  CHECK(text.find("1m00s") != std::string::npos); // run time
  auto ls = lines(text);
  auto at = std::find(ls.begin(), ls.end(), "lifecycle:");
  REQUIRE(at != ls.end());
  REQUIRE(ls.end() - at == 9); // the title, the header, 7 transitions
  CHECK(at[3].find("pending") == 0);
  CHECK(at[3].find("w2/0") != std::string::npos);
  CHECK(at[3].find("1m35s ago") != std::string::npos);
  CHECK(at[3].find(format_local_time(now - 95)) != std::string::npos);
  CHECK(at[4].find("lost") == 0);
  CHECK(at[8].find("completed") == 0);
  CHECK(at[8].find("20.0s ago") != std::string::npos);
}

TEST_CASE("a job without history still shows its times", "[ctl_render]") {
  auto j = job("old", job_state::running, 1);
  j.start_time = now - 10;
  auto text = job_text(j, {now, false});
  CHECK(text.find("10.0s ago") != std::string::npos);
  CHECK(text.find("lifecycle: not recorded") != std::string::npos);
}

TEST_CASE("the queue shows each job's position and reason", "[ctl_render]") {
  std::vector<queue_entry> q = {{job("a", job_state::queued, 1), 0, "no free slot"},
                                {job("b", job_state::queued, 2, "bob"), 1, "needs 2 GPUs"}};
  auto text = queue_text(q, {now, false});
  auto ls = lines(text);
  REQUIRE(ls.size() == 3);
  CHECK(ls[2].find("needs 2 GPUs") != std::string::npos);
  CHECK(ls[2].find("bob") != std::string::npos);
  CHECK(queue_text({}, {now, false}) == "the queue is empty\n");
  auto v = parse(queue_json(q));
  auto& e = v.find("queue")->array[1];
  CHECK(e.get_int("position") == 1);
  CHECK(e.get_string("job_id") == "b");
  CHECK(e.get_string("user") == "bob");
  CHECK(e.get_int("priority") == 0);
  CHECK(e.get_string("reason") == "needs 2 GPUs");
}

TEST_CASE("actors are listed by node with numeric mailbox sizes", "[ctl_render]") {
  std::vector<actor_stats> xs = {{"worker-slot", 12, "w1", 0, 40, now - 1, "running job-a"},
                                 {"master", 7, "master", 2, 900, now - 0.1, "3 queued"},
                                 {"job", 30, "master", 0, 5, 0, "running on w1/0"}};
  auto v = parse(actors_json(xs, "", {now, false}));
  auto& actors = v.find("actors")->array;
  REQUIRE(actors.size() == 3);
  CHECK(actors[0].get_string("name") == "job");
  CHECK(actors[0].find("last_message")->is_null());
  CHECK(actors[1].get_string("name") == "master");
  CHECK(actors[1].get_int("mailbox") == 2);
  CHECK(actors[1].get_int("handled") == 900);
  CHECK(actors[1].get_int("id") == 7);
  CHECK(actors[1].find("last_message_age_s")->number == Approx(0.1));
  for (auto& a : actors)
    for (auto key : {"name", "id", "node", "mailbox", "handled", "last_message", "summary"})
      CHECK(a.find(key) != nullptr);
  CHECK(parse(actors_json(xs, "w1", {now, false})).find("actors")->array.size() == 1);
  auto text = actors_text(xs, "", {now, false});
  CHECK(lines(text).size() == 4);
  CHECK(text.find("running job-a") != std::string::npos);
}

TEST_CASE("a watch frame holds nodes, slots and queue", "[ctl_render]") {
  std::vector<queue_entry> q = {{job("a", job_state::queued, 1), 0, "no free slot"}};
  auto text = watch_text("127.0.0.1:5559", cluster(), q, {now, false});
  CHECK(text.find("127.0.0.1:5559") != std::string::npos);
  CHECK(text.find("1/4 slots busy") != std::string::npos);
  CHECK(text.find("\nNODES\n") != std::string::npos);
  CHECK(text.find("\nSLOTS\n") != std::string::npos);
  CHECK(text.find("\nQUEUE\n") != std::string::npos);
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(watch_text("m", cluster(), q, {now, true}).find("\x1b[") != std::string::npos);
  auto v = parse(watch_json(cluster(), q, {now, false}));
  CHECK(v.find("nodes")->array.size() == 3);
  CHECK(v.find("slots")->array.size() == 4);
  CHECK(v.find("queue")->array.size() == 1);
}

TEST_CASE("atlas-ctl schedules lists each scheduled job with its next run", "[ctl]") {
  scheduled_job a;
  a.id = "nightly";
  a.project_name = "proj";
  a.owner = "alice";
  a.cron = "0 3 * * *";
  a.runs = 2;
  a.last_job = "nightly_20260101_030000";
  scheduled_job b;
  b.id = "held";
  b.cron = "*/5 * * * *";
  b.paused = true;
  render_options r;
  r.now = 1767225600; // 2026-01-01 00:00:00 UTC
  auto text = schedules_text({a, b}, r);
  CHECK(text.find("held") < text.find("nightly")); // by id
  CHECK(text.find("0 3 * * *") != std::string::npos);
  CHECK(text.find("paused") != std::string::npos);
  CHECK(text.find("nightly_20260101_030000") != std::string::npos);
  CHECK(text.find("in 3h00m") != std::string::npos);
  auto js = schedules_json({a, b}, r);
  CHECK(js.find(R"("id":"nightly")") != std::string::npos);
  CHECK(js.find(R"("next_run":1767236400)") != std::string::npos);
  CHECK(js.find(R"("status":"paused","next_run":null)") != std::string::npos);
  CHECK(schedules_text({}, r) == "no scheduled jobs\n");
}
