#include "actors/policy/queued_record.hpp"

namespace atlas {

namespace {

bool step(job_record& rec, job_state to, double now) {
  if (!can_transition(rec.state, to))
    return false;
  rec.state = to;
  rec.history.push_back(job_transition{to, now, {}});
  return true;
}

} // namespace

bool cancel_queued_record(job_record& rec, double now) {
  if (rec.state != job_state::queued || !step(rec, job_state::cancelled, now))
    return false;
  rec.reason = stopped_while_queued;
  rec.end_time = now;
  return true;
}

bool requeue_lost_record(job_record& rec, const std::string& reason, int default_max_retries,
                         double now) {
  if (rec.state != job_state::lost)
    return rec.state == job_state::queued;
  auto allowed = rec.max_retries >= 0 ? rec.max_retries : default_max_retries;
  if (rec.retries >= allowed) {
    step(rec, job_state::failed, now);
    rec.reason = "lost: " + reason + " (no retries left)";
    rec.end_time = now;
    return false;
  }
  ++rec.retries;
  step(rec, job_state::queued, now);
  rec.reason = reason;
  rec.slot.clear();
  rec.node.clear();
  rec.host_address.clear();
  rec.gpus.clear();
  rec.start_time = 0;
  rec.job_secret.clear();
  return true;
}

queued_job queue_entry_of(const job_record& rec) {
  queued_job q;
  q.job_id = rec.job_id;
  q.username = rec.username;
  q.priority = rec.priority;
  q.num_gpus = rec.num_gpus;
  q.pin = rec.pin;
  q.seq = rec.seq;
  q.queued_time = rec.queued_time;
  q.groups = rec.groups;
  q.cpus = rec.cpus;
  q.memory_bytes = rec.memory_bytes;
  q.sweep_id = rec.sweep_id;
  q.sweep_limit = rec.sweep_limit;
  q.preempted = rec.state == job_state::queued && rec.reason.rfind("preempted", 0) == 0;
  return q;
}

} // namespace atlas
