#include <caf/typed_event_based_actor.hpp>

#include "actors/master_state.hpp"
#include "runtime/job_codec.hpp"

namespace atlas {

std::vector<node_view> node_views(master_ptr self) {
  auto& st = self->state;
  std::vector<node_view> out;
  for (auto& [id, n] : st.nodes) {
    node_view v;
    v.info = n.info;
    v.role = id == st.cfg->node_id ? "master" : "worker";
    v.drained = n.drained;
    v.last_seen = n.last_seen;
    for (auto& [key, s] : st.slots)
      if (s.info.node_id == id)
        v.slots.push_back(s.info);
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<queue_entry> queue_with_reasons(master_ptr self) {
  auto& st = self->state;
  int64_t most_gpus = -1;       // on any slot
  int64_t most_gpus_open = -1;  // on a slot of a node that is not drained
  int64_t most_gpus_free = -1;  // on a free slot of such a node
  for (auto& [key, s] : st.slots) {
    auto gpus = static_cast<int64_t>(s.info.gpus.size());
    most_gpus = std::max(most_gpus, gpus);
    auto n = st.nodes.find(s.info.node_id);
    if (n != st.nodes.end() && n->second.drained)
      continue;
    most_gpus_open = std::max(most_gpus_open, gpus);
    if (st.free_slots.count(key) && !st.draining.count(key))
      most_gpus_free = std::max(most_gpus_free, gpus);
  }
  std::vector<queue_entry> out;
  uint64_t pos = 0;
  for (auto& q : st.policy.ordered()) {
    auto rec = st.queued.find(q.job_id);
    if (rec == st.queued.end())
      continue;
    queue_entry e;
    e.job = rec->second;
    e.position = pos++;
    auto need = q.num_gpus;
    auto gpus = need > 0 ? " (needs " + std::to_string(need) + " GPUs)" : std::string{};
    if (most_gpus < 0)
      e.reason = "no slots in the cluster";
    else if (need > most_gpus)
      e.reason = "needs " + std::to_string(need) + " GPUs; no slot has that many";
    else if (need > most_gpus_open)
      e.reason = "nodes drained" + gpus;
    else if (need > most_gpus_free)
      e.reason = "no free slot" + gpus;
    else
      e.reason = "fair-share turn: dispatched next";
    out.push_back(std::move(e));
  }
  return out;
}

caf::result<std::vector<actor_stats>> all_actor_stats(master_ptr self) {
  auto& st = self->state;
  auto g = std::make_shared<stats_gathering>();
  g->rp = self->make_response_promise<std::vector<actor_stats>>();
  g->node = st.cfg->node_id;
  g->stats.push_back(self->stats(g->node, std::to_string(st.policy.size()) + " queued, "
                                            + std::to_string(st.jobs.size()) + " active"));
  g->waiting = 1 + st.jobs.size() + st.nodes.size(); // +1: the lookup
  auto timeout = std::chrono::seconds(3);
  auto one = [=](actor_stats& s) {
    g->add(std::move(s));
    g->done_one();
  };
  auto skip = [=](caf::error&) { g->done_one(); };
  self->request(st.lookup, timeout, stats_atom::value).then(one, skip);
  for (auto& [id, job] : st.jobs)
    self->request(job.handle, timeout, stats_atom::value).then(one, skip);
  for (auto& [id, n] : st.nodes)
    self->request(caf::actor_cast<node_actor>(n.node), timeout, actors_atom::value)
      .then(
        [=](std::vector<actor_stats>& xs) {
          for (auto& s : xs)
            g->add(std::move(s));
          g->done_one();
        },
        skip);
  return g->rp;
}

} // namespace atlas
