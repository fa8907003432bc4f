// Local runs: a plain `python main.py` outside the cluster that records
// what it tracks, as the original Atlas did when an execution config named
// default existed. No slot runs it, so it never enters the queue, a slot's
// books or recovery: the master only writes its record when it starts and
// when the SDK (or a stop) ends it.

#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/master_dependencies.hpp"
#include "actors/master_state.hpp"
#include "library/job_codec.hpp"
#include "library/metrics.hpp"
#include "messages/errors.hpp"

namespace atlas {

caf::result<std::string> start_local_run(master_ptr self, job_record rec) {
  auto& st = self->state;
  auto id = rec.job_id;
  if (st.jobs.count(id) || st.queued.count(id) || st.submitting.count(id) || st.held.count(id))
    return make_error(ec::conflict, "job '" + id + "' already exists");
  auto now = now_seconds();
  rec.state = job_state::running;
  rec.seq = st.next_seq();
  rec.queued_time = rec.start_time = now;
  rec.history = {job_transition{job_state::queued, now, {}},
                 job_transition{job_state::running, now, {}}};
  rec.after.clear(); // it runs already: nothing to wait for
  auto rp = self->make_response_promise<std::string>();
  self->request(st.lookup, caf::infinite, enqueue_atom::value, rec)
    .then(
      [=](bool) mutable {
        metrics::submitted();
        spdlog::info("local run started job_id={} user={} project={}", id, rec.username,
                     rec.project_name);
        rp.deliver(id);
      },
      [=](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

caf::result<bool> end_local_run(master_ptr self, job_report rep) {
  auto& st = self->state;
  auto id = rep.job_id;
  if (!is_terminal(rep.state))
    return make_error(ec::invalid_argument, "a local run ends completed, failed or cancelled");
  if (!st.local_ending.insert(id).second)
    return make_error(ec::conflict, "job '" + id + "' is already ending");
  auto rp = self->make_response_promise<bool>();
  auto give_up = [=](caf::error err) mutable {
    self->state.local_ending.erase(id);
    rp.deliver(std::move(err));
  };
  self->request(st.lookup, caf::infinite, get_atom::value, id)
    .then(
      [=](job_record& rec) mutable {
        if (!rec.local_run)
          return give_up(make_error(ec::invalid_argument, "job '" + id + "' is not a local run"));
        if (rec.state != job_state::running)
          return give_up(make_error(ec::conflict, "job '" + id + "' has already ended ("
                                                    + std::string(to_string(rec.state)) + ")"));
        auto now = now_seconds();
        rec.state = rep.state;
        rec.end_time = now;
        rec.return_code = rep.return_code;
        rec.has_return_code = rep.has_return_code;
        rec.reason = rep.reason;
        rec.history.push_back(job_transition{rep.state, now, {}});
        persist_record(self, rec, [=]() mutable {
          self->state.local_ending.erase(id);
          spdlog::info("local run ended job_id={} state={} {}", id, to_string(rep.state),
                       rep.reason);
          metrics::ended(rep.state, rep.reason);
          rp.deliver(true);
        });
        dependency_ended(self, id, rep.state);
      },
      give_up);
  return rp;
}

caf::result<bool> stop_local_run(master_ptr self, const std::string& id) {
  auto not_active = make_error(ec::not_found, "job '" + id + "' is not queued or running");
  auto rp = self->make_response_promise<bool>();
  // Only a running local run is stopped here (its process may be gone:
  // a stop is how its owner ends a run that crashed without reporting).
  self->request(self->state.lookup, caf::infinite, get_atom::value, id)
    .then(
      [=](job_record& rec) mutable {
        if (!rec.local_run || rec.state != job_state::running) {
          rp.deliver(not_active);
          return;
        }
        job_report rep;
        rep.job_id = id;
        rep.state = job_state::cancelled;
        rep.reason = "stopped by user (a local run: its process is not stopped)";
        self->request(caf::actor_cast<master_actor>(self), caf::infinite, local_run_atom::value,
                      rep)
          .then([=](bool ok) mutable { rp.deliver(ok); },
                [=](caf::error& err) mutable { rp.deliver(err); });
      },
      [=](caf::error&) mutable { rp.deliver(not_active); });
  return rp;
}

} // namespace atlas
