#include <catch2/catch.hpp>

#include <algorithm>

#include "actors/policy/queue_policy.hpp"

using namespace atlas;

namespace {

queued_job job(std::string id, std::string user, uint64_t seq, int64_t prio = 0,
               int64_t gpus = 0) {
  queued_job j;
  j.job_id = std::move(id);
  j.username = std::move(user);
  j.priority = prio;
  j.num_gpus = gpus;
  j.seq = seq;
  return j;
}

std::vector<std::string> ids(const std::vector<queued_job>& xs) {
  std::vector<std::string> out;
  for (auto& x : xs)
    out.push_back(x.job_id);
  return out;
}

} // namespace

TEST_CASE("jobs of one user run in submission order", "[queue_policy]") {
  queue_policy q;
  q.push(job("b", "ann", 2));
  q.push(job("a", "ann", 1));
  q.push(job("c", "ann", 3));
  CHECK(ids(q.ordered()) == std::vector<std::string>{"a", "b", "c"});
  CHECK(q.pop_for(0)->job_id == "a");
  CHECK(q.size() == 2);
}

TEST_CASE("higher priority goes first whatever the submission time", "[queue_policy]") {
  queue_policy q;
  q.push(job("low", "ann", 1, 0));
  q.push(job("high", "ann", 2, 5));
  CHECK(q.pop_for(0)->job_id == "high");
}

TEST_CASE("one user's thousand jobs do not starve another user's single job",
          "[queue_policy]") {
  queue_policy q;
  for (uint64_t i = 0; i < 1000; ++i)
    q.push(job("ann-" + std::to_string(i), "ann", i + 1));
  q.push(job("bob-0", "bob", 5000));
  auto order = ids(q.ordered());
  auto pos = std::find(order.begin(), order.end(), "bob-0") - order.begin();
  CHECK(pos <= 1);
}

TEST_CASE("fair share counts jobs already running", "[queue_policy]") {
  queue_policy q;
  q.running_changed("ann", 3);
  q.push(job("a1", "ann", 1));
  q.push(job("b1", "bob", 2));
  CHECK(q.pop_for(0)->job_id == "b1");
  q.running_changed("ann", -3);
  CHECK(q.pop_for(0)->job_id == "a1");
  CHECK_FALSE(q.pop_for(0));
}

TEST_CASE("users interleave when both have many jobs", "[queue_policy]") {
  queue_policy q;
  q.push(job("a1", "ann", 1));
  q.push(job("a2", "ann", 2));
  q.push(job("a3", "ann", 3));
  q.push(job("b1", "bob", 4));
  q.push(job("b2", "bob", 5));
  CHECK(ids(q.ordered()) == std::vector<std::string>{"a1", "b1", "a2", "b2", "a3"});
  // A page's worth: the same order, cut (the queue itself untouched).
  CHECK(ids(q.ordered(0, 3)) == std::vector<std::string>{"a1", "b1", "a2"});
  CHECK(ids(q.ordered(3, 9)) == std::vector<std::string>{"b2", "a3"});
  CHECK(ids(q.ordered(1, 0)).empty());
  CHECK(q.size() == 5);
}

TEST_CASE("a job that needs more GPUs than the slot has is skipped, not blocking",
          "[queue_policy]") {
  queue_policy q;
  q.push(job("big", "ann", 1, 0, 4));
  q.push(job("small", "ann", 2, 0, 0));
  CHECK(q.pop_for(1)->job_id == "small");
  CHECK_FALSE(q.pop_for(1));
  CHECK(q.pop_for(4)->job_id == "big");
}

TEST_CASE("moving a job by hand pins the current order", "[queue_policy]") {
  queue_policy q;
  q.push(job("a", "ann", 1));
  q.push(job("b", "ann", 2));
  q.push(job("c", "ann", 3));
  REQUIRE(q.move(2, 0));
  CHECK(ids(q.ordered()) == std::vector<std::string>{"c", "a", "b"});
  q.push(job("d", "ann", 4, 9)); // later arrivals queue behind the pinned jobs
  CHECK(ids(q.ordered()) == std::vector<std::string>{"c", "a", "b", "d"});
  CHECK_FALSE(q.move(7, 0));
}

TEST_CASE("removing a queued job takes it out of every view", "[queue_policy]") {
  queue_policy q;
  q.push(job("a", "ann", 1));
  q.push(job("b", "bob", 2));
  CHECK(q.remove("a"));
  CHECK_FALSE(q.remove("a"));
  CHECK_FALSE(q.contains("a"));
  CHECK(ids(q.ordered()) == std::vector<std::string>{"b"});
}

namespace {

queued_job trial(std::string id, std::string sweep, int64_t cap, uint64_t seq) {
  auto j = job(std::move(id), "ann", seq);
  j.sweep_id = std::move(sweep);
  j.sweep_limit = cap;
  return j;
}

} // namespace

TEST_CASE("a sweep never runs more trials at once than its cap", "[queue_policy][sweep]") {
  queue_policy q;
  for (int i = 0; i < 10; ++i)
    q.push(trial("t" + std::to_string(i), "s1", 4, static_cast<uint64_t>(i + 1)));
  q.push(job("other", "bob", 100));
  std::vector<queued_job> running;
  while (auto j = q.pop_for(0))
    running.push_back(*j);
  // Four trials and the unrelated job; the other six trials wait.
  REQUIRE(running.size() == 5);
  CHECK(q.size() == 6);
  CHECK(q.quotas().sweep_running("s1") == 4);
  auto held = q.ordered().front();
  CHECK(q.quotas().sweep_blocks(held) == "sweep cap (4 running)");
  CHECK_FALSE(q.take(held.job_id).has_value());
  // One trial ends: exactly one more may start.
  q.running_changed(running.front(), -1);
  CHECK(q.pop_for(0)->job_id == "t4");
  CHECK_FALSE(q.pop_for(0).has_value());
}

TEST_CASE("sweeps are capped apart, and a trial without a cap is not held",
          "[queue_policy][sweep]") {
  queue_policy q;
  q.push(trial("a1", "A", 1, 1));
  q.push(trial("a2", "A", 1, 2));
  q.push(trial("b1", "B", 1, 3));
  q.push(trial("c1", "C", 0, 4));
  q.push(trial("c2", "C", 0, 5));
  std::vector<std::string> got;
  while (auto j = q.pop_for(0))
    got.push_back(j->job_id);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{"a1", "b1", "c1", "c2"});
  CHECK(q.quotas().blocks(trial("a2", "A", 1, 2)) == "sweep cap (1 running)");
}

TEST_CASE("the listed order is the order pops hand jobs out, for any page", "[queue_policy]") {
  // Users with jobs running, priorities, pins and preempted jobs mixed; the
  // reference pops a copy empty, as a dispatch with room for every job would.
  for (unsigned seed = 1; seed <= 20; ++seed) {
    queue_policy q;
    unsigned x = seed;
    auto next = [&](unsigned n) {
      x = x * 1103515245u + 12345u;
      return (x >> 16) % n;
    };
    const char* users[] = {"ann", "bob", "cy", "dee"};
    for (auto* u : users)
      q.running_changed(u, static_cast<int>(next(3)));
    for (uint64_t i = 0; i < 60; ++i) {
      auto j = job("j" + std::to_string(i), users[next(4)], 1 + next(1000),
                   static_cast<int64_t>(next(3)), static_cast<int64_t>(next(2)));
      j.pin = next(8) == 0 ? static_cast<int64_t>(1 + next(5)) : 0;
      j.preempted = next(10) == 0;
      q.push(j);
    }
    auto copy = q;
    std::vector<std::string> popped;
    while (auto j = copy.pop_for(std::numeric_limits<int64_t>::max()))
      popped.push_back(j->job_id);
    INFO("seed " << seed);
    CHECK(ids(q.ordered()) == popped);
    for (size_t first : {0, 1, 30, 59, 60, 70})
      for (size_t count : {1, 7, 59, 60, 61}) {
        auto from = std::min(first, popped.size()), to = std::min(first + count, popped.size());
        std::vector<std::string> slice(popped.begin() + static_cast<std::ptrdiff_t>(from),
                                       popped.begin() + static_cast<std::ptrdiff_t>(to));
        CHECK(ids(q.ordered(first, count)) == slice);
      }
  }
}
