// /metrics and the event stream in plain C++: route and reason classes stay
// bounded, the master's gauges cap their priority labels, the exposition is
// well formed, event ids are checked and events read back as written.

#include <catch2/catch.hpp>

#include <set>
#include <sstream>

#include "adapters/json.hpp"
#include "adapters/wire_counters.hpp"
#include "library/events.hpp"
#include "library/metrics.hpp"

using namespace atlas;

TEST_CASE("route classes are a small fixed set, never an id", "[metrics]") {
  using metrics::route_class;
  CHECK(route_class("/", "api") == "root");
  CHECK(route_class("/", "dashboard") == "page");
  CHECK(route_class("/queued_jobs/3", "api") == "queued_jobs");
  CHECK(route_class("/jobs/0ca6be18-3377-4311-ace9-c73a61684d8b", "api") == "jobs");
  CHECK(route_class("/api/v1/jobs/x/logs", "gateway") == "api_v1_jobs");
  CHECK(route_class("/api/v1/events", "api") == "api_v1_events");
  CHECK(route_class("/api/v1/metrics", "api") == "metrics");
  CHECK(route_class("/api/v2beta/auth/login", "dashboard") == "auth");
  CHECK(route_class("/api/v2beta/projects/p/job_listing", "dashboard") == "dashboard_api");
  CHECK(route_class("/api/v1/some-job-id", "api") == "other");
  CHECK(route_class("/app.js", "dashboard") == "page");
  CHECK(route_class("/0ca6be18-3377", "api") == "other");
  CHECK(route_class("", "api") == "root");
}

TEST_CASE("outcome reasons fold into classes", "[metrics]") {
  using metrics::reason_class;
  CHECK(reason_class(job_state::completed, "") == "ok");
  CHECK(reason_class(job_state::failed, "exit code 3") == "exit_code");
  CHECK(reason_class(job_state::failed, "") == "exit_code");
  CHECK(reason_class(job_state::failed, "out of memory") == "out_of_memory");
  CHECK(reason_class(job_state::failed, "lost: node n1 disappeared (no retries left)") == "lost");
  CHECK(reason_class(job_state::cancelled, "stopped by user while queued") == "stopped");
  CHECK(reason_class(job_state::failed, "cannot start 'python3': no such file") == "start_error");
  CHECK(reason_class(job_state::failed, "something new") == "other");
}

TEST_CASE("the master's gauges name at most 16 priorities, the rest in 'other'", "[metrics]") {
  metrics::cluster_snapshot s;
  s.jobs_by_state = {1, 0, 2, 3, 0, 0, 0};
  for (int p = 0; p < 20; ++p)
    s.queue.push_back({p, 1, static_cast<double>(p)});
  s.nodes.push_back({"n\"1", 1, 2, 0, 1, 3, 0.5});
  auto text = metrics::cluster_text(s);
  CHECK(text.find("atlas_jobs{state=\"completed\"} 3") != std::string::npos);
  CHECK(text.find("atlas_queue_depth{priority=\"19\"} 1") != std::string::npos);
  CHECK(text.find("atlas_queue_depth{priority=\"3\"}") == std::string::npos);
  // priorities 0..3 add up in "other", with the oldest age among them
  CHECK(text.find("atlas_queue_depth{priority=\"other\"} 4") != std::string::npos);
  CHECK(text.find("atlas_queue_oldest_age_seconds{priority=\"other\"} 3") != std::string::npos);
  CHECK(text.find("atlas_slots{node=\"n\\\"1\",state=\"free\"} 2") != std::string::npos);
  CHECK(text.find("atlas_gpus{node=\"n\\\"1\",state=\"free\"} 3") != std::string::npos);
  metrics::cluster_snapshot standby;
  standby.active = false;
  CHECK(metrics::cluster_text(standby).find("atlas_master_active 0") != std::string::npos);
}

TEST_CASE("the exposition has every family once, each sample after its TYPE", "[metrics]") {
  metrics::set_identity("n1", "worker", "0.1.0");
  metrics::http_answered("api", "/jobs/abc", 200, 0.002);
  metrics::http_answered("api", "/jobs/def", 404, 0.001);
  metrics::submitted();
  metrics::started(0.5, 0.003);
  metrics::ended(job_state::failed, "exit code 1");
  ++metrics::actor("test-actor").handled;
  ++wire_counters::redis_round_trips;
  auto text = metrics::exposition();
  CHECK(text.find("atlas_build_info{node=\"n1\",role=\"worker\",version=\"0.1.0\"} 1") != std::string::npos);
  CHECK(text.find("atlas_http_requests_total{code=\"404\",listener=\"api\",route=\"jobs\"} 1") != std::string::npos);
  CHECK(text.find("abc") == std::string::npos);
  CHECK(text.find("atlas_job_outcomes_total{reason=\"exit_code\",state=\"failed\"} 1") != std::string::npos);
  CHECK(text.find("atlas_job_wait_seconds_bucket{le=\"0.5\"} 1") != std::string::npos);
  CHECK(text.find("atlas_actor_messages_handled_total{actor=\"test-actor\"} 1") != std::string::npos);
  CHECK(text.find("process_resident_memory_bytes ") != std::string::npos);
  std::set<std::string> typed;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      auto name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(typed.insert(name).second); // once
      continue;
    }
    if (line.empty() || line[0] == '#')
      continue;
    auto name = line.substr(0, line.find_first_of("{ "));
    bool known = typed.count(name) > 0;
    for (auto suffix : {"_bucket", "_sum", "_count"})
      if (!known && name.size() > std::string(suffix).size()
          && name.compare(name.size() - std::string(suffix).size(), std::string::npos, suffix) == 0)
        known = typed.count(name.substr(0, name.size() - std::string(suffix).size())) > 0;
    INFO(line);
    CHECK(known);
  }
}

TEST_CASE("event ids are checked before they reach Redis", "[events]") {
  CHECK(events::valid_id(""));
  CHECK(events::valid_id("0"));
  CHECK(events::valid_id("1796401469930-0"));
  CHECK(events::valid_id("1796401469930"));
  CHECK_FALSE(events::valid_id("abc"));
  CHECK_FALSE(events::valid_id("1-2-3"));
  CHECK_FALSE(events::valid_id("-1"));
  CHECK_FALSE(events::valid_id("1796401469930-"));
  CHECK_FALSE(events::valid_id("+"));
  CHECK_FALSE(events::valid_id(std::string(30, '9')));
  CHECK(events::read_after("", 5) == events::cmd{"XRANGE", "atlas:events", "-", "+", "COUNT", "5"});
  CHECK(events::read_after("12-3", 1 << 20)[2] == "(12-3");
  CHECK(events::read_after("12-3", 1 << 20)[5] == "1000");
}

TEST_CASE("a job's events read back in order, as JSON and as server-sent events", "[events]") {
  job_record rec;
  rec.job_id = "j1";
  rec.username = "ann";
  rec.project_name = "p";
  rec.history = {{job_state::queued, 10, ""}, {job_state::pending, 11, "n1/0"},
                 {job_state::running, 12, "n1/0"}, {job_state::failed, 13, "n1/0"}};
  rec.state = job_state::failed;
  rec.reason = "exit code 2";
  rec.has_return_code = true;
  rec.return_code = 2;
  auto cmds = events::publish_job(rec, 2);
  REQUIRE(cmds.size() == 2);
  // What XRANGE answers for them.
  redis_reply reply;
  reply.type = redis_reply::kind::array;
  int seq = 0;
  for (auto& c : cmds) {
    redis_reply entry, id, fields, k, v;
    entry.type = fields.type = redis_reply::kind::array;
    id.type = k.type = v.type = redis_reply::kind::string;
    id.str = "100-" + std::to_string(seq++);
    k.str = c[6];
    v.str = c[7];
    fields.elements = {k, v};
    entry.elements = {id, fields};
    reply.elements.push_back(entry);
  }
  auto evs = events::from_reply(reply);
  REQUIRE(evs.size() == 2);
  auto page = events::from_json(events::to_json(evs, "99-0"));
  REQUIRE(page);
  CHECK(page->last == "100-1");
  std::string err;
  auto running = json::parse(page->events[0].json, err);
  auto failed = json::parse(page->events[1].json, err);
  REQUIRE(running);
  REQUIRE(failed);
  CHECK(running->get_string("id") == "100-0");
  CHECK(running->get_string("state") == "running");
  CHECK(running->get_string("from") == "pending");
  CHECK(running->get_string("node") == "n1");
  CHECK(running->get_int("n") == 3);
  CHECK(running->find("return_code")->is_null());
  CHECK(failed->get_string("reason") == "exit code 2");
  CHECK(failed->get_int("return_code") == 2);
  auto sse = events::to_sse(evs);
  CHECK(sse.rfind("id: 100-0\nevent: job\ndata: {\"id\":\"100-0\"", 0) == 0);
  CHECK(sse.find("\n\nid: 100-1\n") != std::string::npos);
  CHECK(events::to_json({}, "7-0") == R"({"events":[],"last":"7-0"})");
  CHECK_FALSE(events::from_json("[1]"));
}
