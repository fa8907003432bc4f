// Preemption on the master: reads its registry into the plain-C++ decision
// (policy/preemption.hpp) and carries the plan out through the victims'
// lifecycle actors, which stop them on their slots and requeue them.

#include <chrono>

#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/master_plan.hpp"
#include "actors/master_state.hpp"
#include "actors/policy/preemption.hpp"
#include "library/job_codec.hpp"

namespace atlas {

namespace {

preemption_input preemption_input_of(const master_state& st, double now) {
  preemption_input in;
  in.now = now;
  in.min_runtime_s = st.cfg->min_runtime_s;
  auto ledger = gpu_round_of(st, now).ledger;
  for (auto& [key, s] : st.slots) {
    auto& id = s.info.node_id;
    if (auto n = st.nodes.find(id); (n != st.nodes.end() && n->second.drained) || st.draining.count(key))
      continue;
    auto [entry, fresh] = in.nodes.try_emplace(id);
    auto& node = entry->second;
    if (fresh) {
      node.free_gpus = ledger.free(id);
      if (auto use = st.node_use.find(id); use != st.node_use.end())
        node.room = use->second;
      node.room.cpus = s.info.node_cpus;
      node.room.memory_bytes = s.info.node_memory_bytes;
    }
    node.free_slots += st.free_slots.count(key);
  }
  for (auto& [id, job] : st.jobs) {
    if (!job.running || job.node.empty() || st.preempting.count(id))
      continue;
    in.running.push_back(running_job{id, job.node, job.entry.priority, job.dispatched,
                                     job.entry.num_gpus, job.entry.cpus, job.entry.memory_bytes,
                                     job.preemptions, job.preempted_by});
  }
  return in;
}

} // namespace

void maybe_preempt(master_ptr self) {
  auto& st = self->state;
  auto now = now_seconds();
  if (!st.preempting.empty())
    return; // one preemption at a time: the freed room goes to its job first
  if (!st.room_for.empty() && st.queued.count(st.room_for)
      && now - st.room_since < st.cfg->stop_grace_s + 5.0)
    return; // its room is being freed: the victims' slots are not back yet
  auto waiting = st.policy.top_priority_jobs(8);
  if (waiting.empty())
    return;
  auto in = preemption_input_of(st, now);
  for (auto& w : waiting) {
    in.waiting = w;
    auto plan = plan_preemption(in);
    if (!plan)
      continue;
    for (auto& victim : plan->victims) {
      st.preempting[victim] = w.job_id;
      self->send(st.jobs.at(victim).handle, preempt_atom::value, w.priority);
    }
    st.room_for = w.job_id;
    st.room_since = now;
    spdlog::info("preempting {} job(s) on node={} for job_id={} priority={}", plan->victims.size(),
                 plan->node_id, w.job_id, w.priority);
    return;
  }
  // Nothing may make way now; a lower-priority job may pass min_runtime_s
  // later: look again then.
  bool lower_runs = false;
  for (auto& r : in.running)
    lower_runs = lower_runs || r.priority < waiting.front().priority;
  if (lower_runs && !st.preempt_check_due) {
    st.preempt_check_due = true;
    self->delayed_send(self, std::chrono::seconds(1), preempt_atom::value);
  }
}

void preemption_over(master_state& st, const std::string& id) {
  st.preempting.erase(id);
}

} // namespace atlas
