#include "actors/master.hpp"

#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/job.hpp"
#include "actors/master_gpus.hpp"
#include "actors/master_state.hpp"
#include "actors/peer_check.hpp"
#include "actors/policy/queued_record.hpp"
#include "messages/errors.hpp"
#include "library/job_codec.hpp"

namespace atlas {

namespace {

void enqueue_local(master_ptr self, job_record rec) {
  auto& st = self->state;
  st.policy.push(queued_job{rec.job_id, rec.username, rec.priority, rec.num_gpus, rec.pin,
                            rec.seq, rec.queued_time});
  st.queued[rec.job_id] = std::move(rec);
}

/// Gives `job` (just taken from the policy) to the free slot `key`, with the
/// GPUs of the slot's node it asks for. Its lifecycle actor starts here: a
/// queued job is only its record in `queued` (memory per queued job).
/// False when the job is gone meanwhile.
bool hand_out(master_ptr self, const std::string& key, const queued_job& job, gpu_round& gpus) {
  auto& st = self->state;
  auto& slot = st.slots.at(key);
  auto rec = st.queued.extract(job.job_id);
  if (rec.empty()) {
    st.policy.running_changed(job.username, -1);
    return false;
  }
  auto handle = spawn_job(self->system(), std::move(rec.mapped()), st.lookup, self,
                          st.cfg->max_retries);
  auto active = st.jobs.insert_or_assign(job.job_id, active_job{handle, job.username, true}).first;
  slot.info.current_job = job.job_id;
  slot.info.job_gpus = gpus.ledger.take(slot.info.node_id, job.num_gpus, slot.info.gpus);
  gpus.held.erase(slot.info.node_id); // if it was held, it was held for this job
  st.free_slots.erase(key);
  spdlog::debug("dispatch job_id={} slot={}", job.job_id, key);
  self->send(active->second.handle, dispatch_atom::value, slot.handle, slot.info);
  return true;
}

/// Starts the GPU jobs whose held node now has their GPUs and a free slot.
void place_held(master_ptr self, gpu_round& gpus) {
  auto& st = self->state;
  for (auto [node, id] : std::map<std::string, std::string>(gpus.held)) {
    auto rec = st.queued.find(id);
    if (rec == st.queued.end() || gpus.ledger.free(node) < rec->second.num_gpus)
      continue;
    for (auto& key : st.placement_order()) {
      if (st.slots.at(key).info.node_id != node)
        continue;
      if (auto job = st.policy.take(id))
        hand_out(self, key, *job, gpus);
      break;
    }
  }
}

/// Hands queued jobs to free slots until one of the two runs out. A job
/// fits a slot when the slot's node has the GPUs it asks for free; nodes
/// held for a starving GPU job take no other job (master_gpus.hpp).
void try_dispatch(master_ptr self) {
  auto& st = self->state;
  if (st.free_slots.empty() || st.policy.size() == 0)
    return;
  auto gpus = gpu_round_of(st, now_seconds());
  if (!gpus.held.empty())
    place_held(self, gpus);
  while (!st.free_slots.empty() && st.policy.size() > 0) {
    bool placed = false;
    for (auto& key : st.placement_order()) {
      auto& node = st.slots.at(key).info.node_id;
      if (gpus.held_for_other(node))
        continue;
      auto job = st.policy.pop_for(gpus.ledger.free(node));
      if (!job)
        continue;
      hand_out(self, key, *job, gpus);
      placed = true;
      break;
    }
    if (!placed)
      return; // nothing queued fits any free slot
  }
}

/// Writes a record no actor holds; retries while Redis is away (the lookup
/// backs off) so that the transition is never dropped, then calls `then`.
template <class F>
void persist_record(master_ptr self, job_record rec, F then) {
  self->request(self->state.lookup, caf::infinite, put_atom::value, rec)
    .then([=](bool) mutable { then(); },
          [=](caf::error& err) {
            spdlog::error("persisting job failed, retrying job_id={}: {}", rec.job_id,
                          error_message(err));
            persist_record(self, rec, then);
          });
}

/// Cancels a queued job: out of the queue, its record ends `cancelled` (it
/// has no lifecycle actor yet). `then` runs once that is persisted. False
/// when the job is not queued.
template <class F>
bool cancel_queued(master_ptr self, const std::string& id, F then) {
  auto& st = self->state;
  // The record leaves the queue only once it is cancelled: a refusal keeps it.
  auto q = st.queued.find(id);
  if (q == st.queued.end() || !cancel_queued_record(q->second, now_seconds()))
    return false;
  auto rec = std::move(q->second);
  st.queued.erase(q);
  st.policy.remove(id);
  persist_record(self, std::move(rec), [=]() mutable {
    spdlog::info("job finished job_id={} state=cancelled {}", id, stopped_while_queued);
    then();
  });
  return true;
}

/// A slot's job ended: the slot takes work again, unless it is draining or
/// the notice is stale (the slot holds another job here by now).
bool free_slot(master_state& st, const std::string& key, const std::string& job_id) {
  auto s = st.slots.find(key);
  if (s == st.slots.end())
    return false;
  auto& current = s->second.info.current_job;
  if (!current.empty() && current != job_id)
    return false;
  current.clear();
  ++s->second.info.jobs_run;
  if (!st.draining.count(key))
    st.free_slots.insert(key);
  return true;
}

void release_job(master_ptr self, const std::string& id) {
  auto& st = self->state;
  auto j = st.jobs.find(id);
  if (j == st.jobs.end())
    return;
  if (j->second.running)
    st.policy.running_changed(j->second.username, -1);
  st.jobs.erase(j);
}

/// Brings back the unfinished jobs of a previous master run.
/// Recovery is over: registrations that waited for it are handled now.
void end_recovery(master_ptr self) {
  auto& st = self->state;
  st.recovered = true;
  for (auto& [info, slot] : st.early_slots)
    self->send(self, register_atom::value, info, slot);
  st.early_slots.clear();
}

void recover(master_ptr self) {
  auto& st = self->state;
  self->request(st.lookup, caf::infinite, list_atom::value)
    .then(
      [=](std::vector<job_record>& recs) {
        auto& st = self->state;
        size_t n = 0;
        for (auto& rec : recs) {
          st.last_seq = std::max(st.last_seq, rec.seq);
          if (is_terminal(rec.state) || st.jobs.count(rec.job_id) || st.queued.count(rec.job_id))
            continue;
          ++n;
          if (rec.state == job_state::lost) {
            // Lost under the previous master, which stopped before it
            // acted on it: requeued (or failed) here, without an actor.
            bool again = requeue_lost_record(rec, "master restarted", st.cfg->max_retries,
                                             now_seconds());
            if (again)
              enqueue_local(self, rec);
            persist_record(self, std::move(rec), [] {});
          } else if (rec.state == job_state::queued) {
            enqueue_local(self, std::move(rec)); // its actor starts at dispatch
          } else {
            // Its slot may still run it: wait for the slot to rejoin.
            auto handle = spawn_job(self->system(), rec, st.lookup, self, st.cfg->max_retries);
            st.jobs[rec.job_id] = active_job{handle, rec.username, false};
            st.awaiting.insert(rec.job_id);
          }
        }
        if (n > 0)
          spdlog::info("master recovered {} unfinished jobs ({} waiting for their slots)", n,
                       st.awaiting.size());
        if (!st.awaiting.empty())
          self->delayed_send(self, std::chrono::seconds(st.cfg->rejoin_grace_s),
                             recover_atom::value);
        end_recovery(self);
        try_dispatch(self);
      },
      [=](caf::error& err) {
        spdlog::error("master could not recover jobs: {}", error_message(err));
        end_recovery(self);
      });
}

master_actor::behavior_type master_impl(master_ptr self,
                                        std::shared_ptr<const node_config> cfg,
                                        lookup_actor lookup) {
  self->state.cfg = std::move(cfg);
  self->state.lookup = std::move(lookup);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto n = st.nodes.begin(); n != st.nodes.end(); ++n)
      if (n->second.gateway.address() == dm.source) {
        spdlog::warn("node left node={}", n->first);
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
      auto& st = self->state;
      auto id = rec.job_id;
      if (st.jobs.count(id) || st.queued.count(id) || st.submitting.count(id))
        return make_error(ec::conflict, "job '" + id + "' already exists");
      rec.state = job_state::queued;
      rec.seq = st.next_seq();
      rec.queued_time = now_seconds();
      rec.history = {job_transition{job_state::queued, rec.queued_time, {}}};
      // A job no node could ever run fails at once, on the record.
      auto misfit = gpu_misfit_of(st, rec.num_gpus);
      if (!misfit.empty()) {
        rec.state = job_state::failed;
        rec.reason = misfit;
        rec.end_time = rec.queued_time;
        rec.history.push_back(job_transition{job_state::failed, rec.queued_time, {}});
      }
      st.submitting.insert(id);
      auto rp = self->make_response_promise<std::string>();
      self->request(st.lookup, caf::infinite, enqueue_atom::value, rec)
        .then(
          [=](bool) mutable {
            auto& st = self->state;
            st.submitting.erase(id);
            if (rec.state == job_state::failed) {
              spdlog::warn("job failed at submission job_id={}: {}", id, rec.reason);
              rp.deliver(id);
              return;
            }
            spdlog::info("job queued job_id={} user={} project={}", id, rec.username,
                         rec.project_name);
            enqueue_local(self, std::move(rec)); // its actor starts at dispatch
            try_dispatch(self);
            rp.deliver(id);
          },
          [=](caf::error& err) mutable {
            self->state.submitting.erase(id);
            rp.deliver(err);
          });
      return rp;
    },
    [=](register_atom, slot_info& info, worker_slot_actor& slot) {
      auto who = sender_of(self);
      bool well_named = info.key == info.node_id + "/" + std::to_string(info.index);
      if (!node_owns(who, info.node_id) || !well_named || !on_sender_node(self, slot.address())) {
        refuse(self, who, "registering slot '" + info.key + "'");
        return;
      }
      auto& st = self->state;
      if (!st.recovered) {
        st.early_slots.emplace_back(std::move(info), std::move(slot));
        return;
      }
      self->monitor(slot);
      spdlog::info("slot registered slot={} node={} gpus={} holding={}", info.key, info.node_id,
                   info.gpus.size(), info.current_job.empty() ? "-" : info.current_job);
      auto held = info.current_job;
      st.draining.erase(info.key);
      auto& entry = st.put_slot(slot_entry{slot, info});
      if (held.empty()) {
        entry.info.current_job.clear();
        st.free_slots.insert(info.key);
        try_dispatch(self);
        return;
      }
      auto j = st.jobs.find(held);
      if (j == st.jobs.end()) { // finished or unknown here: the copy goes
        self->send(slot, discard_atom::value, held);
        return;
      }
      st.awaiting.erase(held);
      self->request(j->second.handle, std::chrono::seconds(10), adopt_atom::value, slot, info)
        .then(
          [=](bool kept) {
            auto& st = self->state;
            bool final = info.has_report && is_terminal(info.report.state);
            if (!kept || final) {
              self->send(slot, discard_atom::value, held);
              return;
            }
            if (auto j = st.jobs.find(held); j != st.jobs.end()) {
              if (!j->second.running) {
                j->second.running = true;
                st.policy.running_changed(j->second.username, 1);
              }
              self->send(slot, adopt_atom::value, held, caf::actor_cast<caf::actor>(j->second.handle));
            }
          },
          [=](caf::error&) { self->send(slot, discard_atom::value, held); });
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
      return self->delegate(self->state.lookup, list_atom::value);
    },
    [=](jobs_atom, const std::string& id) -> caf::result<job_record> {
      if (auto err = operator_or_local("reading a job"))
        return err;
      auto& st = self->state;
      if (auto q = st.queued.find(id); q != st.queued.end())
        return q->second;
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
    [=](fetch_atom, const std::string& id, uint64_t offset) -> caf::result<http_response> {
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
      http_request req;
      req.method = "GET";
      req.path = "/api/v1/jobs/" + id + "/bundle";
      req.query = "offset=" + std::to_string(offset);
      // Asked (not delegated): the gateway must see the master, which made
      // this request, not the node that asked the master for it.
      auto rp = self->make_response_promise<http_response>();
      self->request(caf::actor_cast<http_gateway_actor>(n->second.gateway), std::chrono::seconds(60),
                    std::move(req))
        .then([rp](http_response& r) mutable { rp.deliver(std::move(r)); },
              [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
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
      if (free_slot(self->state, key, job_id))
        try_dispatch(self);
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
      if (!slot_key.empty() && free_slot(self->state, slot_key, id))
        try_dispatch(self);
    },
    [=](requeue_atom, job_record& rec) {
      if (!local_only(self, "requeue"))
        return;
      // The job's lifecycle actor persisted it queued again and ended: from
      // here on it is a queued record like any other, until its dispatch.
      auto& st = self->state;
      auto j = st.jobs.find(rec.job_id);
      if (j == st.jobs.end() || rec.state != job_state::queued)
        return;
      if (j->second.running)
        st.policy.running_changed(j->second.username, -1);
      st.jobs.erase(j);
      st.awaiting.erase(rec.job_id);
      // The slot that lost it may still list it: free that record.
      for (auto& [key, s] : st.slots)
        if (s.info.current_job == rec.job_id)
          s.info.current_job.clear();
      enqueue_local(self, std::move(rec));
      try_dispatch(self);
    },
    [=](stop_atom, const std::string& id) -> caf::result<bool> {
      if (auto err = operator_or_local("stopping a job"))
        return err;
      auto& st = self->state;
      if (st.queued.count(id)) {
        auto rp = self->make_response_promise<bool>();
        cancel_queued(self, id, [rp]() mutable { rp.deliver(true); });
        return rp;
      }
      auto j = st.jobs.find(id);
      if (j == st.jobs.end())
        return make_error(ec::not_found, "job '" + id + "' is not queued or running");
      auto rp = self->make_response_promise<bool>();
      self->request(j->second.handle, caf::infinite, stop_atom::value)
        .then([=](bool ok) mutable { rp.deliver(ok); },
              [=](caf::error& err) mutable {
                // Its actor had just requeued it and ended (the requeue
                // arrived before this answer): stop the record instead.
                if (!cancel_queued(self, id, [rp]() mutable { rp.deliver(true); }))
                  rp.deliver(err);
              });
      return rp;
    },
    [=](list_atom) -> caf::result<std::vector<job_record>> {
      if (auto err = operator_or_local("listing the queue"))
        return err;
      auto& st = self->state;
      std::vector<job_record> out;
      for (auto& q : st.policy.ordered())
        if (auto r = st.queued.find(q.job_id); r != st.queued.end())
          out.push_back(r->second);
      return out;
    },
    [=](dequeue_atom, uint64_t pos) -> caf::result<job_record> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "removing a queued job");
      auto& st = self->state;
      auto order = st.policy.ordered();
      if (pos >= order.size())
        return make_error(ec::not_found, "Bad queue position " + std::to_string(pos));
      auto rec = st.queued[order[pos].job_id];
      // Answered once its end is persisted: a read right after sees it.
      auto rp = self->make_response_promise<job_record>();
      cancel_queued(self, rec.job_id, [rp, rec]() mutable { rp.deliver(rec); });
      return rp;
    },
    [=](move_atom, uint64_t from, uint64_t to) -> caf::result<bool> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "moving a queued job");
      auto& st = self->state;
      auto order = st.policy.move(from, to);
      if (!order)
        return make_error(ec::not_found, "Bad queue position " + std::to_string(from)
                                           + " or " + std::to_string(to));
      for (auto& q : *order) {
        auto& rec = st.queued[q.job_id];
        rec.pin = q.pin;
        self->request(st.lookup, caf::infinite, put_atom::value, rec)
          .then([](bool) {}, [](caf::error&) {});
      }
      return true;
    },
    [=](clear_atom) -> caf::result<uint64_t> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "clearing the queue");
      auto& st = self->state;
      auto order = st.policy.ordered();
      auto n = static_cast<uint64_t>(order.size());
      if (n == 0)
        return n;
      // Answered once every cancellation is persisted.
      auto rp = self->make_response_promise<uint64_t>();
      auto left = std::make_shared<uint64_t>(n);
      auto one_done = [rp, left, n]() mutable {
        if (--*left == 0)
          rp.deliver(n);
      };
      for (auto& q : order)
        if (!cancel_queued(self, q.job_id, one_done))
          one_done(); // a policy entry without its record: nothing to write
      return rp;
    },
    [=](get_atom, slots_atom) -> caf::result<std::vector<slot_info>> {
      if (auto err = operator_or_local("listing slots"))
        return err;
      std::vector<slot_info> out;
      for (auto& [key, s] : self->state.slots)
        out.push_back(s.info);
      return out;
    },
    [=](get_atom, const std::string& id) -> caf::result<job_record> {
      if (auto err = operator_or_local("reading a job"))
        return err;
      auto& st = self->state;
      if (auto q = st.queued.find(id); q != st.queued.end())
        return q->second;
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
