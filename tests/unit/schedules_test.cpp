#include <catch2/catch.hpp>

#include "library/schedules.hpp"

using namespace atlas;

namespace {

constexpr int64_t jan1_2024 = 1704067200; // Monday 2024-01-01 00:00:00 UTC

const char* body_every_10s =
  R"({"job_id":"nightly","spec":{"command":["main.py"]},"metadata":{"project_name":"p","username":"ann"},)"
  R"("gpu_spec":{"num_gpus":0},"priority":2,"params":{"lr":0.1},"schedule":"*/10 * * * * *"})";

} // namespace

TEST_CASE("a scheduled job is made from a submission with a schedule", "[schedules]") {
  auto s = scheduled_job_from_request(body_every_10s, "ann", {"team"}, jan1_2024);
  REQUIRE(s.ok());
  CHECK(s->id == "nightly");
  CHECK(s->cron == "*/10 * * * * *");
  CHECK_FALSE(s->paused);
  CHECK(s->project_name == "p");
  CHECK(s->after == jan1_2024);
  CHECK(s->submission.find("schedule") == std::string::npos);
  CHECK(next_due(s.value(), jan1_2024) == jan1_2024 + 10);
}

TEST_CASE("a scheduled job survives its JSON", "[schedules]") {
  auto s = scheduled_job_from_request(body_every_10s, "ann", {"team"}, jan1_2024);
  REQUIRE(s.ok());
  s->runs = 3;
  s->last_job = "nightly_20240101_000010";
  auto back = scheduled_job_from_json(to_json(s.value()));
  REQUIRE(back.ok());
  CHECK(back->id == s->id);
  CHECK(back->owner == "ann");
  CHECK(back->groups == std::vector<std::string>{"team"});
  CHECK(back->submission == s->submission);
  CHECK(back->cron == s->cron);
  CHECK(back->after == s->after);
  CHECK(back->runs == 3);
  CHECK(back->last_job == s->last_job);
}

TEST_CASE("a run is the template with its own id, owner and schedule id", "[schedules]") {
  auto s = scheduled_job_from_request(body_every_10s, "bob", {"g1", "g2"}, jan1_2024);
  REQUIRE(s.ok());
  auto run = run_of(s.value(), jan1_2024 + 10);
  REQUIRE(run.ok());
  CHECK(run->job_id == "nightly_20240101_000010");
  CHECK(run->username == "bob");
  CHECK(run->groups == std::vector<std::string>{"g1", "g2"});
  CHECK(run->schedule_id == "nightly");
  CHECK(run->priority == 2);
  CHECK(run->params == R"({"lr":0.1})");
  // The same due time gives the same id: firing twice is refused as existing.
  CHECK(run_of(s.value(), jan1_2024 + 10)->job_id == run->job_id);
}

TEST_CASE("the original's dict schedule and no schedule at all", "[schedules]") {
  auto dict = scheduled_job_from_request(
    R"({"job_id":"d","spec":{},"schedule":{"minute":"*/5","hour":9}})", "", {}, jan1_2024);
  REQUIRE(dict.ok());
  CHECK(dict->cron == "0 */5 9 * * *");
  auto none = scheduled_job_from_request(R"({"job_id":"n","spec":{}})", "", {}, jan1_2024);
  REQUIRE(none.ok());
  CHECK(none->paused);
  CHECK(none->cron.empty());
  CHECK(next_due(none.value(), jan1_2024) == 0);
  CHECK(answer_entry(none.value(), jan1_2024).find(R"("next_run_time":[null,null,null])")
        != std::string::npos);
}

TEST_CASE("bad scheduled jobs are refused with a reason", "[schedules]") {
  auto refused = [](const char* body) {
    auto r = scheduled_job_from_request(body, "", {}, jan1_2024);
    CHECK_FALSE(r.ok());
    return r.error();
  };
  CHECK(refused(R"({"job_id":"a","spec":{},"schedule":"61 * * * *"})").find("minute")
        != std::string::npos);
  CHECK(refused(R"({"job_id":"a","spec":{},"schedule":"0 0 30 2 *"})").find("never")
        != std::string::npos);
  CHECK(refused(R"({"job_id":"a","spec":{},"schedule":5})").find("Bad schedule")
        != std::string::npos);
  CHECK(refused(R"({"job_id":"a","spec":{},"schedule":{"minutes":"5"}})").find("minutes")
        != std::string::npos);
  CHECK(refused(R"({"job_id":"a","spec":{},"cron":"* * * * *"})").find("Unknown field 'cron'")
        != std::string::npos);
  CHECK(refused(R"({"spec":{},"schedule":"* * * * *"})").find("job_id") != std::string::npos);
  CHECK(refused(R"({"job_id":"a","schedule":"* * * * *"})").find("spec") != std::string::npos);
  std::string long_id(49, 'x');
  CHECK(refused((R"({"job_id":")" + long_id + R"(","spec":{}})").c_str()).find("job_id")
        != std::string::npos);
}

TEST_CASE("a new schedule comes from a PATCH body", "[schedules]") {
  CHECK(schedule_from_body(R"({"schedule":"@hourly"})").value() == "@hourly");
  CHECK(schedule_from_body(R"({"schedule":{"second":"*/3"}})").value() == "*/3 * * * * *");
  CHECK_FALSE(schedule_from_body(R"({"schedule":{}})").ok());
  CHECK_FALSE(schedule_from_body(R"({"schedule":"nope"})").ok());
  CHECK_FALSE(schedule_from_body(R"({"schedule":"* * * * *","status":"paused"})").ok());
  CHECK_FALSE(schedule_from_body("[]").ok());
}

TEST_CASE("the answer entry has the original's shape", "[schedules]") {
  auto s = scheduled_job_from_request(body_every_10s, "ann", {}, jan1_2024);
  REQUIRE(s.ok());
  auto active = answer_entry(s.value(), jan1_2024);
  CHECK(active.find(R"("next_run_time":[1704067210,1704067220,1704067230])") != std::string::npos);
  CHECK(active.find(R"("status":"active")") != std::string::npos);
  CHECK(active.find(R"("second":"*/10")") != std::string::npos);
  CHECK(active.find(R"("properties":{"job_id":"nightly")") != std::string::npos);
  s->paused = true;
  auto paused = answer_entry(s.value(), jan1_2024);
  CHECK(paused.find(R"("status":"paused")") != std::string::npos);
  CHECK(paused.find(R"("next_run_time":[null,null,null])") != std::string::npos);
}
