// The master actor's behaviour: who may send what, and which operation each
// message starts. The queue and its jobs are master_queue.cpp; dispatch
// decisions policy/dispatch_plan.hpp; views for atlas-ctl master_views.cpp.

#include "actors/master.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/master_dependencies.hpp"
#include "actors/master_state.hpp"
#include "actors/peer_check.hpp"
#include "library/job_codec.hpp"
#include "library/job_index.hpp"
#include "messages/errors.hpp"

namespace atlas {

namespace {

master_actor::behavior_type master_impl(master_ptr self,
                                        std::shared_ptr<const node_config> cfg,
                                        lookup_actor lookup) {
  self->state.cfg = std::move(cfg);
  self->state.policy.set_quotas(self->state.cfg->user_quotas, self->state.cfg->group_quotas);
  self->state.lookup = std::move(lookup);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto n = st.nodes.begin(); n != st.nodes.end(); ++n)
      if (n->second.gateway.address() == dm.source) {
        spdlog::warn("node left node={}", n->first);
        publish_node_event(self, n->first, "left", "its connection closed");
        st.nodes.erase(n);
        return;
      }
    for (auto i = st.slots.begin(); i != st.slots.end(); ++i) {
      if (i->second.handle.address() != dm.source)
        continue;
      auto info = i->second.info;
      spdlog::warn("slot gone slot={} node={}", info.key, info.node_id);
      st.free_slots.erase(i->first);
      st.draining.erase(i->first);
      st.retiring.erase(i->first);
      st.erase_slot(i);
      if (!info.current_job.empty())
        if (auto j = st.jobs.find(info.current_job); j != st.jobs.end())
          self->send(j->second.handle, lost_atom::value,
                     "slot " + info.key + " on node " + info.node_id + " disappeared");
      return;
    }
  });
  recover(self);
  // Who may send what (DESIGN.md §8): this node; worker nodes, for their own
  // slots; operator tools (atlas-ctl), to inspect and to drain or stop.
  auto node_owns = [](const message_sender& who, const std::string& node_id) {
    return who.local || (!who.peer.name.empty() && who.peer.name == node_id
                         && (who.is("worker") || who.is("master")));
  };
  auto owns_slot = [=](const message_sender& who, const std::string& key) {
    auto slash = key.rfind('/');
    return slash != std::string::npos && node_owns(who, key.substr(0, slash));
  };
  auto operator_or_local = [=](std::string_view what) -> caf::error {
    auto who = sender_of(self);
    return who.local_or("operator") ? caf::error{} : refuse(self, who, what);
  };
  return {
    [=](submit_atom, job_record& rec) -> caf::result<std::string> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "submit");
      if (rec.local_run)
        return start_local_run(self, std::move(rec));
      return submit_job(self, std::move(rec));
    },
    [=](local_run_atom, job_report& rep) -> caf::result<bool> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "ending a local run");
      return end_local_run(self, std::move(rep));
    },
    [=](register_atom, slot_info& info, worker_slot_actor& slot) {
      auto who = sender_of(self);
      bool well_named = info.key == info.node_id + "/" + std::to_string(info.index);
      if (!node_owns(who, info.node_id) || !well_named || !on_sender_node(self, slot.address())) {
        refuse(self, who, "registering slot '" + info.key + "'");
        return;
      }
      register_slot(self, std::move(info), std::move(slot));
    },
    [=](join_atom, const node_info& node, caf::actor& gateway, caf::actor& node_handle) {
      if (!local_only(self, "join")) // nodes join through the door
        return;
      auto& st = self->state;
      spdlog::info("node joined node={} address={} slots={}", node.node_id, node.host_address,
                   node.num_slots);
      self->monitor(gateway);
      auto& entry = st.nodes[node.node_id];
      bool drained = entry.drained; // a drain outlives a reconnection
      entry = node_entry{node, gateway, node_handle, now_seconds(), drained};
      publish_node_event(self, node.node_id, "joined",
                         node.host_address + ", " + std::to_string(node.num_slots) + " slot(s)");
    },
    [=](ping_atom, const std::string& node_id) {
      if (!node_owns(sender_of(self), node_id))
        return;
      if (auto n = self->state.nodes.find(node_id); n != self->state.nodes.end())
        n->second.last_seen = now_seconds();
    },
    [=](nodes_atom) -> caf::result<std::vector<node_view>> {
      if (auto err = operator_or_local("listing nodes"))
        return err;
      return node_views(self);
    },
    [=](queue_atom) -> caf::result<std::vector<queue_entry>> {
      if (auto err = operator_or_local("listing the queue"))
        return err;
      return queue_with_reasons(self);
    },
    [=](jobs_atom) -> caf::result<std::vector<job_record>> {
      if (auto err = operator_or_local("listing jobs"))
        return err;
      // Every unfinished job and the newest finished ones, never a whole
      // history: what `atlas-ctl jobs` shows (and filters).
      auto rp = self->make_response_promise<std::vector<job_record>>();
      auto lookup = self->state.lookup;
      self->request(lookup, caf::infinite, recover_atom::value)
        .then(
          [=](std::vector<job_record>& unfinished) mutable {
            self->request(lookup, caf::infinite, list_atom::value, std::string{}, job_index::max_page)
              .then(
                [=](job_page& newest) mutable {
                  std::set<std::string> seen;
                  std::vector<job_record> out;
                  for (auto* part : {&newest.jobs, &unfinished})
                    for (auto& r : *part)
                      if (seen.insert(r.job_id).second)
                        out.push_back(std::move(r));
                  std::sort(out.begin(), out.end(),
                            [](const job_record& a, const job_record& b) { return a.seq < b.seq; });
                  rp.deliver(std::move(out));
                },
                [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](jobs_atom, const std::string& id) -> caf::result<job_record> {
      if (auto err = operator_or_local("reading a job"))
        return err;
      auto& st = self->state;
      if (auto q = st.queued.find(id); q != st.queued.end())
        return q->second;
      if (auto h = st.held.find(id); h != st.held.end())
        return h->second;
      if (auto j = st.jobs.find(id); j != st.jobs.end())
        return self->delegate(j->second.handle, get_atom::value);
      return self->delegate(st.lookup, get_atom::value, id);
    },
    [=](actors_atom) -> caf::result<std::vector<actor_stats>> {
      if (auto err = operator_or_local("listing actors"))
        return err;
      return all_actor_stats(self);
    },
    [=](drain_atom, const std::string& node_id, bool on) -> caf::result<bool> {
      if (auto err = operator_or_local("draining a node"))
        return err;
      auto& st = self->state;
      auto n = st.nodes.find(node_id);
      if (n == st.nodes.end())
        return make_error(ec::not_found, "no node '" + node_id + "' in the cluster");
      n->second.drained = on;
      spdlog::info("node {} node={}", on ? "drained" : "undrained", node_id);
      publish_node_event(self, node_id, on ? "drained" : "undrained", "by an operator");
      if (!on)
        try_dispatch(self);
      return true;
    },
    [=](stats_atom) -> caf::result<actor_stats> {
      if (auto err = operator_or_local("stats"))
        return err;
      auto& st = self->state;
      return self->stats(st.cfg->node_id,
                         std::to_string(st.policy.size()) + " queued, " + std::to_string(st.jobs.size())
                           + " active, " + std::to_string(st.slots.size()) + " slots ("
                           + std::to_string(st.free_slots.size()) + " free), "
                           + std::to_string(st.nodes.size()) + " nodes");
    },
    [=](get_atom, node_atom, const std::string& node_id) -> caf::result<caf::actor> {
      auto& st = self->state;
      auto who = sender_of(self);
      if (!who.local && !who.is("worker"))
        return refuse(self, who, "asking for a node's gateway");
      // Other nodes' gateways are never handed out: a worker sends requests
      // about any job through the master's gateway, which forwards them.
      auto n = st.nodes.find(who.local ? node_id : st.cfg->node_id);
      if (n == st.nodes.end())
        return make_error(ec::unavailable, "node '" + node_id + "' is not connected");
      return n->second.gateway;
    },
    [=](fetch_atom, const std::string& id, uint64_t offset) -> caf::result<bundle_chunk> {
      auto& st = self->state;
      // A node fetches only the bundle of a job placed on one of its slots.
      auto who = sender_of(self);
      bool placed_there = false;
      for (auto& [key, s] : st.slots)
        placed_there = placed_there || (s.info.current_job == id && owns_slot(who, key));
      if (!who.local && !placed_there)
        return refuse(self, who, "fetching the bundle of job '" + id + "'");
      auto n = st.nodes.find(st.cfg->node_id);
      if (n == st.nodes.end())
        return make_error(ec::unavailable, "the master's gateway is not up");
      // Asked (not delegated): the gateway must see the master, which made
      // this request, not the node that asked the master for it.
      auto rp = self->make_response_promise<bundle_chunk>();
      self->request(caf::actor_cast<http_gateway_actor>(n->second.gateway), std::chrono::seconds(60),
                    fetch_atom::value, id, offset)
        .then([rp](bundle_chunk& c) mutable { rp.deliver(std::move(c)); },
              [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](metrics_atom) -> caf::result<std::string> {
      if (auto err = operator_or_local("metrics"))
        return err;
      auto rp = self->make_response_promise<std::string>();
      self->request(self->state.lookup, std::chrono::seconds(5), metrics_atom::value)
        .then([=](std::vector<uint64_t>& counts) mutable { rp.deliver(cluster_metrics(self, counts)); },
              [=](caf::error&) mutable { rp.deliver(cluster_metrics(self, {})); });
      return rp;
    },
    [=](events_atom, const std::string& after, uint64_t max) -> caf::result<std::string> {
      if (auto err = operator_or_local("reading events"))
        return err;
      return self->delegate(self->state.lookup, events_atom::value, after, max);
    },
    [=](usage_atom, double since, double until) -> caf::result<std::string> {
      if (auto err = operator_or_local("reading usage"))
        return err;
      return self->delegate(self->state.lookup, usage_atom::value, since, until);
    },
    [=](preempt_atom) {
      if (!local_only(self, "preempt"))
        return;
      self->state.preempt_check_due = false;
      try_dispatch(self);
    },
    [=](recover_atom) {
      if (!local_only(self, "recover"))
        return;
      auto& st = self->state;
      for (auto& id : st.awaiting)
        if (auto j = st.jobs.find(id); j != st.jobs.end())
          self->send(j->second.handle, lost_atom::value,
                     std::string{"its node did not rejoin after the master restarted"});
      st.awaiting.clear();
    },
    [=](idle_atom, const std::string& key, const std::string& job_id) {
      if (auto who = sender_of(self); !owns_slot(who, key)) {
        refuse(self, who, "freeing slot '" + key + "'");
        return;
      }
      if (free_slot(self->state, key, job_id)) {
        retire_if_due(self, key);
        try_dispatch(self);
      }
    },
    [=](drain_atom, const std::string& key) {
      if (auto who = sender_of(self); !owns_slot(who, key)) {
        refuse(self, who, "draining slot '" + key + "'");
        return;
      }
      auto& st = self->state;
      st.free_slots.erase(key);
      st.draining.insert(key);
    },
    [=](done_atom, const std::string& id, const std::string& slot_key) {
      if (!local_only(self, "done"))
        return;
      release_job(self, id);
      dependency_done(self, id);
      if (!slot_key.empty() && free_slot(self->state, slot_key, id)) {
        retire_if_due(self, slot_key);
        try_dispatch(self);
      }
    },
    [=](requeue_atom, job_record& rec) {
      if (!local_only(self, "requeue"))
        return;
      requeue_job(self, std::move(rec));
    },
    [=](stop_atom, const std::string& id) -> caf::result<bool> {
      if (auto err = operator_or_local("stopping a job"))
        return err;
      return stop_job(self, id);
    },
    [=](list_atom) -> caf::result<std::vector<job_record>> {
      if (auto err = operator_or_local("listing the queue"))
        return err;
      auto& st = self->state;
      std::vector<job_record> out;
      for (auto& q : st.policy.ordered())
        if (auto r = st.queued.find(q.job_id); r != st.queued.end())
          out.push_back(r->second);
      for (auto* rec : held_in_order(st)) // waiting for dependencies
        out.push_back(*rec);
      return out;
    },
    [=](list_atom, uint64_t from, uint64_t limit) -> caf::result<job_page> {
      if (auto err = operator_or_local("listing the queue"))
        return err;
      return queue_page(self->state, from, limit);
    },
    [=](dequeue_atom, uint64_t pos) -> caf::result<job_record> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "removing a queued job");
      return dequeue_at(self, pos);
    },
    [=](move_atom, uint64_t from, uint64_t to) -> caf::result<bool> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "moving a queued job");
      return move_queued(self, from, to);
    },
    [=](clear_atom) -> caf::result<uint64_t> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "clearing the queue");
      return clear_queue(self);
    },
    [=](get_atom, slots_atom) -> caf::result<std::vector<slot_info>> {
      if (auto err = operator_or_local("listing slots"))
        return err;
      std::vector<slot_info> out;
      for (auto& [key, s] : self->state.slots)
        out.push_back(s.info);
      return out;
    },
    [=](slots_atom, put_atom, const std::string& node_id) -> caf::result<std::string> {
      if (auto err = operator_or_local("adding a slot"))
        return err;
      return add_slot(self, node_id);
    },
    [=](slots_atom, delete_atom, const std::string& key) -> caf::result<bool> {
      if (auto err = operator_or_local("removing a slot"))
        return err;
      return remove_slot(self, key);
    },
    [=](get_atom, const std::string& id) -> caf::result<job_record> {
      if (auto err = operator_or_local("reading a job"))
        return err;
      auto& st = self->state;
      if (auto q = st.queued.find(id); q != st.queued.end())
        return q->second;
      if (auto h = st.held.find(id); h != st.held.end())
        return h->second;
      auto j = st.jobs.find(id);
      if (j == st.jobs.end())
        return make_error(ec::not_found, "job '" + id + "' is not active");
      return self->delegate(j->second.handle, get_atom::value);
    },
  };
}

} // namespace

master_actor spawn_master(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                          lookup_actor lookup) {
  return sys.spawn(master_impl, std::move(cfg), std::move(lookup));
}

} // namespace atlas
