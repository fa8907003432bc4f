// job.config.yaml as the original client read it (runtime/cli/job_config.hpp):
// every key it read, their checks, and what is named as ignored.

#include <catch2/catch.hpp>

#include <string>

#include "runtime/cli/job_config.hpp"

using namespace atlas::cli;

namespace {

const std::string file = "proj/job.config.yaml";

} // namespace

TEST_CASE("every key the original read is read", "[job_config]") {
  auto c = parse_job_config(R"(
project_name: vision
log_level: warning
num_gpus: 2
ram: 1.5
entrypoint: python3 -u
time_limit: 30m
params:
  lr: 0.01
  layers: [64, 32]
  name: "resnet"
worker:
  image: my/worker:1
  command: ["train.py", "--fast"]
  working_dir: /job/job_source
  environment:
    DATA: /data
    SEED: 7
  volumes:
    /srv/data:
      bind: /data
      mode: ro
)", file);
  REQUIRE(c);
  CHECK(c->project_name == "vision");
  CHECK(c->log_level == "WARNING");
  CHECK(c->num_gpus == 2);
  CHECK(c->mem_limit == "1.5g");
  CHECK(c->entrypoint == "\"python3 -u\"");
  CHECK(c->time_limit == "30m");
  CHECK(c->params == R"({"lr":0.01,"layers":[64,32],"name":"resnet"})");
  CHECK(c->image == "\"my/worker:1\"");
  CHECK(c->command == R"(["train.py","--fast"])");
  CHECK(c->working_dir == "\"/job/job_source\"");
  CHECK(c->volumes == R"({"/srv/data":{"bind":"/data","mode":"ro"}})");
  using kv = std::pair<std::string, std::string>;
  CHECK(c->environment == std::vector<kv>{{"DATA", "/data"}, {"SEED", "7"}, {"FOUNDATIONS_LOG_LEVEL", "WARNING"}});
  CHECK(c->ignored.empty());
}

TEST_CASE("the original's precedence: args over command, entrypoint over worker's", "[job_config]") {
  auto c = parse_job_config("entrypoint: [python3, -X, dev]\n"
                            "worker: {command: a.py, args: [b.py, x], entrypoint: bash}\n", file);
  REQUIRE(c);
  CHECK(c->command == R"(["b.py","x"])");
  CHECK(c->entrypoint == R"(["python3","-X","dev"])");
  auto w = parse_job_config("worker: {entrypoint: bash}\n", file);
  REQUIRE(w);
  CHECK(w->entrypoint == "\"bash\"");
}

TEST_CASE("an empty or absent setting is no setting; unknown keys are named", "[job_config]") {
  auto empty = parse_job_config("", file);
  REQUIRE(empty);
  CHECK(empty->project_name.empty());
  CHECK_FALSE(empty->num_gpus);
  auto c = parse_job_config("project_name:\nnum_workers: 3\nworker: {resources: {limits: {}}}\n", file);
  REQUIRE(c);
  CHECK(c->project_name.empty());
  CHECK(c->ignored == std::vector<std::string>{"num_workers", "worker.resources"});
}

TEST_CASE("a wrong value is refused with the file and the key", "[job_config]") {
  struct bad {
    const char* yaml;
    const char* error;
  };
  for (auto [yaml, error] : {
         bad{"num_gpus: -1\n", "proj/job.config.yaml: num_gpus: expected a whole number >= 0"},
         bad{"num_gpus: 1.5\n", "proj/job.config.yaml: num_gpus: expected a whole number >= 0"},
         bad{"ram: lots\n", "proj/job.config.yaml: ram: expected a number of GB > 0 (e.g. 4 or 1.5)"},
         bad{"ram: 0\n", "proj/job.config.yaml: ram: expected a number of GB > 0 (e.g. 4 or 1.5)"},
         bad{"log_level: LOUD\n",
             "proj/job.config.yaml: log_level: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'LOUD'"},
         bad{"params: [1, 2]\n",
             "proj/job.config.yaml: params: expected a mapping of names to values (what load_parameters() returns)"},
         bad{"project_name: [a]\n", "proj/job.config.yaml: project_name: expected a string"},
         bad{"entrypoint: {a: b}\n", "proj/job.config.yaml: entrypoint: expected a string or a list of strings"},
         bad{"worker: image\n", "proj/job.config.yaml: worker: expected a mapping (image, command, entrypoint, "
                                "working_dir, environment, volumes)"},
         bad{"worker: {command: [[a]]}\n",
             "proj/job.config.yaml: worker.command: expected a string or a list of strings"},
         bad{"worker: {environment: [A=1]}\n",
             "proj/job.config.yaml: worker.environment: expected a mapping of variable names to values"},
         bad{"worker: {environment: {A: [1]}}\n",
             "proj/job.config.yaml: worker.environment.A: expected a value, not a list"},
         bad{"worker: {volumes: {/srv: /data}}\n",
             "proj/job.config.yaml: worker.volumes./srv: expected {bind: <path in the container>, mode: rw|ro}"},
         bad{"- a\n- b\n", "proj/job.config.yaml: expected a mapping of settings (project_name: ..., ...)"},
       }) {
    auto c = parse_job_config(yaml, file);
    REQUIRE_FALSE(c);
    CHECK(c.error() == error);
  }
  auto broken = parse_job_config("a: [1, 2\n", file);
  REQUIRE_FALSE(broken);
  CHECK(broken.error().rfind("proj/job.config.yaml: not valid YAML (line ", 0) == 0);
}
