#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "actors/policy/gpu_placement.hpp"
#include "actors/policy/queue_policy.hpp"
#include "library/config.hpp"
#include "runtime/gpu_detect.hpp"

using namespace atlas;

namespace {

const char* four_gpus = "0, GPU-aaaa0000-0000, NVIDIA H200, 143771 MiB\n"
                        "1, GPU-bbbb1111-1111, NVIDIA H200, 143771 MiB\n"
                        "2, GPU-cccc2222-2222, NVIDIA H200, 143771 MiB\n"
                        "3, GPU-dddd3333-3333, NVIDIA H200, 143771 MiB\n";

std::vector<gpu_device> devices() {
  auto d = parse_nvidia_smi(four_gpus);
  REQUIRE(d.ok());
  return d.value();
}

std::vector<std::string> ids(const std::vector<gpu_device>& ds) {
  std::vector<std::string> out;
  for (auto& d : ds)
    out.push_back(d.index);
  return out;
}

queued_job gpu_job(const std::string& id, int64_t gpus, double queued_time, uint64_t seq,
                   const std::string& user = "u") {
  queued_job j;
  j.job_id = id;
  j.username = user;
  j.num_gpus = gpus;
  j.queued_time = queued_time;
  j.seq = seq;
  return j;
}

} // namespace

TEST_CASE("nvidia-smi's CSV lines become GPUs", "[gpu]") {
  auto one = parse_nvidia_smi("0, GPU-bbcc98f5-cdd0-8fcb-7908-fdddc44ca170, NVIDIA H200, 143771 MiB\n");
  REQUIRE(one.ok());
  REQUIRE(one->size() == 1);
  CHECK(one.value()[0].index == "0");
  CHECK(one.value()[0].uuid == "GPU-bbcc98f5-cdd0-8fcb-7908-fdddc44ca170");
  CHECK(one.value()[0].name == "NVIDIA H200");
  CHECK(one.value()[0].memory_mib == 143771);
  CHECK(one.value()[0].describe() == "0 NVIDIA H200 (143771 MiB, GPU-bbcc98f5-cdd0-8fcb-7908-fdddc44ca170)");
  CHECK(ids(devices()) == std::vector<std::string>{"0", "1", "2", "3"});
  CHECK(parse_nvidia_smi("\n")->empty());
  auto failed = parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate with the driver");
  CHECK_FALSE(failed.ok());
  CHECK(failed.error().find("cannot read nvidia-smi") != std::string::npos);
  // A memory figure too large to read is 0, not a crash.
  auto huge = parse_nvidia_smi("0, GPU-a, X, 99999999999999999999999 MiB\n");
  REQUIRE(huge.ok());
  CHECK(huge.value()[0].memory_mib == 0);
}

TEST_CASE("CUDA_VISIBLE_DEVICES narrows the node's GPUs, in its order", "[gpu]") {
  auto all = devices();
  CHECK(ids(visible_gpus(all, std::nullopt).value()) == std::vector<std::string>{"0", "1", "2", "3"});
  CHECK(visible_gpus(all, std::string{""})->empty());
  CHECK(ids(visible_gpus(all, std::string{"2,0"}).value()) == std::vector<std::string>{"2", "0"});
  CHECK(ids(visible_gpus(all, std::string{"GPU-cccc, 1"}).value()) == std::vector<std::string>{"2", "1"});
  auto unknown = visible_gpus(all, std::string{"7"});
  CHECK_FALSE(unknown.ok());
  CHECK(unknown.error().find("'7'") != std::string::npos);
  auto twice = visible_gpus(all, std::string{"1,1"});
  CHECK_FALSE(twice.ok());
  CHECK(twice.error().find("twice") != std::string::npos);
}

TEST_CASE("a node's GPUs are shared out among its slots, each GPU to one slot", "[gpu]") {
  std::vector<std::string> g{"0", "1", "2", "3"};
  CHECK(gpus_per_slot(g, 4) == std::vector<std::vector<std::string>>{{"0"}, {"1"}, {"2"}, {"3"}});
  CHECK(gpus_per_slot(g, 2) == std::vector<std::vector<std::string>>{{"0", "2"}, {"1", "3"}});
  CHECK(gpus_per_slot({"0", "1"}, 3) == std::vector<std::vector<std::string>>{{"0"}, {"1"}, {}});
  CHECK(gpus_per_slot(g, 0).empty());
  CHECK(gpus_per_slot({}, 2) == std::vector<std::vector<std::string>>{{}, {}});
}

TEST_CASE("GPU mode makes one slot per GPU unless NUM_WORKERS says otherwise", "[gpu]") {
  // apply_gpu_mode runs nvidia-smi: checked end to end in gpu_test.py; here
  // only the sharing rules it relies on.
  node_config cfg;
  CHECK(cfg.gpus.empty());
  CHECK(cfg.gpu_reserve_after_s == 600);
}

TEST_CASE("the ledger counts a node's free GPUs and hands out the slot's own first", "[gpu]") {
  gpu_ledger l;
  l.add_slot("a", {"0"}, {});
  l.add_slot("a", {"1"}, {"1", "2"}); // busy: its job holds 1 and 2
  l.add_slot("a", {"2"}, {});
  l.add_slot("a", {"3"}, {});
  l.add_slot("b", {}, {});            // a node without GPUs
  CHECK(l.total("a") == 4);
  CHECK(l.free("a") == 2);
  CHECK(l.total("b") == 0);
  CHECK(l.free("nope") == 0);
  CHECK(l.largest() == 4);
  CHECK(l.nodes() == std::vector<std::string>{"a"});
  CHECK(l.take("a", 1, {"3"}) == std::vector<std::string>{"3"});
  CHECK(l.take("a", 2, {"2"}) == std::vector<std::string>{"0"}); // its own is held: another one
  CHECK(l.free("a") == 0);
  CHECK(l.take("a", 1, {}).empty());
  CHECK(l.take("b", 0, {}).empty());
}

TEST_CASE("nodes are held for starving GPU jobs, the closest to fitting first", "[gpu]") {
  gpu_ledger l;
  for (auto g : {"0", "1", "2", "3"})
    l.add_slot("a", {g}, std::string(g) == "0" ? std::vector<std::string>{"0"} : std::vector<std::string>{});
  for (auto g : {"0", "1", "2", "3"})
    l.add_slot("b", {g}, std::string(g) != "3" ? std::vector<std::string>{g} : std::vector<std::string>{});
  l.add_slot("c", {"0"}, {});
  l.add_slot("c", {"1"}, {});
  auto all = [](const std::string&) { return true; };
  // a: 3 free of 4, b: 1 free of 4, c: 2 free of 2
  CHECK(plan_reservations({{"big", 4}}, l, all) == std::map<std::string, std::string>{{"a", "big"}});
  CHECK(plan_reservations({{"big", 4}, {"big2", 4}}, l, all)
        == std::map<std::string, std::string>{{"a", "big"}, {"b", "big2"}});
  CHECK(plan_reservations({{"two", 2}}, l, all) == std::map<std::string, std::string>{{"a", "two"}});
  CHECK(plan_reservations({{"big", 4}}, l, [](const std::string& n) { return n != "a"; })
        == std::map<std::string, std::string>{{"b", "big"}});
  CHECK(plan_reservations({{"huge", 8}}, l, all).empty());
  CHECK(plan_reservations({}, l, all).empty());
}

TEST_CASE("a job that can never fit is told why", "[gpu]") {
  CHECK(gpu_misfit(5, 4, true) == "asks for 5 GPUs, but the largest node of the cluster has 4");
  CHECK(gpu_misfit(1, 0, true).find("no node of the cluster has GPUs") != std::string::npos);
  CHECK(gpu_misfit(4, 4, true).empty());
  CHECK(gpu_misfit(0, 0, true).empty());
  CHECK(gpu_misfit(5, 0, false).empty()); // no slot registered yet: nodes may still join
}

TEST_CASE("a small GPU job overtakes a waiting big one (no head-of-line blocking)", "[gpu]") {
  queue_policy q;
  q.push(gpu_job("big", 4, 10, 1));
  q.push(gpu_job("small", 1, 11, 2));
  q.push(gpu_job("cpu", 0, 12, 3));
  auto j = q.pop_for(1); // a slot whose node has one free GPU
  REQUIRE(j);
  CHECK(j->job_id == "small");
  j = q.pop_for(0);
  REQUIRE(j);
  CHECK(j->job_id == "cpu");
  CHECK_FALSE(q.pop_for(3));
  CHECK(q.pop_for(4)->job_id == "big");
}

TEST_CASE("the queue lists its GPU jobs by waiting time and forgets those that leave", "[gpu]") {
  queue_policy q;
  q.push(gpu_job("late", 2, 50, 3));
  q.push(gpu_job("early", 4, 10, 1));
  q.push(gpu_job("cpu", 0, 5, 0));
  q.push(gpu_job("mid", 1, 30, 2));
  auto names = [](const std::vector<queued_job>& js) {
    std::vector<std::string> out;
    for (auto& j : js)
      out.push_back(j.job_id);
    return out;
  };
  CHECK(names(q.gpu_jobs_queued_before(40)) == std::vector<std::string>{"early", "mid"});
  CHECK(names(q.gpu_jobs_queued_before(100)) == std::vector<std::string>{"early", "mid", "late"});
  CHECK(q.pop_for(1)->job_id == "cpu");
  CHECK(q.pop_for(1)->job_id == "mid");
  q.remove("late");
  CHECK(names(q.gpu_jobs_queued_before(100)) == std::vector<std::string>{"early"});
  auto taken = q.take("early");
  REQUIRE(taken);
  CHECK(taken->num_gpus == 4);
  CHECK(q.size() == 0);
  CHECK(q.gpu_jobs_queued_before(100).empty());
  CHECK_FALSE(q.take("early"));
  // a moved queue keeps its GPU jobs' waiting times
  q.push(gpu_job("x", 1, 20, 5));
  q.push(gpu_job("y", 1, 10, 6));
  REQUIRE(q.move(1, 0));
  CHECK(names(q.gpu_jobs_queued_before(100)) == std::vector<std::string>{"y", "x"});
}

namespace {

/// A small stand-in for the master's dispatch round (as in master.cpp):
/// one node with 4 GPUs and 4 slots; each tick the running jobs advance
/// and free slots are filled, held nodes first.
struct sim {
  struct slot {
    std::vector<std::string> own;
    std::string job;
    std::vector<std::string> held;
    int left = 0;
  };
  std::vector<slot> slots = make_slots();

  static std::vector<slot> make_slots() {
    std::vector<slot> out(4);
    for (size_t i = 0; i < out.size(); ++i)
      out[i].own = {std::to_string(i)};
    return out;
  }
  queue_policy q;
  std::map<std::string, int64_t> need;
  std::map<std::string, int> started_at;
  double reserve_after = 1e9;

  void submit(const std::string& id, int64_t gpus, double now, int duration) {
    need[id] = gpus;
    auto j = gpu_job(id, gpus, now, static_cast<uint64_t>(now * 100) + need.size());
    q.push(j);
    durations[id] = duration;
  }
  std::map<std::string, int> durations;

  void tick(int now) {
    for (auto& s : slots)
      if (!s.job.empty() && --s.left <= 0) {
        q.running_changed("u", -1);
        s.job.clear();
        s.held.clear();
      }
    gpu_ledger l;
    for (auto& s : slots)
      l.add_slot("n", s.own, s.job.empty() ? std::vector<std::string>{} : s.held);
    std::vector<starving_job> starving;
    for (auto& j : q.gpu_jobs_queued_before(now - reserve_after))
      starving.push_back({j.job_id, j.num_gpus});
    auto held = plan_reservations(starving, l, [](const std::string&) { return true; });
    for (auto& s : slots) {
      if (!s.job.empty())
        continue;
      std::optional<queued_job> j;
      if (auto h = held.find("n"); h != held.end()) {
        if (l.free("n") < need[h->second])
          break; // held: nobody else gets this node
        j = q.take(h->second);
        held.clear();
      } else {
        j = q.pop_for(l.free("n"));
      }
      if (!j)
        continue;
      s.job = j->job_id;
      s.held = l.take("n", j->num_gpus, s.own);
      s.left = durations[j->job_id];
      started_at[j->job_id] = now;
    }
  }
};

} // namespace

TEST_CASE("a big GPU job starves behind a stream of small ones unless GPUs are held for it",
          "[gpu]") {
  for (double bound : {1e9, 5.0}) {
    sim s;
    s.reserve_after = bound;
    s.submit("s0", 1, 0, 3);
    s.tick(0);
    s.submit("big", 4, 1, 2);
    // a new 1-GPU job every tick, each running 3 ticks: the node is never empty
    for (int t = 1; t < 60; ++t) {
      s.submit("s" + std::to_string(t), 1, t, 3);
      s.tick(t);
    }
    if (bound > 1e8) {
      CHECK(s.started_at.count("big") == 0); // starved
      CHECK(s.started_at.count("s50") == 1); // small ones kept overtaking it
    } else {
      REQUIRE(s.started_at.count("big") == 1);
      CHECK(s.started_at["big"] <= 1 + 5 + 3 + 1); // held after 5, started when the last small one ended
      CHECK(s.started_at.count("s2") == 1);       // before that, small ones overtook it
    }
  }
}
