#include <catch2/catch.hpp>

#include <set>

#include "runtime/cli/sweep_plan.hpp"

using namespace atlas::cli;

namespace {

sweep_spec parsed(const std::string& text) {
  auto p = parse_sweep(text, "s.yaml");
  INFO(p.error);
  REQUIRE(p.spec.has_value());
  return *p.spec;
}

std::string error_of(const std::string& text) {
  auto p = parse_sweep(text, "s.yaml");
  CHECK_FALSE(p.spec.has_value());
  return p.error;
}

} // namespace

TEST_CASE("a grid sweep is the cartesian product, last parameter fastest", "[sweep_plan]") {
  auto spec = parsed("parameters: {lr: [0.1, 0.01], layers: [[64, 32], [128]], act: [relu, 'on']}\n"
                     "max_concurrent: 4\nmetric: loss\ngoal: maximize\n");
  CHECK(spec.max_concurrent == 4);
  CHECK(spec.metric == "loss");
  CHECK(spec.goal == "maximize");
  auto trials = expand_sweep(spec);
  REQUIRE(trials.size() == 8);
  CHECK(trials[0] == R"({"lr":0.1,"layers":[64,32],"act":"relu"})");
  CHECK(trials[1] == R"({"lr":0.1,"layers":[64,32],"act":"on"})");
  CHECK(trials[2] == R"({"lr":0.1,"layers":[128],"act":"relu"})");
  CHECK(trials[7] == R"({"lr":0.01,"layers":[128],"act":"on"})");
  CHECK(std::set<std::string>(trials.begin(), trials.end()).size() == 8);
}

TEST_CASE("a range in a grid is stepped, on a log scale when asked", "[sweep_plan]") {
  auto trials = expand_sweep(parsed("parameters:\n  wd: {min: 0.001, max: 0.1, log: true, steps: 3}\n"
                                    "  n: {min: 1, max: 5, int: true, steps: 3}\n"));
  REQUIRE(trials.size() == 9);
  CHECK(trials[0] == R"({"wd":0.001,"n":1})");
  CHECK(trials[1] == R"({"wd":0.001,"n":3})");
  CHECK(trials[8] == R"({"wd":0.1,"n":5})");
  CHECK(trials[3].find(R"("wd":0.01)") != std::string::npos);
}

TEST_CASE("a random sweep samples the same trials for the same seed", "[sweep_plan]") {
  const std::string file = "method: random\ntrials: 50\nseed: 7\n"
                           "parameters: {lr: {min: 0.0001, max: 0.1, log: true}, dropout: {min: 0, max: 0.5},"
                           " layers: [[64], [128, 64]], batch: {min: 16, max: 128, int: true}}\n";
  auto a = expand_sweep(parsed(file));
  auto b = expand_sweep(parsed(file));
  REQUIRE(a.size() == 50);
  CHECK(a == b);
  auto other = parsed(file);
  other.seed = 8;
  CHECK(expand_sweep(other) != a);
  std::set<std::string> distinct(a.begin(), a.end());
  CHECK(distinct.size() == 50);
  for (auto& t : a) {
    CHECK(t.find(R"("layers":[)") != std::string::npos);
    CHECK(t.find(R"("batch":)") != std::string::npos);
  }
}

TEST_CASE("bad sweep files are refused with the key at fault", "[sweep_plan]") {
  CHECK(error_of("parameters: {lr: [1]}\nmethdo: grid\n").find("unknown key 'methdo'") != std::string::npos);
  CHECK(error_of("parameters: {}\n").find("parameters") != std::string::npos);
  CHECK(error_of("method: grid\n").find("parameters") != std::string::npos);
  CHECK(error_of("parameters: {lr: []}\n").find("empty list") != std::string::npos);
  CHECK(error_of("parameters: {lr: {min: 0, max: 1}}\n").find("needs steps") != std::string::npos);
  CHECK(error_of("parameters: {lr: {min: 2, max: 1, steps: 2}}\n").find("greater") != std::string::npos);
  CHECK(error_of("parameters: {lr: {min: 0, max: 1, log: true}}\nmethod: random\ntrials: 2\n")
          .find("log range needs min > 0") != std::string::npos);
  CHECK(error_of("parameters: {lr: {min: 0, max: 1, typo: 3}}\nmethod: random\ntrials: 2\n")
          .find("unknown key 'typo'") != std::string::npos);
  CHECK(error_of("parameters: {lr: [1]}\nmethod: random\n").find("trials") != std::string::npos);
  CHECK(error_of("parameters: {lr: [1]}\nmethod: bayes\n").find("grid or random") != std::string::npos);
  CHECK(error_of("parameters: {lr: [1]}\ntrials: 3\n").find("only for method: random") != std::string::npos);
  CHECK(error_of("parameters: {lr: [1]}\nmax_concurrent: 0\n").find("max_concurrent") != std::string::npos);
  CHECK(error_of("parameters: {lr: [1]}\ngoal: lowest\n").find("minimize or maximize") != std::string::npos);
  CHECK(error_of("parameters: [lr]\n").find("parameters") != std::string::npos);
  CHECK(error_of("parameters: {lr: [1\n").find("not valid YAML") != std::string::npos);
  CHECK(error_of("parameters: {lr: [1]}\nmethod: random\ntrials: 10001\n").find("trials") != std::string::npos);
}

TEST_CASE("a grid past ten thousand trials is refused", "[sweep_plan]") {
  std::string list = "[1,2,3,4,5,6,7,8,9,10,11]";
  auto why = error_of("parameters: {a: " + list + ", b: " + list + ", c: " + list + ", d: " + list + "}\n");
  CHECK(why.find("more than 10000 trials") != std::string::npos);
  auto ok = parsed("parameters: {a: [1,2,3,4,5,6,7,8,9,10], b: [1,2,3,4,5,6,7,8,9,10], c: [1,2,3,4,5,6,7,8,9,10], "
                   "d: [1,2,3,4,5,6,7,8,9,10]}\n");
  CHECK(sweep_size(ok) == 10000);
}

TEST_CASE("stop --sweep picks the sweep's trials that have not ended", "[sweep_plan]") {
  std::string error;
  auto ids = active_trials(R"({"jobs": [
      {"job_id": "a", "sweep_id": "sweep-1", "status": "queued"},
      {"job_id": "b", "sweep_id": "sweep-1", "status": "running"},
      {"job_id": "c", "sweep_id": "sweep-1", "status": "pending"},
      {"job_id": "d", "sweep_id": "sweep-1", "status": "completed"},
      {"job_id": "e", "sweep_id": "sweep-2", "status": "running"},
      {"job_id": "f", "status": "running"}, 7]})", "sweep-1", error);
  REQUIRE(ids);
  CHECK(*ids == std::vector<std::string>{"a", "b", "c"});
  CHECK(active_trials(R"({"jobs": []})", "sweep-1", error)->empty());
  CHECK_FALSE(active_trials(R"({"nope": 1})", "sweep-1", error));
  CHECK(error.find("jobs") != std::string::npos);
  CHECK_FALSE(active_trials("not json", "sweep-1", error));
}
