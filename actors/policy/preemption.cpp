#include "actors/policy/preemption.hpp"

#include <algorithm>
#include <tuple>

namespace atlas {

bool preemptible(const running_job& v, int64_t priority, double now, double min_runtime_s) {
  if (v.priority >= priority || now - v.since < min_runtime_s)
    return false;
  // Made way once for this class (or a higher one): never again for it.
  return v.preemptions == 0 || priority > v.preempted_by;
}

namespace {

bool fits(const queued_job& w, const node_now& n) {
  return n.free_slots >= 1 && n.free_gpus >= w.num_gpus && n.room.fits(w);
}

} // namespace

std::optional<preemption_plan> plan_preemption(const preemption_input& in) {
  const auto& w = in.waiting;
  for (auto& [id, n] : in.nodes)
    if (fits(w, n))
      return std::nullopt; // room already: placement's turn, not preemption's
  std::map<std::string, std::vector<const running_job*>> candidates;
  for (auto& r : in.running)
    if (in.nodes.count(r.node_id) && preemptible(r, w.priority, in.now, in.min_runtime_s))
      candidates[r.node_id].push_back(&r);
  std::optional<preemption_plan> best;
  std::tuple<size_t, int64_t> best_cost{};
  for (auto& [node_id, list] : candidates) {
    // Lowest priority first, then the youngest.
    std::sort(list.begin(), list.end(), [](auto* a, auto* b) {
      return std::tie(a->priority, b->since, a->job_id) < std::tie(b->priority, a->since, b->job_id);
    });
    auto n = in.nodes.at(node_id);
    preemption_plan plan{node_id, {}};
    int64_t highest = INT64_MIN;
    for (auto* v : list) {
      if (fits(w, n))
        break;
      plan.victims.push_back(v->job_id);
      highest = std::max(highest, v->priority);
      ++n.free_slots;
      n.free_gpus += v->num_gpus;
      n.room.used_cpus = std::max(0.0, n.room.used_cpus - v->cpus);
      n.room.used_memory_bytes -= std::min(n.room.used_memory_bytes, v->memory_bytes);
    }
    if (!fits(w, n))
      continue;
    std::tuple<size_t, int64_t> cost{plan.victims.size(), highest};
    if (!best || cost < best_cost) {
      best = std::move(plan);
      best_cost = cost;
    }
  }
  return best;
}

} // namespace atlas
