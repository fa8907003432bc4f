// The master's queue and its jobs' way through it: submission, dispatch as
// policy/dispatch_plan.hpp decides, requeue, stop, the queue operations of
// the scheduler API, and recovery after a master restart. Each function
// runs on the master actor (master.cpp checks who asks first).

#include <chrono>
#include <functional>
#include <memory>

#include <caf/sec.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/job.hpp"
#include "actors/master_dependencies.hpp"
#include "actors/master_plan.hpp"
#include "actors/master_state.hpp"
#include "actors/policy/job_limits.hpp"
#include "actors/policy/queued_record.hpp"
#include "library/job_codec.hpp"
#include "library/metrics.hpp"
#include "messages/errors.hpp"

namespace atlas {

void enqueue_local(master_ptr self, job_record rec) {
  auto& st = self->state;
  st.policy.push(queue_entry_of(rec));
  st.queued[rec.job_id] = std::move(rec);
}

namespace {

/// Carries out one decision of the plan: the job's lifecycle actor starts
/// here (a queued job is only its record in `queued`: memory per queued
/// job) and gets the slot. False when the job's record is gone meanwhile.
bool hand_out(master_ptr self, assignment& a) {
  auto& st = self->state;
  auto rec = st.queued.extract(a.job.job_id);
  if (rec.empty()) {
    st.policy.running_changed(a.job, -1);
    return false;
  }
  auto& slot = st.slots.at(a.slot_key);
  active_job job;
  job.entry = a.job;
  job.running = true;
  job.node = slot.info.node_id;
  job.dispatched = now_seconds();
  job.preemptions = rec.mapped().preemptions;
  job.preempted_by = rec.mapped().preempted_by;
  job.handle = spawn_job(self->system(), std::move(rec.mapped()), st.lookup, self,
                         st.cfg->max_retries);
  st.use_room(job, 1);
  auto active = st.jobs.insert_or_assign(a.job.job_id, std::move(job)).first;
  slot.info.current_job = a.job.job_id;
  slot.info.job_gpus = std::move(a.gpus);
  st.free_slots.erase(a.slot_key);
  spdlog::debug("dispatch job_id={} slot={}", a.job.job_id, a.slot_key);
  metrics::dispatched();
  self->send(active->second.handle, dispatch_atom::value, slot.handle, slot.info);
  return true;
}

} // namespace

/// Hands queued jobs to free slots as the plan (policy/dispatch_plan.hpp)
/// decides; plans again only when a planned job had gone meanwhile.
void try_dispatch(master_ptr self) {
  auto& st = self->state;
  bool all_out = false;
  while (!all_out && !st.free_slots.empty() && st.policy.size() > 0) {
    auto plan = plan_dispatch(st.policy, dispatch_input_of(st, now_seconds()));
    if (plan.empty())
      break; // nothing queued fits any free slot
    all_out = true;
    for (auto& a : plan)
      all_out = hand_out(self, a) && all_out;
  }
  if (st.cfg->preemption && st.policy.size() > 0)
    maybe_preempt(self);
}

/// Writes a record no actor holds; retries while Redis is away (the lookup
/// backs off) so that the transition is never dropped, then calls `then`.
void persist_record(master_ptr self, job_record rec, std::function<void()> then) {
  self->request(self->state.lookup, caf::infinite, put_atom::value, rec)
    .then([then](bool) { then(); },
          [=](caf::error& err) {
            if (err == caf::sec::request_receiver_down) {
              // The lookup stopped: this node is shutting down. Retrying
              // would spin; the next master reads the job back as it was.
              spdlog::warn("job_id={} not persisted: shutting down", rec.job_id);
              return;
            }
            spdlog::error("persisting job failed, retrying job_id={}: {}", rec.job_id,
                          error_message(err));
            persist_record(self, rec, then);
          });
}

/// Cancels a queued job: out of the queue, its record ends `cancelled` (it
/// has no lifecycle actor yet). `then` runs once that is persisted. False
/// when the job is not queued.
bool cancel_queued(master_ptr self, const std::string& id, std::function<void()> then,
                   const std::string& why) {
  auto& st = self->state;
  // The record leaves the queue only once it is cancelled: a refusal keeps it.
  auto& records = st.held.count(id) ? st.held : st.queued;
  auto q = records.find(id);
  if (q == records.end() || !cancel_queued_record(q->second, now_seconds()))
    return false;
  if (!why.empty())
    q->second.reason = why;
  auto rec = std::move(q->second);
  records.erase(q);
  st.policy.remove(id);
  auto reason = rec.reason;
  persist_record(self, std::move(rec), [id, reason, then] {
    spdlog::info("job finished job_id={} state=cancelled {}", id, reason);
    metrics::ended(job_state::cancelled, reason);
    then();
  });
  dependency_ended(self, id, job_state::cancelled);
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
    st.policy.running_changed(j->second.entry, -1);
  st.use_room(j->second, -1);
  st.jobs.erase(j);
  preemption_over(st, id);
}

namespace {

/// Recovery is over: registrations that waited for it are handled now.
void end_recovery(master_ptr self) {
  auto& st = self->state;
  st.recovered = true;
  auto early = std::move(st.early_slots);
  st.early_slots.clear();
  for (auto& [info, slot] : early)
    register_slot(self, std::move(info), std::move(slot));
}

} // namespace

/// Brings back the unfinished jobs of a previous master run.
void recover(master_ptr self) {
  auto& st = self->state;
  self->request(st.lookup, caf::infinite, recover_atom::value)
    .then(
      [=](std::vector<job_record>& recs) {
        auto& st = self->state;
        hold_recovered(self, recs); // before the queue: held jobs stay out of it
        size_t n = 0;
        for (auto& rec : recs) {
          st.last_seq = std::max(st.last_seq, rec.seq);
          // A local run is no slot's: its SDK (or a stop) ends it.
          if (is_terminal(rec.state) || rec.local_run || st.jobs.count(rec.job_id)
              || st.queued.count(rec.job_id) || st.held.count(rec.job_id))
            continue;
          ++n;
          if (rec.state == job_state::lost) {
            // Lost under the previous master, which stopped before it
            // acted on it: requeued (or failed) here, without an actor.
            bool again = requeue_lost_record(rec, "master restarted", st.cfg->max_retries,
                                             now_seconds());
            if (again)
              enqueue_local(self, rec);
            else
              dependency_ended(self, rec.job_id, rec.state);
            persist_record(self, std::move(rec), [] {});
          } else if (rec.state == job_state::queued) {
            enqueue_local(self, std::move(rec)); // its actor starts at dispatch
          } else {
            // Its slot may still run it: wait for the slot to rejoin.
            auto handle = spawn_job(self->system(), rec, st.lookup, self, st.cfg->max_retries);
            auto& job = st.jobs[rec.job_id] = active_job{handle, queue_entry_of(rec), false, rec.node,
                                                         rec.start_time, rec.preemptions,
                                                         rec.preempted_by};
            st.use_room(job, 1);
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

caf::result<std::string> submit_job(master_ptr self, job_record rec) {
  auto& st = self->state;
  auto id = rec.job_id;
  if (st.jobs.count(id) || st.queued.count(id) || st.submitting.count(id) || st.held.count(id))
    return make_error(ec::conflict, "job '" + id + "' already exists");
  rec.state = job_state::queued;
  rec.seq = st.next_seq();
  rec.queued_time = now_seconds();
  rec.history = {job_transition{job_state::queued, rec.queued_time, {}}};
  add_config_groups(rec, *st.cfg);
  if (auto why = apply_time_limit(rec, *st.cfg); !why.empty())
    return make_error(ec::invalid_argument, why);
  if (auto why = st.policy.quotas().never_fits(queue_entry_of(rec)); !why.empty())
    return make_error(ec::invalid_argument, "over quota for good: " + why);
  // A job no node could ever run fails at once, on the record.
  auto misfit = gpu_misfit_of(st, rec.num_gpus);
  if (misfit.empty() && !st.slots.empty())
    misfit = room_misfit(queue_entry_of(rec), largest_room(st));
  if (!misfit.empty()) {
    rec.state = job_state::failed;
    rec.reason = misfit;
    rec.end_time = rec.queued_time;
    rec.history.push_back(job_transition{job_state::failed, rec.queued_time, {}});
  }
  st.submitting.insert(id);
  auto rp = self->make_response_promise<std::string>();
  // Stored once its dependencies are known to exist (master_dependencies.cpp).
  auto store = [=]() mutable {
    self->request(self->state.lookup, caf::infinite, enqueue_atom::value, rec)
      .then(
        [=](bool) mutable {
          auto& st = self->state;
          st.submitting.erase(id);
          metrics::submitted();
          if (rec.state == job_state::failed) {
            spdlog::warn("job failed at submission job_id={}: {}", id, rec.reason);
            metrics::ended(rec.state, rec.reason);
            dependency_ended(self, id, rec.state);
            rp.deliver(id);
            return;
          }
          spdlog::info("job queued job_id={} user={} project={}", id, rec.username,
                       rec.project_name);
          admit_queued(self, std::move(rec)); // its actor starts at dispatch
          rp.deliver(id);
        },
        [=](caf::error& err) mutable {
          self->state.submitting.erase(id);
          submission_dropped(self, id);
          rp.deliver(err);
        });
  };
  check_dependencies(self, rec, rp, std::move(store));
  return rp;
}

void requeue_job(master_ptr self, job_record rec) {
  // The job's lifecycle actor persisted it queued again and ended: from
  // here on it is a queued record like any other, until its dispatch.
  auto& st = self->state;
  auto j = st.jobs.find(rec.job_id);
  if (j == st.jobs.end() || rec.state != job_state::queued)
    return;
  if (j->second.running)
    st.policy.running_changed(j->second.entry, -1);
  st.use_room(j->second, -1);
  st.jobs.erase(j);
  st.awaiting.erase(rec.job_id);
  preemption_over(st, rec.job_id);
  // The slot that lost it may still list it: free that record.
  for (auto& [key, s] : st.slots)
    if (s.info.current_job == rec.job_id)
      s.info.current_job.clear();
  enqueue_local(self, std::move(rec));
  try_dispatch(self);
}

caf::result<bool> stop_job(master_ptr self, const std::string& id) {
  auto& st = self->state;
  if (st.queued.count(id) || st.held.count(id)) {
    auto rp = self->make_response_promise<bool>();
    cancel_queued(self, id, [rp]() mutable { rp.deliver(true); });
    return rp;
  }
  auto j = st.jobs.find(id);
  if (j == st.jobs.end())
    return stop_local_run(self, id);
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
}

caf::result<job_record> dequeue_at(master_ptr self, uint64_t pos) {
  auto& st = self->state;
  auto queued = st.policy.size();
  auto held = held_in_order(st); // listed after the queue
  if (pos >= queued + held.size())
    return make_error(ec::not_found, "Bad queue position " + std::to_string(pos));
  auto rec = pos < queued ? st.queued[st.policy.ordered(pos, 1).at(0).job_id] : *held[pos - queued];
  // Answered once its end is persisted: a read right after sees it.
  auto rp = self->make_response_promise<job_record>();
  cancel_queued(self, rec.job_id, [rp, rec]() mutable { rp.deliver(rec); });
  return rp;
}

caf::result<bool> move_queued(master_ptr self, uint64_t from, uint64_t to) {
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
}

caf::result<uint64_t> clear_queue(master_ptr self) {
  auto& st = self->state;
  // Held jobs first, newest first: a job is submitted after those it waits
  // on, so none is released (an `any`) by the cancelling of another.
  std::vector<std::string> ids;
  auto held = held_in_order(st);
  for (auto h = held.rbegin(); h != held.rend(); ++h)
    ids.push_back((*h)->job_id);
  for (auto& q : st.policy.ordered())
    ids.push_back(q.job_id);
  auto n = static_cast<uint64_t>(ids.size());
  if (n == 0)
    return n;
  // Answered once every cancellation is persisted.
  auto rp = self->make_response_promise<uint64_t>();
  auto left = std::make_shared<uint64_t>(n);
  auto one_done = [rp, left, n]() mutable {
    if (--*left == 0)
      rp.deliver(n);
  };
  for (auto& id : ids)
    if (!cancel_queued(self, id, one_done))
      one_done(); // a policy entry without its record: nothing to write
  return rp;
}

} // namespace atlas
