#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>

#include "actors/policy/job_runtime.hpp"

using namespace atlas;

namespace {

job_record job_with(std::string spec) {
  job_record j;
  j.job_id = "j1";
  j.project_name = "proj";
  j.username = "ann";
  j.spec = std::move(spec);
  return j;
}

bool has(const std::vector<std::string>& env, const std::string& kv) {
  return std::find(env.begin(), env.end(), kv) != env.end();
}

} // namespace

TEST_CASE("a command runs under python3 as the original worker image did", "[job_runtime]") {
  node_config cfg;
  std::string err;
  auto l = make_launch(cfg, job_with(R"({"command":["main.py","--lr","0.1"]})"), {}, "/w", err);
  REQUIRE(l);
  CHECK(l->argv == std::vector<std::string>{"python3", "main.py", "--lr", "0.1"});
  CHECK(has(l->env, "FOUNDATIONS_JOB_ID=j1"));
  CHECK(has(l->env, "FOUNDATIONS_PROJECT_NAME=proj"));
  CHECK(has(l->env, "FOUNDATIONS_USER=ann"));
}

TEST_CASE("an entrypoint replaces python3 and the environment is passed on", "[job_runtime]") {
  node_config cfg;
  std::string err;
  auto l = make_launch(
    cfg, job_with(R"({"entrypoint":["/bin/sh","-c"],"command":"exit 3","environment":{"A":"1","N":2}})"),
    {}, "/w", err);
  REQUIRE(l);
  CHECK(l->argv == std::vector<std::string>{"/bin/sh", "-c", "exit", "3"});
  CHECK(has(l->env, "A=1"));
  CHECK(has(l->env, "N=2"));
}

TEST_CASE("a preempted job and one with a time limit are told so in their environment",
          "[job_runtime]") {
  node_config cfg;
  std::string err;
  auto plain = make_launch(
    cfg, job_with(R"({"command":["m.py"],"environment":{"ATLAS_PREEMPTED":"1","ATLAS_TIME_LIMIT":"9"}})"),
    {}, "/w", err);
  REQUIRE(plain);
  for (auto& kv : plain->env) { // the user's spec cannot claim either
    CHECK(kv.rfind("ATLAS_PREEMPTED=", 0) != 0);
    CHECK(kv.rfind("ATLAS_TIME_LIMIT=", 0) != 0);
  }
  auto j = job_with(R"({"command":["m.py"]})");
  j.preemptions = 2;
  j.time_limit_s = 90;
  auto l = make_launch(cfg, j, {}, "/w", err);
  REQUIRE(l);
  CHECK(has(l->env, "ATLAS_PREEMPTED=1"));
  CHECK(has(l->env, "ATLAS_TIME_LIMIT=90"));
}

TEST_CASE("the GPUs given to a job reach its environment, and no others", "[job_runtime]") {
  node_config cfg;
  slot_info slot;
  slot.gpus = {"1"};
  auto job = job_with(R"({"command":["a.py"]})");
  job.gpus = {"0", "2"};
  std::string err;
  auto l = make_launch(cfg, job, slot, "/w", err);
  REQUIRE(l);
  CHECK(has(l->env, "CUDA_VISIBLE_DEVICES=0,2"));
  CHECK(has(l->env, "NVIDIA_VISIBLE_DEVICES=0,2"));
  job.gpus.clear(); // a CPU job on a GPU slot sees no GPU
  l = make_launch(cfg, job, slot, "/w", err);
  REQUIRE(l);
  CHECK(has(l->env, "CUDA_VISIBLE_DEVICES="));
  CHECK(has(l->env, "NVIDIA_VISIBLE_DEVICES=void"));
}

TEST_CASE("a spec that cannot run is refused with a reason", "[job_runtime]") {
  node_config cfg;
  std::string err;
  CHECK_FALSE(make_launch(cfg, job_with(R"({})"), {}, "/w", err));
  CHECK(err.find("neither command nor entrypoint") != std::string::npos);
  CHECK_FALSE(make_launch(cfg, job_with(R"({"command":[1]})"), {}, "/w", err));
  CHECK(err.find("strings") != std::string::npos);
}

TEST_CASE("process ends map onto the lifecycle with reasons", "[job_runtime]") {
  CHECK(classify_exit(0, 0, "").state == job_state::completed);
  auto failed = classify_exit(3, 0, "");
  CHECK(failed.state == job_state::failed);
  CHECK(failed.return_code == 3);
  CHECK(failed.reason == "exited with code 3");
  auto killed = classify_exit(-1, SIGKILL, "");
  CHECK(killed.state == job_state::failed);
  CHECK(killed.reason.find("SIGKILL") != std::string::npos);
  CHECK(classify_exit(-1, SIGTERM, "", stop_cause::user).state == job_state::cancelled);
  CHECK(classify_exit(-1, SIGTERM, "", stop_cause::drain).state == job_state::lost);
  auto preempted = classify_exit(-1, SIGTERM, "", stop_cause::preempted);
  CHECK(preempted.state == job_state::lost);
  CHECK(preempted.reason.rfind("preempted", 0) == 0);
  auto timed_out = classify_exit(-1, SIGKILL, "", stop_cause::time_limit);
  CHECK(timed_out.state == job_state::failed);
  CHECK(timed_out.reason.rfind("time limit", 0) == 0);
  auto nostart = classify_exit(-1, 0, "cannot start 'x'");
  CHECK(nostart.state == job_state::failed);
  CHECK(nostart.reason.find("could not start") == 0);
}

TEST_CASE("a runner's own failure reason wins over the exit code, unless the job was stopped",
          "[job_runtime]") {
  auto oom = classify_exit(137, 0, "", stop_cause::none, "out of memory");
  CHECK(oom.state == job_state::failed);
  CHECK(oom.reason == "out of memory");
  CHECK(oom.return_code == 137);
  CHECK(classify_exit(137, 0, "", stop_cause::user, "out of memory").state == job_state::cancelled);
  CHECK(classify_exit(0, 0, "", stop_cause::none, "out of memory").state == job_state::failed);
  auto lost = classify_exit(-1, 0, "", stop_cause::none, "lost the container: gone");
  CHECK(lost.reason == "lost the container: gone");
  CHECK_FALSE(lost.has_return_code);
}
