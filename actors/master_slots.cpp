// The master's registry of slots: a slot registering (once the queue was
// read back), and slots added and removed at run time (POST and DELETE
// /workers): the master asks the node to start one more slot, and takes one
// out of its registry before the node stops it. A busy slot takes no more
// work and goes once its job ended.

#include <chrono>

#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/master_state.hpp"
#include "messages/errors.hpp"

namespace atlas {

caf::result<std::string> add_slot(master_ptr self, const std::string& node_id) {
  auto& st = self->state;
  auto n = st.nodes.find(node_id);
  if (n == st.nodes.end())
    return make_error(ec::not_found, "no node '" + node_id + "' in the cluster");
  auto rp = self->make_response_promise<std::string>();
  self->request(caf::actor_cast<node_actor>(n->second.node), std::chrono::seconds(10),
                slots_atom::value, put_atom::value)
    .then(
      [=](std::string& key) mutable {
        if (auto n = self->state.nodes.find(node_id); n != self->state.nodes.end())
          ++n->second.info.num_slots;
        publish_node_event(self, node_id, "slot added", key);
        rp.deliver(std::move(key));
      },
      [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

namespace {

/// Takes an idle slot out of the registry and has its node stop it.
void retire_now(master_ptr self, std::map<std::string, slot_entry>::iterator s) {
  auto& st = self->state;
  auto key = s->first;
  auto node_id = s->second.info.node_id;
  auto handle = s->second.handle;
  st.free_slots.erase(key);
  st.draining.erase(key);
  st.retiring.erase(key);
  st.erase_slot(s);
  spdlog::info("slot removed slot={} node={}", key, node_id);
  if (auto n = st.nodes.find(node_id); n != st.nodes.end()) {
    if (n->second.info.num_slots > 0)
      --n->second.info.num_slots;
    self->send(caf::actor_cast<node_actor>(n->second.node), slots_atom::value, delete_atom::value,
               handle);
  }
  publish_node_event(self, node_id, "slot removed", key);
}

} // namespace

caf::result<bool> remove_slot(master_ptr self, const std::string& key) {
  auto& st = self->state;
  auto s = st.slots.find(key);
  if (s == st.slots.end())
    return make_error(ec::not_found, "no worker '" + key + "'");
  if (s->second.info.current_job.empty()) {
    retire_now(self, s);
    return true;
  }
  // Busy: no more work for it; retire_if_due takes it once its job ended.
  st.free_slots.erase(key);
  st.draining.insert(key);
  st.retiring.insert(key);
  spdlog::info("slot retiring slot={} job_id={}", key, s->second.info.current_job);
  return false;
}

void retire_if_due(master_ptr self, const std::string& key) {
  auto& st = self->state;
  if (!st.retiring.count(key))
    return;
  auto s = st.slots.find(key);
  if (s == st.slots.end()) {
    st.retiring.erase(key);
    return;
  }
  if (s->second.info.current_job.empty())
    retire_now(self, s);
}

/// A slot the master may use, its sender checked: a free one takes work, one
/// still holding a job (a rejoin) is matched with the job's lifecycle actor.
/// While the master reads the queue back it waits, and is handled here once
/// that is over (end_recovery), without being sent again: a message the
/// master sends itself no longer comes from the slot's node.
void register_slot(master_ptr self, slot_info info, worker_slot_actor slot) {
  auto& st = self->state;
  if (!st.recovered) {
    st.early_slots.emplace_back(std::move(info), std::move(slot));
    return;
  }
  self->monitor(slot);
  spdlog::info("slot registered slot={} node={} gpus={} holding={}", info.key, info.node_id,
               info.gpus.size(), info.current_job.empty() ? "-" : info.current_job);
  auto held = info.current_job;
  if (!st.retiring.count(info.key)) // one being removed stays out of work
    st.draining.erase(info.key);
  auto& entry = st.put_slot(slot_entry{slot, info});
  if (held.empty() && st.retiring.count(info.key))
    return retire_if_due(self, info.key);
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
            st.policy.running_changed(j->second.entry, 1);
          }
          self->send(slot, adopt_atom::value, held, caf::actor_cast<caf::actor>(j->second.handle));
        }
      },
      [=](caf::error&) { self->send(slot, discard_atom::value, held); });
}

} // namespace atlas
