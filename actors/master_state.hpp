#pragma once

// The master's state, shared by the actor (master.cpp) and the views it
// gives atlas-ctl (master_views.cpp).

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/counted.hpp"
#include "actors/policy/queue_policy.hpp"
#include "messages/actors.hpp"
#include "library/config.hpp"

namespace atlas {

struct slot_entry {
  worker_slot_actor handle;
  slot_info info;
};

struct node_entry {
  node_info info;
  caf::actor gateway;    // its http_gateway_actor
  caf::actor node;       // its node_actor
  double last_seen = 0;  // its last heartbeat
  bool drained = false;  // no new jobs go there
};

struct active_job {
  job_actor handle;
  std::string username;
  bool running = false; // counted in the policy's fair share
};

struct master_state {
  static inline const char* name = "master";
  std::shared_ptr<const node_config> cfg;
  lookup_actor lookup;
  queue_policy policy;
  // A queued job is its record here (the only copy) and its policy entry;
  // its lifecycle actor is spawned at dispatch, and a requeued job's ends.
  std::unordered_map<std::string, job_record> queued;  // records of queued jobs
  std::unordered_map<std::string, active_job> jobs;    // dispatched, unfinished jobs
  std::map<std::string, slot_entry> slots;             // by slot key ("<node>/<index>")
  size_t gpu_slots = 0;                                // slots with GPUs: none, no ledger
  std::set<std::string> free_slots;
  std::set<std::string> submitting;                    // ids being persisted
  std::set<std::string> awaiting;                      // recovered jobs whose slot may rejoin
  std::set<std::string> draining;                      // slots that take no more work
  // Slots that registered before the unfinished jobs were read back from
  // Redis: handled once they are, so that a job a slot still holds is known.
  bool recovered = false;
  std::vector<std::pair<slot_info, worker_slot_actor>> early_slots;
  std::map<std::string, node_entry> nodes;             // by node id
  uint64_t last_seq = 0;

  /// Submission order that stays monotonic across master restarts.
  uint64_t next_seq() {
    using namespace std::chrono;
    auto now = static_cast<uint64_t>(
      duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
    last_seq = std::max(last_seq + 1, now);
    return last_seq;
  }

  /// Adds or replaces a slot in the registry.
  slot_entry& put_slot(slot_entry entry) {
    auto key = entry.info.key;
    if (auto old = slots.find(key); old != slots.end() && !old->second.info.gpus.empty())
      --gpu_slots;
    if (!entry.info.gpus.empty())
      ++gpu_slots;
    return slots[key] = std::move(entry);
  }

  void erase_slot(std::map<std::string, slot_entry>::iterator slot) {
    if (!slot->second.info.gpus.empty())
      --gpu_slots;
    slots.erase(slot);
  }

  /// Slots of `node_id` that hold a job: its slots are adjacent in `slots`.
  size_t busy_on(const std::string& node_id) const {
    size_t n = 0;
    auto prefix = node_id + "/";
    for (auto s = slots.lower_bound(prefix);
         s != slots.end() && s->first.compare(0, prefix.size(), prefix) == 0; ++s)
      if (s->second.info.node_id == node_id && !s->second.info.current_job.empty())
        ++n;
    return n;
  }

  /// Free slots in placement order: spread fills the emptiest node first,
  /// pack the fullest. Costs the free slots and their nodes' slots, not the
  /// whole registry: it runs once per dispatched job.
  std::vector<std::string> placement_order() const {
    std::unordered_map<std::string, size_t> busy; // per node with a free slot
    std::vector<std::pair<size_t, std::string>> ranked;
    for (auto& key : free_slots) {
      auto& node_id = slots.at(key).info.node_id;
      if (auto n = nodes.find(node_id); n != nodes.end() && n->second.drained)
        continue;
      auto [b, fresh] = busy.try_emplace(node_id, 0);
      if (fresh)
        b->second = busy_on(node_id);
      ranked.emplace_back(cfg->placement == "pack" ? ~b->second : b->second, key);
    }
    std::sort(ranked.begin(), ranked.end());
    std::vector<std::string> out;
    for (auto& r : ranked)
      out.push_back(r.second);
    return out;
  }
};

using master_ptr = counted_pointer<master_actor, master_state>;

/// Every node with its slots, heartbeat and drain flag.
std::vector<node_view> node_views(master_ptr self);

/// The queue in dispatch order, each job with the reason it waits.
std::vector<queue_entry> queue_with_reasons(master_ptr self);

/// Asks every actor of every node for its stats; answers when all did (or
/// failed to).
caf::result<std::vector<actor_stats>> all_actor_stats(master_ptr self);

} // namespace atlas
