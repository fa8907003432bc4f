#include "actors/policy/dispatch_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace atlas {

placement_mode placement_mode_of(const std::string& name) {
  return name == "pack" ? placement_mode::pack : placement_mode::spread;
}

std::vector<size_t> placement_order(const dispatch_input& in) {
  std::vector<std::pair<size_t, size_t>> ranked; // (rank, index); slots are by key
  ranked.reserve(in.slots.size());
  for (size_t i = 0; i < in.slots.size(); ++i) {
    auto b = in.busy.find(in.slots[i].node_id);
    size_t busy = b == in.busy.end() ? 0 : b->second;
    ranked.emplace_back(in.placement == placement_mode::pack ? ~busy : busy, i);
  }
  std::sort(ranked.begin(), ranked.end());
  std::vector<size_t> out;
  out.reserve(ranked.size());
  for (auto& r : ranked)
    out.push_back(r.second);
  return out;
}

namespace {

/// Records the decision and updates the round: the slot is taken, its
/// node's GPUs held, its node busier and no longer held for anyone.
void assign(dispatch_input& in, size_t slot, queued_job job, std::vector<assignment>& out) {
  auto& s = in.slots[slot];
  auto gpus = in.gpus.ledger.take(s.node_id, job.num_gpus, s.gpus);
  in.rooms[s.node_id].take(job);
  in.gpus.held.erase(s.node_id); // if it was held, it was held for this job
  ++in.busy[s.node_id];
  out.push_back(assignment{std::move(job), s.key, std::move(gpus)});
  in.slots.erase(in.slots.begin() + static_cast<std::ptrdiff_t>(slot));
}

/// The starving GPU jobs whose held node now has their GPUs and a free slot.
void place_held(queue_policy& policy, dispatch_input& in, std::vector<assignment>& out) {
  for (auto [node, id] : std::map<std::string, std::string>(in.gpus.held)) {
    auto need = in.gpus.need.find(id);
    if (!policy.contains(id) || need == in.gpus.need.end()
        || in.gpus.ledger.free(node) < need->second)
      continue;
    auto& room = in.rooms[node];
    for (auto i : placement_order(in)) {
      if (in.slots[i].node_id != node)
        continue;
      if (auto job = policy.take(id, [&](const queued_job& j) { return room.fits(j); }))
        assign(in, i, std::move(*job), out);
      break;
    }
  }
}

} // namespace

std::string amount_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

std::string room_misfit(const queued_job& j, const node_room& largest) {
  auto gib = [](uint64_t b) {
    return amount_text(static_cast<double>(b) / static_cast<double>(1ull << 30)) + " GiB";
  };
  if (largest.cpus > 0 && j.cpus > largest.cpus + 1e-9)
    return "asks " + amount_text(j.cpus) + " CPUs; the largest node has " + amount_text(largest.cpus);
  if (largest.memory_bytes > 0 && j.memory_bytes > largest.memory_bytes)
    return "asks " + gib(j.memory_bytes) + " of memory; the largest node has "
           + gib(largest.memory_bytes);
  return {};
}

std::vector<assignment> plan_dispatch(queue_policy& policy, dispatch_input in) {
  std::vector<assignment> out;
  if (in.slots.empty() || policy.size() == 0)
    return out;
  if (!in.gpus.held.empty())
    place_held(policy, in, out);
  while (!in.slots.empty() && policy.size() > 0) {
    bool placed = false;
    for (auto i : placement_order(in)) {
      auto& node = in.slots[i].node_id;
      if (in.gpus.held_for_other(node))
        continue;
      auto free_gpus = in.gpus.ledger.free(node);
      auto& room = in.rooms[node];
      auto job = policy.pop_if([&](const queued_job& j) {
        return j.num_gpus <= free_gpus && room.fits(j);
      });
      if (!job)
        continue;
      assign(in, i, std::move(*job), out);
      placed = true;
      break;
    }
    if (!placed)
      break; // nothing queued fits any open slot
  }
  return out;
}

} // namespace atlas
