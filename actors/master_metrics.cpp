// What the master tells /metrics and the event stream about the cluster:
// its gauges (queue, slots, GPUs, heartbeats) and its node events.

#include <map>

#include <caf/typed_event_based_actor.hpp>

#include "actors/master_plan.hpp"
#include "actors/master_state.hpp"
#include "library/events.hpp"
#include "library/metrics.hpp"

namespace atlas {

std::string cluster_metrics(master_ptr self, std::vector<uint64_t> jobs_by_state) {
  auto& st = self->state;
  auto now = now_seconds();
  metrics::cluster_snapshot s;
  s.jobs_by_state = std::move(jobs_by_state);
  std::map<int64_t, metrics::cluster_snapshot::queue_row> by_priority;
  for (auto& [id, rec] : st.queued) {
    auto& row = by_priority[rec.priority];
    row.priority = rec.priority;
    ++row.depth;
    row.oldest_age = std::max(row.oldest_age, now - rec.queued_time);
  }
  for (auto& [p, row] : by_priority)
    s.queue.push_back(row);
  auto round = gpu_round_of(st, now);
  std::map<std::string, metrics::cluster_snapshot::node_row> nodes;
  for (auto& [id, n] : st.nodes) {
    auto& row = nodes[id];
    row.node = id;
    row.heartbeat_age = n.last_seen > 0 ? std::max(0.0, now - n.last_seen) : 0;
  }
  for (auto& [key, slot] : st.slots) {
    auto& row = nodes[slot.info.node_id];
    row.node = slot.info.node_id;
    if (!slot.info.current_job.empty())
      ++row.busy;
    else if (st.draining.count(key))
      ++row.draining;
    else
      ++row.free;
  }
  for (auto& [id, row] : nodes) {
    row.gpus_free = static_cast<uint64_t>(std::max<int64_t>(0, round.ledger.free(id)));
    row.gpus_busy = static_cast<uint64_t>(
      std::max<int64_t>(0, round.ledger.total(id) - round.ledger.free(id)));
    s.nodes.push_back(row);
  }
  return metrics::cluster_text(s);
}

void publish_node_event(master_ptr self, const std::string& node, const std::string& what,
                        const std::string& detail) {
  self->send(self->state.lookup, publish_atom::value,
             events::node_event(node, what, detail, now_seconds()));
}

} // namespace atlas
