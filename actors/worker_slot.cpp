#include "actors/worker_slot.hpp"

#include <csignal>
#include <functional>
#include <map>
#include <system_error>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/worker_slot_state.hpp"
#include "actors/policy/job_runners.hpp"
#include "actors/policy/job_runtime.hpp"
#include "actors/peer_check.hpp"
#include "adapters/event_loop.hpp"
#include "library/job_files.hpp"
#include "library/job_paths.hpp"
#include "library/job_workspace.hpp"
#include "library/metrics.hpp"
#include "messages/errors.hpp"

namespace atlas {

namespace {

using namespace slot;

worker_slot_actor::behavior_type slot_impl(slot_ptr self, node_context ctx, int32_t index,
                                           std::vector<std::string> gpus,
                                           master_actor master, node_actor node) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.master = master;
  st.node = node;
  st.info.node_id = st.ctx.config->node_id;
  st.info.host_address = st.ctx.config->host_address;
  st.info.index = index;
  st.info.key = st.info.node_id + "/" + std::to_string(index);
  st.info.gpus = std::move(gpus);
  if (!st.info.gpus.empty())
    st.info.gpu_model = st.ctx.config->gpu_model;
  st.info.node_cpus = st.ctx.config->node_cpus;
  st.info.node_memory_bytes = st.ctx.config->node_memory_bytes;
  if (master) // worker nodes hand the master over once they joined
    self->send(master, register_atom::value, st.info, worker_slot_actor{self});
  self->send(node, register_atom::value, worker_slot_actor{self});
  spdlog::info("slot ready node={} slot={}", st.info.node_id, st.info.key);
  return {
    [=](run_atom, job_record& rec, caf::actor& job) {
      // Work comes from the master, with a lifecycle actor of the master's.
      if (auto who = sender_of(self); !who.local_or("master") || !on_sender_node(self, job.address())) {
        refuse(self, who, "run");
        return;
      }
      auto& st = self->state;
      if (st.busy || st.draining) {
        // The master only sends work to free slots; refuse loudly otherwise.
        spdlog::error("slot busy, job refused job_id={} slot={}", rec.job_id, st.info.key);
        self->send(caf::actor_cast<job_actor>(job), lost_atom::value,
                   std::string{"slot " + st.info.key + " was not free"});
        return;
      }
      st.busy = true;
      st.job = std::move(rec);
      st.job_handle = caf::actor_cast<job_actor>(job);
      st.info.current_job = st.job.job_id;
      st.info.job_gpus = st.job.gpus;
      spdlog::info("preparing job job_id={} slot={}", st.job.job_id, st.info.key);
      prepare(self);
    },
    [=](prepared_atom, const std::string& id, const std::string& error,
        const std::string& cwd) {
      if (!local_only(self, "prepared"))
        return;
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id)
        return;
      if (!error.empty()) {
        spdlog::warn("job failed before start job_id={} slot={}: {}", id, st.info.key, error);
        report(self, job_state::failed, error);
      } else if (st.stop_requested) {
        if (st.cause == stop_cause::drain)
          report(self, job_state::lost, "node shut down before the job started");
        else if (st.cause == stop_cause::preempted)
          report(self, job_state::lost, "preempted by a job of a higher priority before it started");
        else
          report(self, job_state::cancelled, "stopped by user before it started");
      } else {
        start_job(self, cwd);
      }
    },
    [=](started_atom, const std::string& id, int32_t pid) {
      if (!local_only(self, "started"))
        return;
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id)
        return;
      st.started = true;
      st.pid = pid;
      metrics::slot_started();
      spdlog::info("job running job_id={} slot={} runner={} pid={}", id, st.info.key,
                   st.runner->name(), pid);
      auto node_dir = st.ctx.config->node_dir;
      if (pid > 0) // a local process group: ended by the next start if this node dies
        st.ctx.loop->post_work([node_dir, id, pid] { record_job_process(node_dir, id, pid); });
      report(self, job_state::running);
      ++st.runs;
      if (st.stop_requested) // a stop arrived while it was starting
        self->send(self, stop_atom::value, id);
      else if (st.job.time_limit_s > 0)
        schedule_time_limit(self);
    },
    [=](exited_atom, const std::string& id, int64_t status, int32_t sig,
        const std::string& error, const std::string& failure, double cpu_seconds,
        uint64_t peak_memory_bytes) {
      if (!local_only(self, "exited"))
        return;
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id)
        return;
      st.exited = true;
      auto node_dir = st.ctx.config->node_dir;
      if (st.pid > 0)
        st.ctx.loop->post_work([node_dir, id] { forget_job_process(node_dir, id); });
      if (st.discarded) {
        spdlog::info("discarded copy ended job_id={} slot={}", id, st.info.key);
        finish(self);
        return;
      }
      // A job that does not catch the warning signal dies of it: its time limit ended it.
      if (st.cause == stop_cause::none && st.time_warned && sig == st.ctx.config->warning_signal)
        st.cause = stop_cause::time_limit;
      auto outcome = classify_exit(status, sig, error, st.cause, failure);
      spdlog::info("job exited job_id={} slot={} state={} {}", id, st.info.key,
                   to_string(outcome.state), outcome.reason);
      st.job.state = outcome.state;
      st.job.reason = outcome.reason;
      st.job.has_return_code = outcome.has_return_code;
      st.job.return_code = outcome.return_code;
      st.job.cpu_seconds = cpu_seconds;
      st.job.peak_memory_bytes = peak_memory_bytes;
      confirm_then_archive(self);
    },
    [=](archived_atom, const std::string& id, const std::string& error) {
      if (!local_only(self, "archived"))
        return;
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id)
        return;
      if (!error.empty())
        spdlog::warn("job_id={} slot={}: {}", id, st.info.key, error);
      std::optional<int64_t> rc;
      if (st.job.has_return_code)
        rc = st.job.return_code;
      report(self, st.job.state, st.job.reason, rc);
    },
    [=](stop_atom, const std::string& id) {
      if (auto who = sender_of(self); !who.local_or("master")) {
        refuse(self, who, "stop");
        return;
      }
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id || st.exited)
        return;
      st.stop_requested = true;
      if (st.cause == stop_cause::none)
        st.cause = stop_cause::user;
      if (!st.started)
        return; // not started yet: prepared/started see the flag
      spdlog::info("stopping job job_id={} slot={} grace={}s", id, st.info.key,
                   st.ctx.config->stop_grace_s);
      st.runner->signal(run_id(st), SIGTERM);
      self->delayed_send(self, std::chrono::seconds(st.ctx.config->stop_grace_s),
                         kill_atom::value, id);
    },
    [=](tick_atom) {
      if (!local_only(self, "tick"))
        return;
      auto& st = self->state;
      st.ticking = false;
      auto now = std::chrono::steady_clock::now();
      std::vector<std::function<void()>> expired;
      for (auto w = st.waiting.begin(); w != st.waiting.end();) {
        if (w->second.first <= now) {
          expired.push_back(std::move(w->second.second));
          w = st.waiting.erase(w);
        } else {
          ++w;
        }
      }
      for (auto& on_timeout : expired)
        on_timeout();
      tick_if_waiting(self);
    },
    [=](preempt_atom, const std::string& id) {
      if (auto who = sender_of(self); !who.local_or("master")) {
        refuse(self, who, "preempt");
        return;
      }
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id || st.exited || st.stop_requested)
        return;
      st.cause = stop_cause::preempted;
      spdlog::info("preempting job job_id={} slot={}", id, st.info.key);
      if (st.started) // the warning first, so the job knows why SIGTERM follows
        st.runner->signal(run_id(st), st.ctx.config->warning_signal);
      self->send(self, stop_atom::value, id);
    },
    [=](limit_atom, const std::string& id, uint64_t run, bool warning) {
      if (!local_only(self, "limit"))
        return;
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id || run != st.runs || !st.started || st.exited
          || st.stop_requested)
        return; // an earlier job's timer, or it is stopping already
      if (warning) {
        spdlog::info("time limit near, warning job_id={} slot={} signal={}", id, st.info.key,
                     st.ctx.config->warning_signal);
        st.time_warned = true;
        st.runner->signal(run_id(st), st.ctx.config->warning_signal);
        return;
      }
      spdlog::info("time limit reached job_id={} slot={} limit={}s", id, st.info.key,
                   st.job.time_limit_s);
      st.cause = stop_cause::time_limit;
      self->send(self, stop_atom::value, id);
    },
    [=](kill_atom, const std::string& id) {
      if (!local_only(self, "kill"))
        return;
      auto& st = self->state;
      // Only the run being stopped: a job requeued (preempted, drained) may
      // already run here again under the same id when this arrives.
      if (st.busy && id == st.job.job_id && !st.exited && st.started && st.stop_requested) {
        spdlog::warn("grace period over, killing job_id={} slot={}", id, st.info.key);
        st.runner->signal(run_id(st), SIGKILL);
      }
    },
    [=](drain_atom, bool stop_job) {
      if (!local_only(self, "drain"))
        return;
      auto& st = self->state;
      if (!st.draining && st.master)
        self->send(st.master, drain_atom::value, st.info.key);
      st.draining = true;
      if (stop_job && st.busy) {
        st.cause = stop_cause::drain;
        self->send(self, stop_atom::value, st.job.job_id);
      }
    },
    [=](get_atom) -> caf::result<slot_info> {
      if (auto who = sender_of(self); !who.local_or("master"))
        return refuse(self, who, "get");
      return self->state.info;
    },
    [=](stats_atom) -> caf::result<actor_stats> {
      if (auto who = sender_of(self); !who.local_or("master"))
        return refuse(self, who, "stats");
      auto& st = self->state;
      std::string summary = st.draining ? "draining, " : "";
      if (!st.busy)
        summary += "free";
      else
        summary += "job " + st.job.job_id
                   + (st.pid > 0     ? " pid " + std::to_string(st.pid)
                      : st.started ? std::string(" running (") + st.runner->name() + ")"
                                   : std::string(" preparing"))
                   + (st.stop_requested ? " (stopping)" : "");
      if (!st.master)
        summary += ", no master";
      return self->stats(st.info.node_id, summary);
    },
    [=](register_atom, caf::actor& new_master) {
      if (!local_only(self, "register"))
        return;
      auto& st = self->state;
      st.master = caf::actor_cast<master_actor>(new_master);
      st.job_handle = nullptr; // the new master hands out new lifecycle actors
      self->send(st.master, register_atom::value, st.info, worker_slot_actor{self});
    },
    [=](fetch_atom, const std::string& id, uint64_t written, uint64_t total,
        const std::string& error) {
      if (!local_only(self, "fetch"))
        return;
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id)
        return;
      if (!error.empty())
        report(self, job_state::failed, error);
      else if (total > 0 && written >= total)
        prepare(self, true); // the bundle is in place now
      else
        fetch_bundle(self, written);
    },
    [=](adopt_atom, const std::string& id, caf::actor& job) {
      if (auto who = sender_of(self); !who.local_or("master") || !on_sender_node(self, job.address())) {
        refuse(self, who, "adopt");
        return;
      }
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id)
        return;
      st.job_handle = caf::actor_cast<job_actor>(job);
      if (st.exit_held) { // the master confirmed the job is still ours
        st.exit_held = false;
        archive_work_dir(self);
      }
    },
    [=](discard_atom, const std::string& id) {
      if (auto who = sender_of(self); !who.local_or("master")) {
        refuse(self, who, "discard");
        return;
      }
      auto& st = self->state;
      if (!st.busy || id != st.job.job_id)
        return;
      if (st.exited || !st.started) { // nothing runs (anymore): just forget it
        finish(self);
        return;
      }
      st.discarded = true;
      spdlog::warn("killing discarded copy job_id={} slot={}", id, st.info.key);
      st.runner->signal(run_id(st), SIGKILL);
    },
  };
}

} // namespace

worker_slot_actor spawn_worker_slot(caf::actor_system& sys, node_context ctx,
                                    int32_t index, std::vector<std::string> gpus,
                                    master_actor master, node_actor node) {
  return sys.spawn(slot_impl, std::move(ctx), index, std::move(gpus), std::move(master),
                   std::move(node));
}

} // namespace atlas
