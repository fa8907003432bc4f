#include "library/usage.hpp"
#include "adapters/redis_client.hpp"
#include "messages/redis_keys.hpp"
#include "tests/unit/redis_server.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace atlas;
using namespace std::chrono_literals;

namespace {

constexpr double may_1 = 1714521600; // 2024-05-01 00:00:00 UTC

job_record finished_job(std::string user, std::string project, double start, double end,
                        std::vector<std::string> gpus = {}) {
  job_record rec;
  rec.job_id = "j-" + user + project;
  rec.username = std::move(user);
  rec.project_name = std::move(project);
  rec.start_time = start;
  rec.end_time = end;
  rec.gpus = std::move(gpus);
  return rec;
}

redis_reply bulk(std::string s) {
  redis_reply r;
  r.type = redis_reply::kind::string;
  r.str = std::move(s);
  return r;
}

redis_reply array(std::vector<std::string> xs) {
  redis_reply r;
  r.type = redis_reply::kind::array;
  for (auto& x : xs)
    r.elements.push_back(bulk(x));
  return r;
}

usage::totals named(std::string day, std::string user, std::string project, double slot,
                    double gpu = 0) {
  usage::totals t;
  t.day = std::move(day);
  t.user = std::move(user);
  t.project = std::move(project);
  t.jobs = 1;
  t.slot_seconds = slot;
  t.gpu_seconds = gpu;
  if (gpu > 0)
    t.gpu_seconds_by_model["H100"] = gpu;
  return t;
}

} // namespace

TEST_CASE("day_of is the UTC day", "[usage]") {
  CHECK(usage::day_of(may_1) == "2024-05-01");
  CHECK(usage::day_of(may_1 - 0.5) == "2024-04-30");
  CHECK(usage::day_of(may_1 + 86399.9) == "2024-05-01");
  CHECK(usage::day_of(1709164800) == "2024-02-29");
  CHECK(usage::day_of(0) == "1970-01-01");
}

TEST_CASE("of_job counts a started job and nothing for one that never started", "[usage]") {
  auto rec = finished_job("ada", "vision", may_1 + 100, may_1 + 400, {"0", "1"});
  rec.gpu_model = "NVIDIA H100";
  rec.cpu_seconds = 512.5;
  rec.peak_memory_bytes = 3u << 30;
  auto t = usage::of_job(rec);
  CHECK(t.day == "2024-05-01");
  CHECK(t.user == "ada");
  CHECK(t.project == "vision");
  CHECK(t.jobs == 1);
  CHECK(t.slot_seconds == 300);
  CHECK(t.gpu_seconds == 600);
  CHECK(t.gpu_seconds_by_model == std::map<std::string, double>{{"NVIDIA H100", 600}});
  CHECK(t.cpu_seconds == 512.5);
  CHECK(t.peak_memory_bytes == (3u << 30));

  rec.gpu_model.clear();
  CHECK(usage::of_job(rec).gpu_seconds_by_model.count("unknown") == 1);

  auto cpu_only = finished_job("", "default", may_1, may_1 + 10);
  auto c = usage::of_job(cpu_only);
  CHECK(c.jobs == 1);
  CHECK(c.gpu_seconds == 0);
  CHECK(c.gpu_seconds_by_model.empty());
  CHECK(c.user.empty());

  auto never_started = finished_job("ada", "vision", 0, may_1);
  CHECK(usage::of_job(never_started).jobs == 0);
  CHECK(usage::record(never_started).empty());
  auto ended_before_start = finished_job("ada", "vision", may_1 + 10, may_1);
  CHECK(usage::of_job(ended_before_start).jobs == 0);
}

TEST_CASE("record writes each measure, the peak with GT and the day", "[usage]") {
  auto rec = finished_job("ada", "vision", may_1 - 50, may_1 + 50, {"3"});
  rec.gpu_model = "A100";
  rec.cpu_seconds = 20;
  rec.peak_memory_bytes = 1000;
  auto cmds = usage::record(rec);
  const std::string hash = "atlas:usage:2024-05-01"; // the day of its end
  const std::vector<usage::cmd> expected = {
    {"HINCRBYFLOAT", hash, "ada\tvision\tjobs", "1"},
    {"HINCRBYFLOAT", hash, "ada\tvision\tslot_seconds", "100"},
    {"HINCRBYFLOAT", hash, "ada\tvision\tgpu_seconds", "100"},
    {"HINCRBYFLOAT", hash, "ada\tvision\tgpu_seconds:A100", "100"},
    {"HINCRBYFLOAT", hash, "ada\tvision\tcpu_seconds", "20"},
    {"ZADD", "atlas:usage:peak:2024-05-01", "GT", "1000", "ada\tvision"},
    {"SADD", "atlas:usage:days", "2024-05-01"},
  };
  CHECK(cmds == expected);

  // A tab in a name would split the field: it becomes a space.
  auto tabbed = finished_job("a\tb", "p", may_1, may_1 + 1);
  CHECK(usage::record(tabbed).front()[2] == "a b\tp\tjobs");
}

TEST_CASE("days_between is inclusive, UTC and bounded", "[usage]") {
  CHECK(usage::days_between(may_1, may_1) == std::vector<std::string>{"2024-05-01"});
  CHECK(usage::days_between(may_1 - 1, may_1 + 86400) ==
        std::vector<std::string>{"2024-04-30", "2024-05-01", "2024-05-02"});
  CHECK(usage::days_between(may_1 + 10, may_1).empty());
  CHECK(usage::days_between(1709164800 - 86400, 1709164800 + 86400) ==
        std::vector<std::string>{"2024-02-28", "2024-02-29", "2024-03-01"});
  auto newest = usage::days_between(0, may_1, 3);
  CHECK(newest == std::vector<std::string>{"2024-04-29", "2024-04-30", "2024-05-01"});
  CHECK(usage::days_between(-1e300, 1e300).size() == 3660);
  CHECK(usage::days_between(std::nan(""), may_1).empty());
  CHECK(usage::days_between(may_1, may_1, 0).empty());
}

TEST_CASE("reads asks HGETALL and ZRANGE WITHSCORES per day", "[usage]") {
  auto cmds = usage::reads({"2024-05-01"});
  REQUIRE(cmds.size() == 2);
  CHECK(cmds[0] == usage::cmd{"HGETALL", "atlas:usage:2024-05-01"});
  CHECK(cmds[1] == usage::cmd{"ZRANGE", "atlas:usage:peak:2024-05-01", "0", "-1", "WITHSCORES"});
}

TEST_CASE("rows_from reads hash and peak replies into rows", "[usage]") {
  std::vector<std::string> days = {"2024-05-01", "2024-05-02"};
  std::vector<redis_reply> replies = {
    array({"ada\tvision\tjobs", "2", "ada\tvision\tslot_seconds", "30.5",
           "ada\tvision\tgpu_seconds", "61", "ada\tvision\tgpu_seconds:H100", "61",
           "bob\t\tjobs", "1", "bob\t\tcpu_seconds", "7",
           "broken-field", "3", "ada\tvision\tjobs_x", "1", "ada\tvision\tcpu_seconds", "nope"}),
    array({"ada\tvision", "4096", "bob\t", "12"}),
    redis_reply{}, // a nil reply: no totals that day
    array({"carl\tnlp", "5"}),
  };
  auto rows = usage::rows_from(days, replies);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].day == "2024-05-01");
  CHECK(rows[0].user == "ada");
  CHECK(rows[0].project == "vision");
  CHECK(rows[0].jobs == 2);
  CHECK(rows[0].slot_seconds == 30.5);
  CHECK(rows[0].gpu_seconds == 61);
  CHECK(rows[0].gpu_seconds_by_model.at("H100") == 61);
  CHECK(rows[0].cpu_seconds == 0);
  CHECK(rows[0].peak_memory_bytes == 4096);
  CHECK(rows[1].user == "bob");
  CHECK(rows[1].project.empty());
  CHECK(rows[1].cpu_seconds == 7);
  CHECK(rows[1].peak_memory_bytes == 12);
  CHECK(rows[2].day == "2024-05-02");
  CHECK(rows[2].user == "carl");
  CHECK(rows[2].peak_memory_bytes == 5);

  // Fewer replies than days: the days without replies are left out.
  CHECK(usage::rows_from(days, std::span(replies).first(2)).size() == 2);
}

TEST_CASE("aggregate sums by user, project or day", "[usage]") {
  std::vector<usage::totals> rows = {
    named("2024-05-02", "ada", "vision", 10, 20),
    named("2024-05-01", "ada", "nlp", 5, 0),
    named("2024-05-01", "bob", "vision", 100, 0),
    named("2024-05-01", "carl", "nlp", 1, 50),
  };
  rows[0].peak_memory_bytes = 7;
  rows[1].peak_memory_bytes = 9;
  auto by_user = usage::aggregate(rows, "user");
  REQUIRE(by_user.ok());
  REQUIRE(by_user->size() == 3);
  // GPU-seconds first, then slot-seconds, descending
  CHECK(by_user.value()[0].user == "carl");
  CHECK(by_user.value()[1].user == "ada");
  CHECK(by_user.value()[1].jobs == 2);
  CHECK(by_user.value()[1].slot_seconds == 15);
  CHECK(by_user.value()[1].peak_memory_bytes == 9);
  CHECK(by_user.value()[1].day.empty());
  CHECK(by_user.value()[1].project.empty());
  CHECK(by_user.value()[2].user == "bob");

  auto by_project = usage::aggregate(rows, "project");
  REQUIRE(by_project.ok());
  REQUIRE(by_project->size() == 2);
  CHECK(by_project.value()[0].project == "nlp");
  CHECK(by_project.value()[0].gpu_seconds_by_model.at("H100") == 50);
  CHECK(by_project.value()[1].project == "vision");
  CHECK(by_project.value()[1].slot_seconds == 110);

  auto by_day = usage::aggregate(rows, "day");
  REQUIRE(by_day.ok());
  REQUIRE(by_day->size() == 2);
  CHECK(by_day.value()[0].day == "2024-05-01"); // calendar order
  CHECK(by_day.value()[0].jobs == 3);

  auto bad = usage::aggregate(rows, "node");
  CHECK_FALSE(bad.ok());
  CHECK(bad.error().find("'node'") != std::string::npos);
  CHECK(usage::aggregate({}, "user")->empty());
}

TEST_CASE("to_json and from_json round trip", "[usage]") {
  auto row = named("2024-05-01", "ada", "vi\"sion", 12.25, 24.5);
  row.cpu_seconds = 3;
  row.peak_memory_bytes = 123456789012;
  auto text = usage::to_json({row}, "", 1, 2.5);
  CHECK(text.find("\"by\":\"\"") != std::string::npos);
  CHECK(text.find("\"since\":1") != std::string::npos);
  auto back = usage::from_json(text);
  REQUIRE(back.ok());
  REQUIRE(back->size() == 1);
  auto& r = back.value()[0];
  CHECK(r.day == row.day);
  CHECK(r.user == row.user);
  CHECK(r.project == row.project);
  CHECK(r.jobs == 1);
  CHECK(r.slot_seconds == 12.25);
  CHECK(r.gpu_seconds == 24.5);
  CHECK(r.gpu_seconds_by_model == row.gpu_seconds_by_model);
  CHECK(r.cpu_seconds == 3);
  CHECK(r.peak_memory_bytes == 123456789012);

  // Aggregated rows carry only the name they were summed by.
  auto by_user = usage::to_json({row}, "user", 1, 2);
  CHECK(by_user.find("\"user\":\"ada\"") != std::string::npos);
  CHECK(by_user.find("\"project\"") == std::string::npos);
  CHECK(by_user.find("\"day\"") == std::string::npos);

  CHECK_FALSE(usage::from_json("not json").ok());
  CHECK_FALSE(usage::from_json("{\"rows\":3}").ok());
  CHECK(usage::from_json("{\"rows\":[]}")->empty());
}

TEST_CASE("a real Redis sums recorded jobs, and counts a job recorded twice twice",
          "[usage][redis]") {
  test::redis_server server;
  REQUIRE(server.start());
  redis_client client{"127.0.0.1", server.port(), 2000ms};

  auto a = finished_job("ada", "vision", may_1 + 10, may_1 + 70, {"0", "1"});
  a.gpu_model = "H100";
  a.cpu_seconds = 30;
  a.peak_memory_bytes = 2000;
  auto b = finished_job("ada", "vision", may_1 + 100, may_1 + 110);
  b.cpu_seconds = 1.5;
  b.peak_memory_bytes = 5000;
  for (auto* rec : {&a, &b}) {
    auto replies = client.transaction(usage::record(*rec));
    REQUIRE(replies);
    for (auto& r : *replies)
      CHECK_FALSE(r.is_error());
  }
  auto read_rows = [&] {
    auto days = usage::days_between(may_1 - 86400, may_1 + 86400);
    auto replies = client.pipeline(usage::reads(days));
    REQUIRE(replies);
    return usage::rows_from(days, *replies);
  };
  auto rows = read_rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].day == "2024-05-01");
  CHECK(rows[0].jobs == 2);
  CHECK(rows[0].slot_seconds == 70);
  CHECK(rows[0].gpu_seconds == 120);
  CHECK(rows[0].gpu_seconds_by_model.at("H100") == 120);
  CHECK(rows[0].cpu_seconds == 31.5);
  CHECK(rows[0].peak_memory_bytes == 5000); // GT kept the larger

  auto days = client.command({"SMEMBERS", keys::usage_days});
  REQUIRE(days);
  REQUIRE(days->elements.size() == 1);
  CHECK(days->elements[0].str == "2024-05-01");

  // This library does not guard against a second record of one job (the
  // lookup's atlas:job:<id>:ended does): its totals count again.
  REQUIRE(client.transaction(usage::record(a)));
  auto again = read_rows();
  REQUIRE(again.size() == 1);
  CHECK(again[0].jobs == 3);
  CHECK(again[0].gpu_seconds == 240);
  CHECK(again[0].peak_memory_bytes == 5000);
}
