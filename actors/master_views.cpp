#include <algorithm>

#include <caf/typed_event_based_actor.hpp>

#include "actors/master_dependencies.hpp"
#include "actors/master_plan.hpp"
#include "actors/master_state.hpp"
#include "library/job_codec.hpp"

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

job_page queue_page(const master_state& st, uint64_t from, uint64_t limit) {
  auto held = held_in_order(st); // listed after the queue
  job_page page;
  page.total = st.policy.size() + held.size();
  if (from >= page.total)
    return page;
  auto end = from + std::min(limit, page.total - from);
  for (auto& q : st.policy.ordered(from, end - from))
    if (auto r = st.queued.find(q.job_id); r != st.queued.end())
      page.jobs.push_back(r->second);
  auto queued = st.policy.size();
  for (auto pos = std::max(from, queued); pos < end; ++pos)
    page.jobs.push_back(*held[pos - queued]);
  if (end < page.total)
    page.next = std::to_string(end);
  return page;
}

std::vector<queue_entry> queue_with_reasons(master_ptr self) {
  auto& st = self->state;
  // GPUs count per node (a job takes one slot and GPUs of that slot's node).
  auto round = gpu_round_of(st, now_seconds());
  std::map<std::string, std::string> held_for; // job id -> node held for it
  for (auto& [node, job] : round.held)
    held_for[job] = node;
  int64_t most_gpus = -1;       // on any node with a slot
  int64_t most_gpus_open = -1;  // on a node that is not drained
  int64_t most_gpus_free = -1;  // free on such a node with a free slot, not held for another job
  for (auto& [key, s] : st.slots) {
    auto& node = s.info.node_id;
    most_gpus = std::max(most_gpus, round.ledger.total(node));
    auto n = st.nodes.find(node);
    if (n != st.nodes.end() && n->second.drained)
      continue;
    most_gpus_open = std::max(most_gpus_open, round.ledger.total(node));
    if (st.free_slots.count(key) && !st.draining.count(key) && !round.held.count(node))
      most_gpus_free = std::max(most_gpus_free, round.ledger.free(node));
  }
  // CPUs and memory: the rooms of the nodes with a free slot.
  auto open_rooms = dispatch_input_of(st, now_seconds()).rooms;
  auto room_free = [&](const queued_job& q) {
    if (q.cpus <= 0 && q.memory_bytes == 0)
      return true;
    for (auto& [node, room] : open_rooms)
      if (room.fits(q))
        return true;
    return false;
  };
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
    auto over_quota = st.policy.quotas().blocks(q);
    auto victims = std::count_if(st.preempting.begin(), st.preempting.end(),
                                 [&](auto& p) { return p.second == q.job_id; });
    if (most_gpus < 0)
      e.reason = "no slots in the cluster";
    else if (victims > 0
             || (q.job_id == st.room_for && now_seconds() - st.room_since < st.cfg->stop_grace_s + 5.0))
      e.reason = "making room: preempting lower-priority job(s)";
    else if (auto capped = st.policy.quotas().sweep_blocks(q); !capped.empty())
      e.reason = capped; // "sweep cap (4 running)": the sweep's own limit, not a quota
    else if (!over_quota.empty())
      e.reason = "over quota: " + over_quota;
    else if (auto h = held_for.find(q.job_id); h != held_for.end())
      e.reason = "waited long: GPUs of node " + h->second + " are held for it" + gpus;
    else if (need > most_gpus)
      e.reason = "needs " + std::to_string(need) + " GPUs; no node has that many";
    else if (need > most_gpus_open)
      e.reason = "nodes drained" + gpus;
    else if (need > most_gpus_free)
      e.reason = (need > 0 ? "not enough free GPUs on one node" : "no free slot") + gpus;
    else if (!room_free(q))
      e.reason = "no free node has room: asks " + amount_text(q.cpus) + " CPUs, "
                 + amount_text(static_cast<double>(q.memory_bytes) / (1ull << 30)) + " GiB";
    else
      e.reason = "fair-share turn: dispatched next";
    out.push_back(std::move(e));
  }
  for (auto* rec : held_in_order(st)) { // out of the policy until released
    queue_entry e;
    e.job = *rec;
    e.position = pos++;
    e.reason = held_reason(st, rec->job_id);
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
