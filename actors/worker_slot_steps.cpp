// The steps of a job's run on a worker slot, each a function of the slot
// actor: prepare the working directory (fetching the bundle when this node
// does not share the master's file system), start it through the node's
// runner, report to the job's lifecycle actor, archive at the end. The file
// work itself is library/job_workspace.cpp, run on the thread pool.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <system_error>

#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/policy/job_runners.hpp"
#include "actors/policy/job_runtime.hpp"
#include "actors/worker_slot_state.hpp"
#include "adapters/event_loop.hpp"
#include "library/bundle_cache.hpp"
#include "library/job_files.hpp"
#include "library/job_paths.hpp"
#include "library/job_workspace.hpp"
#include "messages/errors.hpp"

namespace atlas::slot {

/// Tells the job's lifecycle actor what happened. When the master's side
/// cannot be reached, the slot holds on to the news (and to the job) and
/// hands it over when it registers with a master again.
void report(slot_ptr self, job_state state, std::string reason, std::optional<int64_t> rc) {
  auto& st = self->state;
  job_report rep;
  rep.job_id = st.job.job_id;
  rep.state = state;
  rep.reason = std::move(reason);
  rep.cpu_seconds = st.job.cpu_seconds;
  rep.peak_memory_bytes = st.job.peak_memory_bytes;
  if (rc) {
    rep.return_code = *rc;
    rep.has_return_code = true;
  }
  st.info.has_report = true;
  st.info.report = rep;
  bool final = is_terminal(state) || state == job_state::lost;
  if (!st.job_handle) {
    spdlog::warn("holding report job_id={} state={} until a master is back", rep.job_id,
                 to_string(state));
    return;
  }
  if (state == job_state::running) {
    // One-way, on the hot path: if it is lost, the report held above is
    // handed over when the slot registers with a master again.
    self->send(st.job_handle, started_atom::value, rep.job_id);
    return;
  }
  // A late answer counts: the end was persisted, and the master may have
  // handed this slot its next job already. Only the lifecycle actor asked
  // speaks for this run (the same job sent here again has a new one).
  auto asked = st.job_handle;
  ask_job(
    self, std::chrono::seconds(10), true,
    [=](bool accepted) {
      auto& st = self->state;
      if (!final || rep.job_id != st.job.job_id || st.job_handle != asked)
        return;
      if (!accepted)
        spdlog::warn("master no longer assigns job_id={} to slot={}", rep.job_id, st.info.key);
      // An accepted end freed this slot on the master already.
      finish(self, accepted && is_terminal(state));
    },
    [=](const caf::error& err) {
      auto& st = self->state;
      if (rep.job_id != st.job.job_id || !st.job_handle)
        return;
      if (err == caf::sec::request_timeout) {
        // The lifecycle actor is slow (a loaded master, Redis), not gone:
        // it answers once the end is persisted. Asking again is safe.
        spdlog::warn("report of job_id={} not answered yet; asking again", rep.job_id);
        report(self, state, rep.reason, rc);
        return;
      }
      if (err == caf::sec::request_receiver_down && st.master) {
        // Its lifecycle actor ended without this answer (it settled the
        // job meanwhile), or the link is gone: registering again tells
        // the master what this slot holds, and it answers which it is.
        spdlog::warn("report of job_id={} found its lifecycle actor gone; registering again",
                     rep.job_id);
        self->send(st.master, register_atom::value, st.info, worker_slot_actor{self});
        return;
      }
      spdlog::warn("report of job_id={} not delivered ({}); held until a master is back",
                   rep.job_id, caf::to_string(err));
    },
    report_atom::value, rep);
}

/// The job is over on this slot: free it and ask for more work, unless the
/// master freed it already (`master_freed`: it accepted the job's end).
void finish(slot_ptr self, bool master_freed) {
  auto& st = self->state;
  auto finished = st.job.job_id;
  st.busy = false;
  st.runner = nullptr;
  st.started = false;
  st.pid = 0;
  st.exited = false;
  st.stop_requested = false;
  st.cause = stop_cause::none;
  st.time_warned = false;
  st.discarded = false;
  st.exit_held = false;
  st.info.current_job.clear();
  st.info.job_gpus.clear();
  st.info.has_report = false;
  st.info.report = job_report{};
  ++st.info.jobs_run;
  st.job = job_record{};
  st.job_handle = nullptr;
  self->send(st.node, idle_atom::value, st.info.key);
  if (!st.draining && st.master && !master_freed)
    self->send(st.master, idle_atom::value, st.info.key, finished);
}

/// Extracts the bundle on the thread pool, then reports back. `fetched`:
/// the bundle was just fetched from the master into this node's job store.
void prepare(slot_ptr self, bool fetched) {
  auto paths = job_paths::of(*self->state.ctx.config, self->state.job.job_id);
  auto id = self->state.job.job_id;
  auto shared_fs = self->state.ctx.config->shared_fs;
  auto params = self->state.job.params;
  // A scheduled run's bundle was packed under its schedule's id.
  auto packed_as = self->state.job.schedule_id.empty() ? id : self->state.job.schedule_id;
  auto cache = bundle_cache_dir(self->state.ctx.config->node_dir);
  worker_slot_actor me = self;
  self->state.ctx.loop->post_work([me, id, packed_as, paths, shared_fs, fetched, params, cache] {
    auto w = prepare_workspace(paths, packed_as, shared_fs, fetched, params, cache);
    if (w.fetch) // from the first chunk on
      caf::anon_send(me, fetch_atom::value, id, uint64_t{0}, uint64_t{0}, std::string{});
    else
      caf::anon_send(me, prepared_atom::value, id, w.error, w.cwd);
  });
}

/// Asks the master for the next chunk of the bundle and appends it to a
/// partial file on the thread pool; the last chunk renames it into place.
void fetch_bundle(slot_ptr self, uint64_t offset) {
  auto& st = self->state;
  auto id = st.job.job_id;
  if (!st.master) {
    report(self, job_state::failed, "job bundle missing on this node and no master to fetch it from");
    return;
  }
  self->request(st.master, std::chrono::seconds(60), fetch_atom::value, id, offset)
    .then(
      [=](bundle_chunk& c) {
        auto& st = self->state;
        if (!st.busy || st.job.job_id != id)
          return;
        if (c.offset != offset || c.bytes.size() > bundle_chunk_bytes) {
          report(self, job_state::failed, "the master sent a bundle chunk that was not asked for");
          return;
        }
        auto bundle = job_paths::of(*st.ctx.config, id).bundle;
        worker_slot_actor me = self;
        st.ctx.loop->post_work([me, id, bundle, c = std::move(c)] {
          auto error = store_bundle_chunk(bundle, c.offset, c.total, c.bytes);
          caf::anon_send(me, fetch_atom::value, id, c.offset + c.bytes.size(), c.total, error);
        });
      },
      [=](caf::error& err) {
        if (self->state.busy && self->state.job.job_id == id)
          report(self, job_state::failed, "job bundle not available from the master: " + error_message(err));
      });
}

/// The job ended. Its working directory is on the shared file system, and a
/// master that lost this node may have started the job again elsewhere in
/// the same place: archive only once the lifecycle confirms the job is still
/// placed here; without a master, hold the outcome until one confirms.
void confirm_then_archive(slot_ptr self) {
  auto& st = self->state;
  auto id = st.job.job_id;
  auto hold = [=] {
    auto& st = self->state;
    if (!st.busy || st.job.job_id != id)
      return;
    st.exit_held = true;
    spdlog::warn("job_id={} slot={} ended while the master was away; held until it confirms",
                 id, st.info.key);
  };
  if (!st.job_handle) {
    hold();
    return;
  }
  auto asked = st.job_handle;
  ask_job(
    self, std::chrono::seconds(5), false,
    [=](bool ours) {
      auto& st = self->state;
      if (!st.busy || st.job.job_id != id)
        return;
      if (ours) {
        archive_work_dir(self);
        return;
      }
      spdlog::warn("job_id={} is no longer placed on slot={}: this copy leaves its files alone",
                   id, st.info.key);
      finish(self);
    },
    [=](const caf::error& err) {
      auto& st = self->state;
      if (!st.busy || st.job.job_id != id)
        return;
      // A new master may have adopted the job while the old one did not
      // answer: ask the new one; a slow one (loaded, Redis), again.
      if (st.job_handle && (st.job_handle != asked || err == caf::sec::request_timeout)) {
        confirm_then_archive(self);
      } else if (st.job_handle && err == caf::sec::request_receiver_down) {
        // Its lifecycle actor ended before the job's end was reported:
        // the job was taken from this slot (requeued elsewhere).
        spdlog::warn("job_id={} is no longer placed on slot={}: this copy leaves its files alone",
                     id, st.info.key);
        finish(self);
      } else {
        hold();
      }
    },
    placed_atom::value, st.info.key);
}

/// Moves the working directory into the archive on the thread pool.
void archive_work_dir(slot_ptr self) {
  auto paths = job_paths::of(*self->state.ctx.config, self->state.job.job_id);
  auto id = self->state.job.job_id;
  worker_slot_actor me = self;
  self->state.ctx.loop->post_work([me, id, paths] {
    caf::anon_send(me, archived_atom::value, id, archive_workspace(paths));
  });
}

void schedule_time_limit(slot_ptr self) {
  auto& st = self->state;
  using ms = std::chrono::milliseconds;
  auto limit = ms(static_cast<int64_t>(st.job.time_limit_s * 1000.0));
  // The warning comes time_warning_s ahead, but never in the first half of
  // a short limit: a job that does not catch it dies of it.
  auto lead = std::min(limit / 2, ms(int64_t{st.ctx.config->time_warning_s} * 1000));
  auto warn_at = limit - lead;
  spdlog::info("time limit set job_id={} slot={} limit={}s warning_in={}ms", st.job.job_id,
               st.info.key, st.job.time_limit_s, warn_at.count());
  self->delayed_send(self, warn_at, limit_atom::value, st.job.job_id, st.runs, true);
  self->delayed_send(self, limit, limit_atom::value, st.job.job_id, st.runs, false);
}

/// Hands the prepared job to the runner this node uses for it.
void start_job(slot_ptr self, const std::string& cwd) {
  auto& st = self->state;
  auto paths = job_paths::of(*st.ctx.config, st.job.job_id);
  std::string err;
  auto launch = make_launch(*st.ctx.config, st.job, st.info, cwd, err);
  st.runner = launch ? st.ctx.runners->choose(*st.ctx.config, st.job, err) : nullptr;
  if (!st.runner) {
    st.exited = true;
    report(self, job_state::failed, err);
    return;
  }
  run_request req;
  req.job_id = st.job.job_id;
  req.run_id = run_id(st);
  req.argv = std::move(launch->argv);
  req.env = std::move(launch->env);
  req.cwd = cwd;
  req.log_path = paths.log;
  req.log_cap_bytes = st.ctx.config->log_cap_bytes;
  req.spec_json = st.job.spec;
  req.gpus = st.job.gpus; // what the master gave this job on this node
  req.cpus = st.job.cpus;
  req.memory_bytes = st.job.memory_bytes;
  worker_slot_actor me = self;
  auto id = st.job.job_id;
  st.runner->start(
    std::move(req),
    [me, id](int pid) { caf::anon_send(me, started_atom::value, id, int32_t{pid}); },
    [me, id](process_exit ex) {
      caf::anon_send(me, exited_atom::value, id, ex.exit_status,
                     int32_t{ex.term_signal}, ex.error, ex.failure, ex.cpu_seconds,
                     ex.peak_memory_bytes);
    });
}

} // namespace atlas::slot
