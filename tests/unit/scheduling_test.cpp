// Quotas, preemption, placement by CPUs and memory, and the time limits a
// job gets at submission: the plain-C++ policies of actors/policy/.

#include <catch2/catch.hpp>

#include "actors/policy/dispatch_plan.hpp"
#include "actors/policy/job_limits.hpp"
#include "actors/policy/preemption.hpp"
#include "actors/policy/queue_policy.hpp"

using namespace atlas;

namespace {

queued_job job(std::string id, std::string user, uint64_t seq, int64_t prio = 0) {
  queued_job j;
  j.job_id = std::move(id);
  j.username = std::move(user);
  j.seq = seq;
  j.priority = prio;
  return j;
}

quota_limits jobs_at_most(int64_t n) {
  quota_limits l;
  l.running_jobs = n;
  return l;
}

} // namespace

TEST_CASE("a user over quota waits while other users' jobs go", "[quotas]") {
  queue_policy q;
  q.set_quotas({{"alice", jobs_at_most(2)}}, {});
  for (uint64_t i = 0; i < 4; ++i)
    q.push(job("a" + std::to_string(i), "alice", i));
  q.push(job("b0", "bob", 10));
  q.push(job("b1", "bob", 11));
  std::vector<std::string> order;
  while (auto j = q.pop_for(0))
    order.push_back(j->job_id);
  // Fair share interleaves; alice stops at 2.
  CHECK(order == std::vector<std::string>{"a0", "b0", "a1", "b1"});
  CHECK(q.size() == 2);
  auto why = q.quotas().blocks(job("a2", "alice", 2));
  CHECK(why == "alice: 2 of 2 running jobs");
  q.running_changed(job("a0", "alice", 0), -1); // one of hers ended
  CHECK(q.pop_for(0)->job_id == "a2");
  CHECK_FALSE(q.pop_for(0));
  // The listing still shows every queued job.
  CHECK(q.ordered().size() == 1);
}

TEST_CASE("group quotas count every member; '*' applies to users without their own",
          "[quotas]") {
  quota_ledger l;
  quota_limits gpus;
  gpus.gpus = 4;
  l.configure({{"*", jobs_at_most(1)}, {"carol", jobs_at_most(5)}}, {{"ml", gpus}});
  auto a = job("a", "alice", 1);
  a.groups = {"ml"};
  a.num_gpus = 3;
  CHECK(l.blocks(a).empty());
  l.add(a, 1);
  CHECK(l.blocks(job("a2", "alice", 2)) == "alice: 1 of 1 running jobs");
  auto b = job("b", "bob", 3);
  b.groups = {"ml"};
  b.num_gpus = 2;
  CHECK(l.blocks(b) == "group ml: 3 of 4 GPUs, asks 2");
  b.num_gpus = 1;
  CHECK(l.blocks(b).empty());
  CHECK(l.blocks(job("c", "carol", 4)).empty());
  b.num_gpus = 5;
  CHECK(l.never_fits(b) == "asks 5 GPUs; group ml may hold 4");
  l.add(a, -1);
  CHECK(l.blocks(job("a2", "alice", 2)).empty());
}

TEST_CASE("a preempted job goes first in its class, not above a higher one", "[queue_policy]") {
  queue_policy q;
  q.push(job("low-old", "ann", 1, 0));
  auto back = job("low-preempted", "bob", 5, 0);
  back.preempted = true;
  q.push(back);
  q.push(job("high", "cid", 9, 5));
  CHECK(q.pop_for(0)->job_id == "high");
  CHECK(q.pop_for(0)->job_id == "low-preempted");
  CHECK(q.pop_for(0)->job_id == "low-old");
}

TEST_CASE("placement fits jobs' CPUs and memory into their node", "[dispatch_plan]") {
  queue_policy q;
  for (uint64_t i = 0; i < 4; ++i) {
    auto j = job("j" + std::to_string(i), "u", i);
    j.cpus = 1;
    q.push(j);
  }
  dispatch_input in;
  for (int i = 0; i < 4; ++i)
    in.slots.push_back(open_slot{"n/" + std::to_string(i), "n", {}});
  in.rooms["n"].cpus = 2;
  auto plan = plan_dispatch(q, in);
  CHECK(plan.size() == 2); // 4 slots, but 2 CPUs
  CHECK(q.size() == 2);

  queue_policy big;
  auto m = job("mem", "u", 1);
  m.memory_bytes = 8ull << 30;
  big.push(m);
  dispatch_input small;
  small.slots.push_back(open_slot{"s/0", "s", {}});
  small.rooms["s"].memory_bytes = 4ull << 30;
  CHECK(plan_dispatch(big, small).empty());
  node_room largest;
  largest.memory_bytes = 4ull << 30;
  CHECK(room_misfit(m, largest) == "asks 8 GiB of memory; the largest node has 4 GiB");
}

TEST_CASE("preemption picks the fewest, lowest, youngest victims on one node", "[preemption]") {
  preemption_input in;
  in.now = 1000;
  in.min_runtime_s = 60;
  in.waiting = job("urgent", "x", 1, 10);
  in.nodes["a"] = node_now{};
  in.nodes["b"] = node_now{};
  auto run = [](std::string id, std::string node, int64_t prio, double since) {
    running_job r;
    r.job_id = std::move(id);
    r.node_id = std::move(node);
    r.priority = prio;
    r.since = since;
    return r;
  };
  in.running = {run("a-old", "a", 0, 100), run("a-new", "a", 0, 800), run("b-mid", "b", 5, 100),
                run("b-young", "b", 0, 990)};
  auto plan = plan_preemption(in);
  REQUIRE(plan);
  CHECK(plan->node_id == "a");
  CHECK(plan->victims == std::vector<std::string>{"a-new"}); // youngest that ran 60 s

  SECTION("never a job in its first min_runtime_s, never one of equal priority") {
    in.running = {run("young", "a", 0, 990), run("peer", "b", 10, 100)};
    CHECK_FALSE(plan_preemption(in));
  }
  SECTION("no chains: preempted for this class once, not again") {
    auto r = run("once", "a", 0, 100);
    r.preemptions = 1;
    r.preempted_by = 10;
    in.running = {r};
    CHECK_FALSE(plan_preemption(in));
    in.waiting.priority = 11;
    CHECK(plan_preemption(in));
  }
  SECTION("no preemption when the job fits somewhere already") {
    in.nodes["b"].free_slots = 1;
    CHECK_FALSE(plan_preemption(in));
  }
  SECTION("GPUs: enough victims to free what it asks") {
    in.waiting.num_gpus = 2;
    auto g1 = run("g1", "a", 0, 100);
    g1.num_gpus = 1;
    auto g2 = run("g2", "a", 1, 100);
    g2.num_gpus = 1;
    in.running = {g1, g2};
    in.nodes.erase("b");
    auto p = plan_preemption(in);
    REQUIRE(p);
    CHECK(p->victims == std::vector<std::string>{"g1", "g2"});
  }
}

TEST_CASE("time limits: the project's default, else the cluster's, never over the maximum",
          "[job_limits]") {
  scheduling_settings s;
  s.time_limit_s = 3600;
  s.max_time_limit_s = 7200;
  s.projects["quick"].time_limit_s = 60;
  s.projects["quick"].max_time_limit_s = 120;
  job_record r;
  r.project_name = "other";
  CHECK(apply_time_limit(r, s).empty());
  CHECK(r.time_limit_s == 3600);
  r = job_record{};
  r.project_name = "quick";
  CHECK(apply_time_limit(r, s).empty());
  CHECK(r.time_limit_s == 60);
  r.time_limit_s = 600;
  CHECK(apply_time_limit(r, s) == "time_limit 600 s is over projects.quick.max_time_limit_s (120 s)");
  r.project_name = "other";
  CHECK(apply_time_limit(r, s).empty());

  s.group_members["ml"] = {"alice", "bob"};
  r.username = "alice";
  r.groups = {"admins", "ml"};
  add_config_groups(r, s);
  CHECK(r.groups == std::vector<std::string>{"admins", "ml"});
}
