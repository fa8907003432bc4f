// The master's dispatch decisions, without an actor system: which queued job
// goes to which free slot (actors/policy/dispatch_plan.hpp).

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "actors/policy/dispatch_plan.hpp"

using namespace atlas;

namespace {

queued_job job(const std::string& id, int64_t gpus = 0, uint64_t seq = 0) {
  queued_job j;
  j.job_id = id;
  j.username = "u";
  j.num_gpus = gpus;
  j.seq = seq;
  return j;
}

/// Node `node` with `busy` busy slots and free slots `first`..`first+free-1`.
void add_node(dispatch_input& in, const std::string& node, size_t busy, int first, int free) {
  in.busy[node] = busy;
  for (int i = first; i < first + free; ++i)
    in.slots.push_back(open_slot{node + "/" + std::to_string(i), node, {}});
}

/// "job@slot" for each decision, in order.
std::vector<std::string> placed(const std::vector<assignment>& plan) {
  std::vector<std::string> out;
  for (auto& a : plan)
    out.push_back(a.job.job_id + "@" + a.slot_key);
  return out;
}

} // namespace

TEST_CASE("spread fills the emptiest node first, pack the fullest", "[dispatch_plan]") {
  for (auto mode : {placement_mode::spread, placement_mode::pack}) {
    dispatch_input in;
    in.placement = mode;
    add_node(in, "a", 1, 1, 2); // a/1, a/2 free; one busy
    add_node(in, "b", 0, 0, 2); // b/0, b/1 free
    queue_policy q;
    for (int i = 0; i < 3; ++i)
      q.push(job("j" + std::to_string(i), 0, static_cast<uint64_t>(i)));
    auto plan = plan_dispatch(q, in);
    if (mode == placement_mode::spread) // b (0 busy), then a and b tie at 1: a by key, then b
      CHECK(placed(plan) == std::vector<std::string>{"j0@b/0", "j1@a/1", "j2@b/1"});
    else // a (1 busy) until full, then b
      CHECK(placed(plan) == std::vector<std::string>{"j0@a/1", "j1@a/2", "j2@b/0"});
    CHECK(q.size() == 0);
  }
}

TEST_CASE("the plan stops when slots or jobs run out", "[dispatch_plan]") {
  dispatch_input in;
  add_node(in, "a", 0, 0, 1);
  queue_policy q;
  q.push(job("x", 0, 1));
  q.push(job("y", 0, 2));
  CHECK(placed(plan_dispatch(q, in)) == std::vector<std::string>{"x@a/0"});
  CHECK(q.contains("y")); // left queued, not counted as running
  CHECK(plan_dispatch(q, dispatch_input{}).empty());
  queue_policy empty;
  CHECK(plan_dispatch(empty, in).empty());
}

TEST_CASE("a GPU job goes where its GPUs are free, and smaller jobs overtake it",
          "[dispatch_plan]") {
  dispatch_input in;
  in.slots = {open_slot{"a/0", "a", {"0"}}, open_slot{"b/0", "b", {"0"}},
              open_slot{"b/1", "b", {"1"}}};
  in.gpus.ledger.add_slot("a", {"0"}, {});
  in.gpus.ledger.add_slot("b", {"0"}, {});
  in.gpus.ledger.add_slot("b", {"1"}, {});
  queue_policy q;
  q.push(job("two", 2, 1));
  q.push(job("one", 1, 2));
  auto plan = plan_dispatch(q, in);
  // "two" only fits on b (2 GPUs, its slot's own first); "one" takes a.
  REQUIRE(placed(plan) == std::vector<std::string>{"one@a/0", "two@b/0"});
  CHECK(plan[1].gpus == std::vector<std::string>{"0", "1"});
  CHECK(plan[0].gpus == std::vector<std::string>{"0"});
}

TEST_CASE("a node held for a starving job takes no other, and takes it once it fits",
          "[dispatch_plan]") {
  dispatch_input in;
  in.slots = {open_slot{"a/1", "a", {"1"}}};
  in.gpus.ledger.add_slot("a", {"0"}, {"0"}); // busy: GPU 0 held by a running job
  in.gpus.ledger.add_slot("a", {"1"}, {});
  in.gpus.held = {{"a", "big"}};
  in.gpus.need = {{"big", 2}};
  queue_policy q;
  q.push(job("big", 2, 1));
  q.push(job("small", 1, 2));
  CHECK(plan_dispatch(q, in).empty()); // held for "big", which does not fit yet
  CHECK(q.size() == 2);

  in.slots.push_back(open_slot{"a/0", "a", {"0"}});
  in.gpus.ledger = gpu_ledger{};
  in.gpus.ledger.add_slot("a", {"0"}, {});
  in.gpus.ledger.add_slot("a", {"1"}, {});
  auto plan = plan_dispatch(q, in);
  REQUIRE(plan.size() == 1); // "big" takes both GPUs; "small" has none left
  CHECK(plan[0].job.job_id == "big");
  CHECK(plan[0].gpus.size() == 2);
  CHECK(q.contains("small"));
}
