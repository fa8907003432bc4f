#include "actors/worker_slot.hpp"

#include <charconv>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <system_error>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/counted.hpp"
#include "actors/policy/job_runners.hpp"
#include "actors/policy/job_runtime.hpp"
#include "actors/peer_check.hpp"
#include "adapters/archive.hpp"
#include "adapters/event_loop.hpp"
#include "library/job_files.hpp"
#include "library/job_paths.hpp"

namespace fs = std::filesystem;

namespace atlas {

namespace {

struct slot_state {
  static inline const char* name = "worker-slot";
  node_context ctx;
  slot_info info;
  master_actor master;
  node_actor node;
  // The job in hand, if any.
  job_record job;
  job_actor job_handle;
  bool busy = false;
  job_runner* runner = nullptr; // what runs the job in hand
  bool started = false; // the runner has it running
  int32_t pid = 0;      // its local process group, 0 when not a local process
  bool exited = false;
  bool stop_requested = false;
  bool draining = false;
  bool requeue = false; // stopped by a node drain: the job goes back to the queue
  bool discarded = false; // the master gave the job to someone else: no report
  bool exit_held = false; // ended while the master was away: files untouched until it confirms
  // Questions to the job's lifecycle actor wait for their answer until a
  // deadline that a once-a-second tick checks: CAF's own request timeout
  // wakes its timer thread twice per request (set and cancel), twice per job.
  std::map<uint64_t, std::pair<std::chrono::steady_clock::time_point,
                               std::function<void()>>> waiting; // by token: deadline, on timeout
  uint64_t next_token = 1;
  bool ticking = false;
};

using slot_ptr = counted_pointer<worker_slot_actor, slot_state>;

/// Names the job's run on this slot for the runner: one slot runs one job at
/// a time, yet the same job may be ending here while it runs on another slot.
std::string run_id(const slot_state& st) {
  return st.job.job_id + "-slot" + std::to_string(st.info.index);
}

void finish(slot_ptr self, bool master_freed = false);

void tick_if_waiting(slot_ptr self) {
  auto& st = self->state;
  if (st.ticking || st.waiting.empty())
    return;
  st.ticking = true;
  self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
}

/// Asks the job's lifecycle actor something answered with a bool. Exactly
/// one of `answered` and `failed` runs: `failed` on an error, or once
/// `timeout` has passed without an answer (checked by the tick, so up to a
/// second late).
template <class Answered, class Failed, class... Ts>
void ask_job(slot_ptr self, std::chrono::seconds timeout, Answered answered, Failed failed,
             Ts&&... xs) {
  auto& st = self->state;
  auto token = st.next_token++;
  st.waiting.emplace(token, std::make_pair(std::chrono::steady_clock::now() + timeout, [=] {
                       auto err = caf::make_error(caf::sec::request_timeout);
                       failed(err);
                     }));
  tick_if_waiting(self);
  self->request(st.job_handle, caf::infinite, std::forward<Ts>(xs)...)
    .then(
      [=](bool b) {
        if (self->state.waiting.erase(token) > 0)
          answered(b);
      },
      [=](caf::error& err) {
        if (self->state.waiting.erase(token) > 0)
          failed(err);
      });
}

/// Tells the job's lifecycle actor what happened. When the master's side
/// cannot be reached, the slot holds on to the news (and to the job) and
/// hands it over when it registers with a master again.
void report(slot_ptr self, job_state state, std::string reason = {},
            std::optional<int64_t> rc = std::nullopt) {
  auto& st = self->state;
  job_report rep;
  rep.job_id = st.job.job_id;
  rep.state = state;
  rep.reason = std::move(reason);
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
  ask_job(
    self, std::chrono::seconds(10),
    [=](bool accepted) {
      auto& st = self->state;
      if (!final || rep.job_id != st.job.job_id)
        return;
      if (!accepted)
        spdlog::warn("master no longer assigns job_id={} to slot={}", rep.job_id, st.info.key);
      // An accepted end freed this slot on the master already.
      finish(self, accepted && is_terminal(state));
    },
    [=](const caf::error& err) {
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
  st.requeue = false;
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
void prepare(slot_ptr self, bool fetched = false) {
  auto paths = job_paths::of(*self->state.ctx.config, self->state.job.job_id);
  auto id = self->state.job.job_id;
  auto shared_fs = self->state.ctx.config->shared_fs;
  worker_slot_actor me = self;
  self->state.ctx.loop->post_work([me, id, paths, shared_fs, fetched] {
    std::error_code ec;
    fs::create_directories(fs::path(paths.log).parent_path(), ec);
    std::string error;
    std::string cwd;
    bool here = (fetched || shared_fs != "no") && fs::exists(paths.bundle, ec);
    if (!here && shared_fs == "yes") {
      error = "job bundle missing: " + paths.bundle + " (cluster.shared_fs is yes)";
    } else if (!here) {
      // Not on this node's file system: fetch it from the master first.
      caf::anon_send(me, fetch_atom::value, id, uint64_t{0}, uint64_t{0}, std::string{});
      return;
    } else {
      fs::remove_all(paths.work_dir, ec);
      archive::extract_options opts;
      opts.strip_prefix = id; // the original client packs "<job_id>/..."
      if (auto st = archive::extract_tgz(paths.bundle, paths.work_dir, opts); !st)
        error = st.error();
      else
        cwd = fs::is_directory(paths.work_dir + "/job_source", ec)
                ? paths.work_dir + "/job_source"
                : paths.work_dir;
    }
    caf::anon_send(me, prepared_atom::value, id, error, cwd);
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
      [=](http_response& r) {
        auto& st = self->state;
        if (!st.busy || st.job.job_id != id)
          return;
        auto total_header = r.headers.find("X-Atlas-Total-Size");
        if (r.status != 200 || total_header == r.headers.end()) {
          report(self, job_state::failed, "job bundle not available from the master: " + r.body);
          return;
        }
        uint64_t total = 0;
        auto& text = total_header->second;
        auto [end, bad] = std::from_chars(text.data(), text.data() + text.size(), total);
        if (bad != std::errc{} || end != text.data() + text.size()) {
          report(self, job_state::failed, "the master sent a bundle size that is not a number");
          return;
        }
        auto bundle = job_paths::of(*st.ctx.config, id).bundle;
        worker_slot_actor me = self;
        st.ctx.loop->post_work([me, id, bundle, offset, total, chunk = std::move(r.body)] {
          std::error_code ec;
          fs::create_directories(fs::path(bundle).parent_path(), ec);
          auto part = bundle + ".part";
          std::ofstream out(part, offset == 0 ? std::ios::binary | std::ios::trunc
                                              : std::ios::binary | std::ios::app);
          out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
          out.close();
          auto written = offset + chunk.size();
          std::string error;
          if (!out)
            error = "cannot write the fetched bundle to " + part;
          else if (chunk.empty() && written < total)
            error = "the master's bundle ended early";
          else if (written >= total)
            fs::rename(part, bundle, ec);
          if (ec)
            error = "cannot store the fetched bundle: " + ec.message();
          caf::anon_send(me, fetch_atom::value, id, written, total, error);
        });
      },
      [=](caf::error& err) {
        if (self->state.busy && self->state.job.job_id == id)
          report(self, job_state::failed, "fetching the job bundle failed: " + caf::to_string(err));
      });
}

void archive_work_dir(slot_ptr self);

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
    self, std::chrono::seconds(5),
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
    [=](const caf::error&) {
      auto& st = self->state;
      // A new master may have adopted the job while the old one did not
      // answer: ask the new one.
      if (st.busy && st.job.job_id == id && st.job_handle && st.job_handle != asked)
        confirm_then_archive(self);
      else
        hold();
    },
    placed_atom::value, st.info.key);
}

/// Moves the working directory into the archive on the thread pool.
void archive_work_dir(slot_ptr self) {
  auto paths = job_paths::of(*self->state.ctx.config, self->state.job.job_id);
  auto id = self->state.job.job_id;
  worker_slot_actor me = self;
  self->state.ctx.loop->post_work([me, id, paths] {
    std::error_code ec;
    std::string error;
    fs::remove_all(paths.artifacts, ec);
    fs::create_directories(paths.archive_dir, ec);
    if (fs::exists(paths.work_dir, ec)) {
      fs::rename(paths.work_dir, paths.artifacts, ec);
      if (ec) { // another file system: copy, then remove
        ec.clear();
        fs::copy(paths.work_dir, paths.artifacts,
                 fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
        if (ec)
          error = "archiving artifacts failed: " + ec.message();
        fs::remove_all(paths.work_dir, ec);
      }
    }
    caf::anon_send(me, archived_atom::value, id, error);
  });
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
  worker_slot_actor me = self;
  auto id = st.job.job_id;
  st.runner->start(
    std::move(req),
    [me, id](int pid) { caf::anon_send(me, started_atom::value, id, int32_t{pid}); },
    [me, id](process_exit ex) {
      caf::anon_send(me, exited_atom::value, id, ex.exit_status,
                     int32_t{ex.term_signal}, ex.error, ex.failure);
    });
}

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
        if (st.requeue)
          report(self, job_state::lost, "node shut down before the job started");
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
      spdlog::info("job running job_id={} slot={} runner={} pid={}", id, st.info.key,
                   st.runner->name(), pid);
      auto node_dir = st.ctx.config->node_dir;
      if (pid > 0) // a local process group: ended by the next start if this node dies
        st.ctx.loop->post_work([node_dir, id, pid] { record_job_process(node_dir, id, pid); });
      report(self, job_state::running);
      if (st.stop_requested) // a stop arrived while it was starting
        self->send(self, stop_atom::value, id);
    },
    [=](exited_atom, const std::string& id, int64_t status, int32_t sig,
        const std::string& error, const std::string& failure) {
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
      auto outcome = classify_exit(status, sig, error, st.stop_requested, st.requeue, failure);
      spdlog::info("job exited job_id={} slot={} state={} {}", id, st.info.key,
                   to_string(outcome.state), outcome.reason);
      st.job.state = outcome.state;
      st.job.reason = outcome.reason;
      st.job.has_return_code = outcome.has_return_code;
      st.job.return_code = outcome.return_code;
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
    [=](kill_atom, const std::string& id) {
      if (!local_only(self, "kill"))
        return;
      auto& st = self->state;
      if (st.busy && id == st.job.job_id && !st.exited && st.started) {
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
        st.requeue = true;
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
