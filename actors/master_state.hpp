#pragma once

// The master's state, shared by the actor (master.cpp), its queue
// (master_queue.cpp) and the views it gives atlas-ctl (master_views.cpp).

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/result.hpp>

#include "actors/counted.hpp"
#include "actors/policy/dependencies.hpp"
#include "actors/policy/dispatch_plan.hpp"
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
  queued_job entry;     // as the policy knew it: owner, priority, what it asks
  bool running = false; // counted in the policy's fair share and quotas
  std::string node;     // where it was dispatched ("" while recovered, unadopted)
  double dispatched = 0; // when (epoch seconds)
  int64_t preemptions = 0;
  int64_t preempted_by = 0;
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
  // Queued jobs waiting for their dependencies: out of the policy until
  // released (master_dependencies.cpp); `deps` knows what they wait on.
  std::unordered_map<std::string, job_record> held;
  dependency_graph deps;
  std::map<std::string, slot_entry> slots;             // by slot key ("<node>/<index>")
  size_t gpu_slots = 0;                                // slots with GPUs: none, no ledger
  std::set<std::string> free_slots;
  std::set<std::string> submitting;                    // ids being persisted
  std::set<std::string> local_ending; // local runs whose end is being written
  std::set<std::string> awaiting;                      // recovered jobs whose slot may rejoin
  std::set<std::string> draining;                      // slots that take no more work
  std::set<std::string> retiring;                      // removed once their job ends (DELETE /workers)
  // Slots that registered before the unfinished jobs were read back from
  // Redis: handled once they are, so that a job a slot still holds is known.
  bool recovered = false;
  std::vector<std::pair<slot_info, worker_slot_actor>> early_slots;
  std::map<std::string, node_entry> nodes;             // by node id
  // Jobs being preempted, each with the job it makes way for: no new
  // preemption is planned while one is under way.
  std::map<std::string, std::string> preempting;
  bool preempt_check_due = false; // a preempt_atom to itself is on its way
  // The job the last preemption made room for, and when: no other is
  // planned while it waits for that room (its victims' slots free up only
  // after they are requeued), for up to stop_grace_s + 5 s.
  std::string room_for;
  double room_since = 0;
  // CPUs and memory the dispatched jobs asked of each node.
  std::map<std::string, node_room> node_use;
  uint64_t last_seq = 0;

  /// Submission order that stays monotonic across master restarts.
  uint64_t next_seq() {
    using namespace std::chrono;
    auto now = static_cast<uint64_t>(
      duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
    last_seq = std::max(last_seq + 1, now);
    return last_seq;
  }

  /// A dispatched job starts (+1) or stops (-1) using its node's room.
  void use_room(const active_job& job, int sign) {
    if (job.node.empty() || (job.entry.cpus <= 0 && job.entry.memory_bytes == 0))
      return;
    auto& use = node_use[job.node];
    use.used_cpus = std::max(0.0, use.used_cpus + sign * job.entry.cpus);
    use.used_memory_bytes = sign > 0 ? use.used_memory_bytes + job.entry.memory_bytes
                            : use.used_memory_bytes - std::min(use.used_memory_bytes, job.entry.memory_bytes);
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
};

using master_ptr = counted_pointer<master_actor, master_state>;

// The queue and its jobs (master_queue.cpp). Each runs on the master actor,
// after the behaviour (master.cpp) checked who asks.

/// A record becomes queued here: its policy entry and the only copy.
void enqueue_local(master_ptr self, job_record rec);
/// Hands queued jobs to free slots as policy/dispatch_plan.hpp decides.
void try_dispatch(master_ptr self);
/// Writes a record no actor holds; retries while Redis is away, then `then`.
void persist_record(master_ptr self, job_record rec, std::function<void()> then);
/// Cancels a queued (or held) job; `then` once persisted. False when not
/// queued. `why` replaces the usual reason.
bool cancel_queued(master_ptr self, const std::string& id, std::function<void()> then,
                   const std::string& why = {});
/// A slot's job ended: the slot takes work again unless it drains or the
/// notice is stale. True when it was freed.
bool free_slot(master_state& st, const std::string& key, const std::string& job_id);
/// Forgets a finished job's lifecycle actor (and its fair-share count).
void release_job(master_ptr self, const std::string& id);
/// Reads back the unfinished jobs of a previous master run.
void recover(master_ptr self);
/// Persists and queues a new job (or fails it at once when no node could
/// ever run it); answers its id.
caf::result<std::string> submit_job(master_ptr self, job_record rec);
/// A job its lifecycle actor requeued becomes a queued record again.
void requeue_job(master_ptr self, job_record rec);
/// Records a local run (job_record::local_run) as running; answers its id
/// (master_local_runs.cpp).
caf::result<std::string> start_local_run(master_ptr self, job_record rec);
/// Ends a running local run as `rep` says (the SDK at exit, or a stop).
caf::result<bool> end_local_run(master_ptr self, job_report rep);
/// Stops `id` when it is a running local run; not_found otherwise.
caf::result<bool> stop_local_run(master_ptr self, const std::string& id);
/// Cancels a queued job or asks a running one's lifecycle actor to stop it.
caf::result<bool> stop_job(master_ptr self, const std::string& id);
/// Cancels the job at a queue position; answers its record.
caf::result<job_record> dequeue_at(master_ptr self, uint64_t pos);
/// Moves a queued job by position; the queue keeps that order by hand.
caf::result<bool> move_queued(master_ptr self, uint64_t from, uint64_t to);
/// Cancels every queued job; answers how many.
caf::result<uint64_t> clear_queue(master_ptr self);

/// Preempts lower-priority jobs for the first waiting job of the highest
/// priority that cannot be placed, when scheduling.preemption is on
/// (master_preemption.cpp, deciding with policy/preemption.hpp).
void maybe_preempt(master_ptr self);

/// A job left the master's hands (ended or requeued): no longer preempting.
void preemption_over(master_state& st, const std::string& id);

/// Every node with its slots, heartbeat and drain flag.
std::vector<node_view> node_views(master_ptr self);

/// The queue in dispatch order, each job with the reason it waits.
std::vector<queue_entry> queue_with_reasons(master_ptr self);
/// Positions [from, from + limit) of the queue as list_atom lists it (the
/// jobs waiting for others after it); `next` names the next page's first.
job_page queue_page(const master_state& st, uint64_t from, uint64_t limit);

/// The master's gauges for /metrics (master_metrics.cpp), with the job
/// counts per state the lookup read from Redis (empty when it could not).
std::string cluster_metrics(master_ptr self, std::vector<uint64_t> jobs_by_state);

/// Adds a node event (joined, left, drained, undrained) to the event stream.
void publish_node_event(master_ptr self, const std::string& node, const std::string& what,
                        const std::string& detail);

/// POST /workers: asks the node to start one more slot; answers its key
/// (master_slots.cpp).
caf::result<std::string> add_slot(master_ptr self, const std::string& node_id);
/// DELETE /workers/<key>: true when the slot went at once, false when it
/// goes once its running job ended; not_found for an unknown key.
caf::result<bool> remove_slot(master_ptr self, const std::string& key);
/// A slot's job ended: a slot being removed goes now.
void retire_if_due(master_ptr self, const std::string& key);

/// Takes a registered slot into the registry (actors/master_slots.cpp); its
/// sender was checked.
void register_slot(master_ptr self, slot_info info, worker_slot_actor slot);

/// Asks every actor of every node for its stats; answers when all did (or
/// failed to).
caf::result<std::vector<actor_stats>> all_actor_stats(master_ptr self);

} // namespace atlas
