#include <catch2/catch.hpp>

#include "actors/policy/dependencies.hpp"

using namespace atlas;

namespace {
job_dependency dep(std::string id, std::string when = "ok") {
  return job_dependency{std::move(id), std::move(when)};
}
} // namespace

TEST_CASE("a condition is judged only on a final state", "[dependencies]") {
  CHECK(judge_dependency("ok", job_state::running) == dependency_verdict::waiting);
  CHECK(judge_dependency("any", job_state::lost) == dependency_verdict::waiting);
  CHECK(judge_dependency("ok", job_state::completed) == dependency_verdict::satisfied);
  CHECK(judge_dependency("ok", job_state::failed) == dependency_verdict::impossible);
  CHECK(judge_dependency("ok", job_state::cancelled) == dependency_verdict::impossible);
  CHECK(judge_dependency("failed", job_state::failed) == dependency_verdict::satisfied);
  CHECK(judge_dependency("failed", job_state::completed) == dependency_verdict::impossible);
  // Cancelled is not failed: a `failed` condition cannot be met by it.
  CHECK(judge_dependency("failed", job_state::cancelled) == dependency_verdict::impossible);
  for (auto s : {job_state::completed, job_state::failed, job_state::cancelled})
    CHECK(judge_dependency("any", s) == dependency_verdict::satisfied);
}

TEST_CASE("a held job is released when every dependency ended as needed", "[dependencies]") {
  dependency_graph g;
  g.hold("c", {dep("a"), dep("b", "any")});
  CHECK(g.holds("c"));
  CHECK(g.awaited("a"));
  CHECK(g.verdict("c") == dependency_verdict::waiting);
  CHECK(g.reason("c") == "waiting for a (ok)");
  auto first = g.ended("a", job_state::completed);
  CHECK(first.released.empty());
  CHECK(first.doomed.empty());
  CHECK(g.reason("c") == "waiting for b (any)");
  CHECK_FALSE(g.awaited("a"));
  auto second = g.ended("b", job_state::cancelled);
  REQUIRE(second.released == std::vector<std::string>{"c"});
  CHECK(g.verdict("c") == dependency_verdict::satisfied);
  g.drop("c");
  CHECK_FALSE(g.holds("c"));
  CHECK(g.size() == 0);
}

TEST_CASE("a dependency that cannot be met dooms its dependents", "[dependencies]") {
  dependency_graph g;
  g.hold("d", {dep("f"), dep("x")});
  g.hold("e", {dep("f", "failed")});
  auto out = g.ended("f", job_state::failed);
  REQUIRE(out.doomed.size() == 1);
  CHECK(out.doomed[0].first == "d");
  CHECK(out.doomed[0].second == "dependency f ended failed (needed ok)");
  CHECK(out.released == std::vector<std::string>{"e"});
  CHECK(g.verdict("d") == dependency_verdict::impossible);
  // Dropping the doomed job forgets what it waited on.
  g.drop("d");
  CHECK_FALSE(g.awaited("x"));
}

TEST_CASE("a dependency that is never created dooms its dependents", "[dependencies]") {
  dependency_graph g;
  g.hold("b", {dep("a", "any")});
  auto out = g.vanished("a");
  REQUIRE(out.doomed.size() == 1);
  CHECK(out.doomed[0].second == "dependency a does not exist");
}

TEST_CASE("ends of jobs nobody waits on change nothing", "[dependencies]") {
  dependency_graph g;
  g.hold("b", {dep("a")});
  auto out = g.ended("z", job_state::completed);
  CHECK(out.released.empty());
  CHECK(out.doomed.empty());
  CHECK(g.verdict("unknown") == dependency_verdict::satisfied);
  // Holding again replaces the conditions.
  g.hold("b", {dep("y")});
  CHECK_FALSE(g.awaited("a"));
  CHECK(g.awaited("y"));
}
