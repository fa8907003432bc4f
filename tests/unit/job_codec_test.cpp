#include <catch2/catch.hpp>

#include "library/job_codec.hpp"

using namespace atlas;

TEST_CASE("a submission in the original client's shape becomes a queued record",
          "[job_codec]") {
  auto rec = job_from_submission(
    R"({"job_id":"abc-1","spec":{"command":["main.py"]},"metadata":{"project_name":"p","username":"ann"},"gpu_spec":{"num_gpus":2},"priority":3,"max_retries":0})");
  REQUIRE(rec.ok());
  CHECK(rec->job_id == "abc-1");
  CHECK(rec->spec == R"({"command":["main.py"]})");
  CHECK(rec->project_name == "p");
  CHECK(rec->username == "ann");
  CHECK(rec->num_gpus == 2);
  CHECK(rec->priority == 3);
  CHECK(rec->max_retries == 0);
  CHECK(rec->state == job_state::queued);
}

TEST_CASE("bad submissions are refused with a reason", "[job_codec]") {
  auto refused = [](const char* body) {
    auto r = job_from_submission(body);
    CHECK_FALSE(r.ok());
    return r.error();
  };
  refused("[1]");
  CHECK(refused(R"({"job_id":"a"})").find("spec") != std::string::npos);
  CHECK(refused(R"({"job_id":"../x","spec":{}})").find("job id") != std::string::npos);
  refused(R"({"job_id":"a","spec":{},"gpu_spec":{"num_gpus":-1}})");
  refused(R"({"job_id":"a","spec":{},"priority":"high"})");
  refused(R"({"job_id":"a","spec":{},"max_retries":-2})");
}

TEST_CASE("a record survives its JSON form", "[job_codec]") {
  job_record rec;
  rec.job_id = "j";
  rec.spec = R"({"a":1})";
  rec.state = job_state::cancelled;
  rec.start_time = 12.5;
  rec.return_code = 3;
  rec.has_return_code = true;
  rec.reason = "stopped";
  rec.retries = 1;
  rec.max_retries = 4;
  rec.seq = 7;
  auto back = job_from_json(to_json(rec));
  REQUIRE(back.ok());
  CHECK(back->state == job_state::cancelled);
  CHECK(back->spec == rec.spec);
  CHECK(back->start_time == 12.5);
  CHECK(back->return_code == 3);
  CHECK(back->has_return_code);
  CHECK(back->reason == "stopped");
  CHECK(back->retries == 1);
  CHECK(back->max_retries == 4);
  CHECK(back->seq == 7);
}

TEST_CASE("the stored form leaves out what reading rebuilds, and reads back whole",
          "[job_codec]") {
  job_record done;
  done.job_id = "job-1";
  done.project_name = "p";
  done.username = "alice";
  done.metadata = R"({"project_name":"p","username":"alice"})";
  done.spec = R"({"command":["main.py"]})";
  done.state = job_state::completed;
  done.node = "n1";
  done.slot = "n1/0";
  done.queued_time = 100.25;
  done.start_time = 101.5;
  done.end_time = 102.75;
  done.has_return_code = true;
  done.seq = 42;
  done.history = {{job_state::queued, 100.25, ""}, {job_state::pending, 100.5, "n1/0"},
                  {job_state::running, 101.5, "n1/0"}, {job_state::completed, 102.75, "n1/0"}};
  auto busy = done; // every field away from its default
  busy.metadata = R"({"project_name":"p","username":"alice","team":"x"})";
  busy.num_gpus = 2;
  busy.priority = 3;
  busy.reason = "why";
  busy.retries = 1;
  busy.max_retries = 0;
  busy.pin = 1;
  busy.gpus = {"GPU-a"};
  busy.gpu_model = "H100";
  busy.time_limit_s = 60;
  busy.cpus = 1.5;
  busy.memory_bytes = 1024;
  busy.after = {{"job-0", "any"}};
  busy.groups = {"g"};
  busy.preemptions = 1;
  busy.preempted_by = 5;
  busy.published = 4;
  busy.history[2].slot = "n2/1";
  for (auto* rec : {&done, &busy}) {
    auto stored = to_stored_json(*rec);
    auto back = job_from_json(stored);
    REQUIRE(back.ok());
    CHECK(to_json(back.value()) == to_json(*rec));
  }
  CHECK(to_stored_json(done).size() * 10 < to_json(done).size() * 7); // under 70 %
}

TEST_CASE("job ids are limited to safe path segments", "[job_codec]") {
  CHECK(valid_job_id("3f2b1c9e-8a4d-4c1e-9f00-123456789abc"));
  CHECK(valid_job_id("a_b-C9"));
  CHECK_FALSE(valid_job_id(""));
  CHECK_FALSE(valid_job_id("a/b"));
  CHECK_FALSE(valid_job_id(".."));
  CHECK_FALSE(valid_job_id(std::string(65, 'a')));
}

TEST_CASE("the GPUs given to a job survive the record's round trip", "[job_codec]") {
  job_record rec;
  rec.job_id = "g";
  rec.gpus = {"1", "3"};
  auto back = job_from_json(to_json(rec));
  REQUIRE(back.ok());
  CHECK(back->gpus == std::vector<std::string>{"1", "3"});
}

TEST_CASE("a negative seq in a stored record reads as 0, not wrapped around", "[job_codec]") {
  // Found by tests/fuzz (job_submission): -7 became 18446744073709551609,
  // which the record's own JSON then could not carry back.
  auto rec = job_from_json(R"({"job_id":"j-2","state":"completed","spec":{},"seq":-7})");
  REQUIRE(rec.ok());
  CHECK(rec->seq == 0);
  auto back = job_from_json(to_json(rec.value()));
  REQUIRE(back.ok());
  CHECK(to_json(back.value()) == to_json(rec.value()));
}

TEST_CASE("a submission's params and sweep id are kept, and written only when set",
          "[job_codec]") {
  auto rec = job_from_submission(
    R"({"job_id":"t1","spec":{},"params":{"lr":0.1,"layers":[64,32]},"sweep_id":"s-1"})");
  REQUIRE(rec.ok());
  CHECK(rec->params == R"({"lr":0.1,"layers":[64,32]})");
  CHECK(rec->sweep_id == "s-1");
  rec->schedule_id = "nightly";
  auto back = job_from_json(to_json(rec.value()));
  REQUIRE(back.ok());
  CHECK(back->params == rec->params);
  CHECK(back->sweep_id == "s-1");
  CHECK(back->schedule_id == "nightly");
  auto plain = to_json(job_from_submission(R"({"job_id":"t2","spec":{}})").value());
  CHECK(plain.find("params") == std::string::npos);
  CHECK(plain.find("sweep_id") == std::string::npos);
  CHECK_FALSE(job_from_submission(R"({"job_id":"t3","spec":{},"params":[1]})").ok());
  CHECK_FALSE(job_from_submission(R"({"job_id":"t3","spec":{},"sweep_id":"../x"})").ok());
  std::string big = R"({"job_id":"t4","spec":{},"params":{"x":")" + std::string(70000, 'a') + "\"}}";
  CHECK(job_from_submission(big).error().find("at most") != std::string::npos);
}

TEST_CASE("a sweep's concurrency cap is kept with its sweep id and written only when set",
          "[job_codec]") {
  auto rec = job_from_submission(R"({"job_id":"t1","spec":{},"sweep_id":"s-1","sweep_limit":4})");
  REQUIRE(rec.ok());
  CHECK(rec->sweep_limit == 4);
  auto back = job_from_json(to_json(rec.value()));
  REQUIRE(back.ok());
  CHECK(back->sweep_limit == 4);
  auto plain = to_json(job_from_submission(R"({"job_id":"t2","spec":{},"sweep_id":"s"})").value());
  CHECK(plain.find("sweep_limit") == std::string::npos);
  CHECK_FALSE(job_from_submission(R"({"job_id":"t3","spec":{},"sweep_id":"s","sweep_limit":0})").ok());
  CHECK_FALSE(job_from_submission(R"({"job_id":"t3","spec":{},"sweep_limit":2})").ok());
}

TEST_CASE("spec.mem_limit reads as the Docker runner reads it: a small number is GB",
          "[job_codec]") {
  auto memory = [](const char* mem_limit) {
    auto rec = job_from_submission(std::string(R"({"job_id":"m","spec":{"mem_limit":)") + mem_limit
                                   + "}}");
    REQUIRE(rec.ok());
    return rec->memory_bytes;
  };
  CHECK(memory("2") == 2ull << 30);          // the original client's `--ram 2`: int(GB)
  CHECK(memory("\"1.5g\"") == 3ull << 29);   // ours: `--ram 1.5`
  CHECK(memory("\"512m\"") == 512ull << 20);
  CHECK(memory("67108864") == 64ull << 20);  // a byte count, as docker-py takes it
  CHECK_FALSE(job_from_submission(R"({"job_id":"m","spec":{"mem_limit":-1}})").ok());
}
