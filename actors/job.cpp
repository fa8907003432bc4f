#include "actors/job.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/counted.hpp"
#include "library/tracking/store.hpp"
#include "actors/peer_check.hpp"
#include "messages/errors.hpp"
#include "library/job_codec.hpp"
#include "library/metrics.hpp"

namespace atlas {

namespace {

struct job_state_data {
  static inline const char* name = "job";
  job_record rec;
  lookup_actor lookup;
  master_actor master;
  worker_slot_actor slot;
  int max_retries = 2;
  bool stop_requested = false; // desired state, kept apart from rec.state
  bool preempting = false;     // asked to make way: its loss is a requeue, not a retry
  // The slot's final report is answered only once it is persisted: a slot
  // that gets no answer keeps the news for the next master.
  caf::typed_response_promise<bool> final_ack;
};

using job_ptr = counted_pointer<job_actor, job_state_data>;

/// Writes the record; retries while Redis is away (the lookup actor already
/// backs off) so that no transition is ever dropped.
template <class F>
void persist(job_ptr self, F then) {
  self->request(self->state.lookup, caf::infinite, put_atom::value, self->state.rec)
    .then([=](bool) { then(); },
          [=](caf::error& err) {
            spdlog::error("persisting job failed, retrying job_id={}: {}",
                          self->state.rec.job_id, error_message(err));
            persist(self, then);
          });
}

/// Applies a transition the lifecycle allows; refuses (and logs) the rest.
bool transition(job_ptr self, job_state to) {
  auto from = self->state.rec.state;
  if (!can_transition(from, to)) {
    spdlog::warn("illegal transition refused job_id={} from={} to={}",
                 self->state.rec.job_id, to_string(from), to_string(to));
    return false;
  }
  self->state.rec.state = to;
  self->state.rec.history.push_back(job_transition{to, now_seconds(), self->state.rec.slot});
  return true;
}

void finish(job_ptr self) {
  auto id = self->state.rec.job_id;
  persist(self, [=] {
    auto& st = self->state;
    spdlog::info("job finished job_id={} state={} {}", id, to_string(st.rec.state),
                 st.rec.reason);
    metrics::ended(st.rec.state, st.rec.reason);
    // Ended by its slot's final report: the answer frees the slot, and the
    // master may hand it a job right away (the answer travels first).
    std::string freed;
    if (st.final_ack.pending()) {
      st.final_ack.deliver(true);
      freed = st.rec.slot;
    }
    self->send(st.master, done_atom::value, id, freed);
    self->quit();
  });
}

/// The slot or node is gone: requeue while retries remain, else fail.
/// `counts`: false when the slot refused the job (it was not free), which
/// is no fault of the job's and takes none of its retries.
void handle_lost(job_ptr self, const std::string& reason, bool counts = true) {
  auto& rec = self->state.rec;
  if (is_terminal(rec.state) || rec.state == job_state::queued)
    return;
  if (self->state.stop_requested) {
    // It was being stopped anyway: cancelled, through transition() so that
    // the history ends with it (the soak campaign found records without).
    if (!transition(self, job_state::cancelled))
      return;
    rec.reason = reason;
    rec.end_time = now_seconds();
    finish(self);
    return;
  }
  if (!transition(self, job_state::lost))
    return;
  rec.reason = reason;
  auto allowed = rec.max_retries >= 0 ? rec.max_retries : self->state.max_retries;
  bool preempted = self->state.preempting;
  if (preempted) {
    ++rec.preemptions; // not a retry: it goes back to the head of its class
  } else if (!counts) {
    // requeued as it was
  } else if (rec.retries >= allowed) {
    transition(self, job_state::failed);
    rec.reason = "lost: " + reason + " (no retries left)";
    rec.end_time = now_seconds();
    finish(self);
    return;
  } else {
    ++rec.retries;
  }
  transition(self, job_state::queued);
  rec.slot.clear();
  rec.node.clear();
  rec.host_address.clear();
  rec.gpus.clear();
  rec.start_time = 0;
  rec.job_secret.clear(); // the next dispatch makes a new one
  self->state.slot = nullptr;
  if (preempted)
    spdlog::info("job preempted, requeued job_id={} preemptions={}", rec.job_id, rec.preemptions);
  else
    spdlog::warn("job lost, requeued job_id={} retry={}: {}", rec.job_id, rec.retries, reason);
  // Queued again, it is a record in the master's queue until its next
  // dispatch spawns a new lifecycle actor: this one ends (unless a stop
  // cancelled it meanwhile, which ends it through finish()).
  persist(self, [=] {
    if (self->state.rec.state != job_state::queued)
      return;
    self->send(self->state.master, requeue_atom::value, self->state.rec);
    self->quit();
  });
}

/// Its wait since submission and since the dispatch decision (the last
/// `pending` of its history), for /metrics.
void observe_start(const job_record& rec) {
  double dispatched = rec.start_time;
  for (auto t = rec.history.rbegin(); t != rec.history.rend(); ++t)
    if (t->state == job_state::pending) {
      dispatched = t->time;
      break;
    }
  metrics::started(rec.start_time - rec.queued_time, rec.start_time - dispatched);
}

/// A state change the slot reported (directly, or held while the master
/// was away).
void apply_report(job_ptr self, const job_report& rep) {
  auto& st = self->state;
  if (rep.state == job_state::lost) {
    handle_lost(self, rep.reason);
    return;
  }
  if (rep.state == st.rec.state)
    return; // already known (a held report repeating the last one)
  // A slot that could not report `running` (its master was away) reports
  // the end directly: the job did run.
  if (st.rec.state == job_state::pending && rep.state == job_state::completed) {
    transition(self, job_state::running);
    st.rec.start_time = now_seconds();
  }
  if (!transition(self, rep.state))
    return;
  st.rec.reason = rep.reason;
  if (rep.has_return_code) {
    st.rec.return_code = rep.return_code;
    st.rec.has_return_code = true;
  }
  if (rep.state == job_state::running) {
    st.rec.start_time = now_seconds();
    observe_start(st.rec);
    persist(self, [] {});
    return;
  }
  if (is_terminal(rep.state)) {
    st.rec.end_time = now_seconds();
    st.rec.cpu_seconds = rep.cpu_seconds;
    st.rec.peak_memory_bytes = rep.peak_memory_bytes;
    finish(self);
  }
}

/// Only the slot the job is placed on speaks for it: a copy the master gave
/// up on (and told to stop) is not heard.
bool from_its_slot(job_ptr self) {
  auto from = caf::actor_cast<caf::actor_addr>(self->current_sender());
  if (self->state.slot && from == self->state.slot.address())
    return true;
  spdlog::warn("report from a slot that does not hold the job ignored job_id={}",
               self->state.rec.job_id);
  return false;
}

job_actor::behavior_type job_impl(job_ptr self, job_record rec, lookup_actor lookup,
                                  master_actor master, int max_retries) {
  self->state.rec = std::move(rec);
  self->state.lookup = std::move(lookup);
  self->state.master = std::move(master);
  self->state.max_retries = max_retries;
  return {
    [=](dispatch_atom, worker_slot_actor& slot, const slot_info& info) {
      if (!local_only(self, "dispatch"))
        return;
      auto& st = self->state;
      if (!transition(self, job_state::pending)) {
        self->send(st.master, idle_atom::value, info.key, st.rec.job_id); // give the slot back
        return;
      }
      st.slot = slot;
      st.rec.slot = info.key;
      st.rec.history.back().slot = info.key;
      st.rec.node = info.node_id;
      st.rec.host_address = info.host_address;
      st.rec.gpus = info.job_gpus;
      st.rec.gpu_model = info.job_gpus.empty() ? "" : info.gpu_model;
      st.rec.reason.clear();
      // A fresh tracking secret per dispatch. The pending write stores its
      // digest and the node in the lookup table with the record, in one
      // round trip, so all three are durable before the slot touches the job.
      st.rec.job_secret = dashboard::new_job_secret();
      persist(self, [=] {
        auto& st = self->state;
        if (st.rec.state == job_state::pending && st.slot)
          self->send(st.slot, run_atom::value, st.rec, caf::actor_cast<caf::actor>(self));
      });
    },
    [=](started_atom, const std::string& id) {
      if (!from_its_slot(self) || id != self->state.rec.job_id)
        return;
      job_report rep;
      rep.job_id = id;
      rep.state = job_state::running;
      apply_report(self, rep);
    },
    [=](report_atom, const job_report& rep) -> caf::result<bool> {
      if (!from_its_slot(self))
        return false;
      if (!is_terminal(rep.state)) {
        apply_report(self, rep);
        return true;
      }
      auto rp = self->make_response_promise<bool>();
      self->state.final_ack = rp;
      apply_report(self, rep);
      if (!is_terminal(self->state.rec.state))
        rp.deliver(false); // refused: nothing to persist
      return rp;
    },
    [=](adopt_atom, worker_slot_actor& slot, const slot_info& info) -> caf::result<bool> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "adopt");
      auto& st = self->state;
      bool ours = (st.rec.state == job_state::pending || st.rec.state == job_state::running)
                  && st.rec.slot == info.key;
      if (!ours) {
        spdlog::warn("slot {} still runs job_id={}, which is {} elsewhere: its copy is discarded",
                     info.key, st.rec.job_id, to_string(st.rec.state));
        return false;
      }
      spdlog::info("slot {} kept job_id={} across the reconnection", info.key, st.rec.job_id);
      st.slot = slot;
      if (info.has_report)
        apply_report(self, info.report);
      return true;
    },
    [=](lost_atom, const std::string& reason) {
      // From the master (the slot or its node is gone), or from the slot it
      // was handed to, which was not free.
      auto& st = self->state;
      bool its_slot = st.slot
                      && caf::actor_cast<caf::actor_addr>(self->current_sender()) == st.slot.address();
      if (its_slot || local_only(self, "lost"))
        handle_lost(self, reason, !its_slot);
    },
    [=](stop_atom) -> caf::result<bool> {
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "stop");
      auto& st = self->state;
      if (is_terminal(st.rec.state))
        return make_error(ec::conflict, "job '" + st.rec.job_id + "' has already finished");
      st.stop_requested = true;
      if (st.rec.state == job_state::queued || st.rec.state == job_state::lost) {
        transition(self, job_state::cancelled);
        st.rec.reason = "stopped by user while queued";
        st.rec.end_time = now_seconds();
        finish(self);
      } else if (st.slot) {
        self->send(st.slot, stop_atom::value, st.rec.job_id);
      }
      return true;
    },
    [=](preempt_atom, int64_t priority) {
      if (!local_only(self, "preempt"))
        return;
      auto& st = self->state;
      bool placed = st.rec.state == job_state::pending || st.rec.state == job_state::running;
      if (!placed || st.stop_requested || st.preempting || !st.slot)
        return;
      st.preempting = true;
      st.rec.preempted_by = priority;
      spdlog::info("preempting job_id={} for priority {}", st.rec.job_id, priority);
      self->send(st.slot, preempt_atom::value, st.rec.job_id);
    },
    [=](placed_atom, const std::string& slot_key) -> caf::result<bool> {
      // Asked by the slot the job runs on: true only when it is still there.
      auto& rec = self->state.rec;
      if (!sender_of(self).local && !from_its_slot(self))
        return false;
      return rec.slot == slot_key
             && (rec.state == job_state::pending || rec.state == job_state::running);
    },
    [=](get_atom) -> caf::result<job_record> {
      if (auto who = sender_of(self); !who.local_or("operator"))
        return refuse(self, who, "reading the record");
      auto rec = self->state.rec;
      rec.job_secret.clear(); // only the slot that runs the job gets it
      return rec;
    },
    [=](stats_atom) -> caf::result<actor_stats> {
      if (auto who = sender_of(self); !who.local_or("operator"))
        return refuse(self, who, "stats");
      auto& rec = self->state.rec;
      return self->stats("", rec.job_id + " " + std::string(to_string(rec.state))
                               + (rec.slot.empty() ? "" : " on " + rec.slot)
                               + (rec.retries ? " retry " + std::to_string(rec.retries) : ""));
    },
  };
}

} // namespace

job_actor spawn_job(caf::actor_system& sys, job_record rec, lookup_actor lookup,
                    master_actor master, int max_retries) {
  return sys.spawn(job_impl, std::move(rec), std::move(lookup), std::move(master),
                   max_retries);
}

} // namespace atlas
