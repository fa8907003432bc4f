#include "actors/master_plan.hpp"

#include "actors/master_state.hpp"

namespace atlas {

namespace {

gpu_ledger ledger_of(const master_state& st) {
  gpu_ledger ledger;
  static const std::vector<std::string> none;
  for (auto& [key, s] : st.slots)
    ledger.add_slot(s.info.node_id, s.info.gpus,
                    s.info.current_job.empty() ? none : s.info.job_gpus);
  return ledger;
}

} // namespace

gpu_round gpu_round_of(const master_state& st, double now) {
  gpu_round round;
  if (st.gpu_slots == 0)
    return round; // no GPUs in the cluster: an empty ledger, nothing to hold
  round.ledger = ledger_of(st);
  if (round.ledger.largest() == 0)
    return round; // no GPUs in the cluster: nothing to hold
  auto starving_jobs = st.policy.gpu_jobs_queued_before(now - st.cfg->gpu_reserve_after_s);
  if (starving_jobs.empty())
    return round;
  std::vector<starving_job> starving;
  for (auto& q : starving_jobs) {
    starving.push_back({q.job_id, q.num_gpus});
    round.need[q.job_id] = q.num_gpus;
  }
  round.held = plan_reservations(starving, round.ledger, [&](const std::string& node) {
    auto n = st.nodes.find(node);
    return n == st.nodes.end() || !n->second.drained;
  });
  return round;
}

dispatch_input dispatch_input_of(const master_state& st, double now) {
  dispatch_input in;
  in.placement = placement_mode_of(st.cfg->placement);
  // Costs the free slots and their nodes' slots, not the whole registry:
  // it runs once per dispatch round.
  for (auto& key : st.free_slots) {
    auto& info = st.slots.at(key).info;
    if (auto n = st.nodes.find(info.node_id); n != st.nodes.end() && n->second.drained)
      continue;
    if (auto [b, fresh] = in.busy.try_emplace(info.node_id, 0); fresh) {
      b->second = st.busy_on(info.node_id);
      auto& room = in.rooms[info.node_id];
      if (auto use = st.node_use.find(info.node_id); use != st.node_use.end())
        room = use->second;
      room.cpus = info.node_cpus;
      room.memory_bytes = info.node_memory_bytes;
    }
    in.slots.push_back(open_slot{key, info.node_id, info.gpus});
  }
  if (!in.slots.empty())
    in.gpus = gpu_round_of(st, now);
  return in;
}

node_room largest_room(const master_state& st) {
  node_room largest;
  for (auto& [key, s] : st.slots) {
    largest.cpus = std::max(largest.cpus, s.info.node_cpus);
    largest.memory_bytes = std::max(largest.memory_bytes, s.info.node_memory_bytes);
  }
  return largest;
}

std::string gpu_misfit_of(const master_state& st, int64_t need) {
  auto largest = st.gpu_slots == 0 ? 0 : ledger_of(st).largest();
  return gpu_misfit(need, largest, !st.slots.empty());
}

} // namespace atlas
