#include "runtime/node_runtime.hpp"

#include "runtime/node_parts.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/logger.hpp>
#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/cluster_door.hpp"
#include "actors/cluster_link.hpp"
#include "actors/dashboard/tracking.hpp"
#include "actors/gateway/bridge.hpp"
#include "actors/gateway/gateway.hpp"
#include "actors/policy/job_runners.hpp"
#include "actors/lookup.hpp"
#include "actors/master.hpp"
#include "actors/node.hpp"
#include "actors/peer_check.hpp"
#include "actors/worker_slot.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/http_server.hpp"
#include "adapters/process.hpp"
#include "bench/runner/bench_sleep_runner.hpp"
#include "adapters/caf_front.hpp"
#include "adapters/cgroup.hpp"
#include "adapters/process_runner.hpp"
#include "messages/errors.hpp"
#include "messages/types.hpp"
#include "library/metrics.hpp"
#include "runtime/cluster_secret.hpp"
#include "runtime/cluster_tls.hpp"
#include "library/config.hpp"
#include "runtime/docker_setup.hpp"
#include "runtime/gpu_detect.hpp"
#include "library/header_auth.hpp"
#include "library/dashboard_static.hpp"
#include "library/job_codec.hpp"
#include "library/job_files.hpp"
#include "runtime/master_lease.hpp"
#include "library/redis_server.hpp"
#include "adapters/json.hpp"
#include "library/http_answers.hpp"

namespace atlas {

using namespace node_steps;

namespace {

/// Where process jobs' cgroups go (ATLAS_CGROUP_ROOT, else the server's
/// own cgroup); "" with one line saying why when limits cannot be enforced.
std::string process_cgroups() {
  auto env = current_environment();
  auto root = env.count("ATLAS_CGROUP_ROOT") ? env.at("ATLAS_CGROUP_ROOT") : std::string{};
  auto s = cgroup::prepare(root);
  if (s.dir.empty())
    spdlog::warn("cgroup v2 limits unavailable: {}; memory/CPU limits are not enforced for "
                 "process jobs", s.why_not);
  else
    spdlog::info("cgroup v2 limits enforced for process jobs under {}", s.dir);
  return s.dir;
}

} // namespace

node_runtime::node_runtime(std::shared_ptr<node_config> cfg)
    : parts_(std::make_unique<parts>()) {
  parts_->cfg = std::move(cfg);
}

node_runtime::~node_runtime() = default;

status node_runtime::bring_up() {
  auto& rt = *parts_;
  auto& cfg = *rt.cfg;
  rt.loop.start();
  rt.processes = std::make_unique<process_supervisor>(rt.loop);
  rt.runners = std::make_unique<job_runners>();
  rt.runners->add(std::make_unique<process_runner>(*rt.processes, process_cgroups()));
  add_docker_runner(*rt.runners, cfg, rt.loop); // when this node has Docker
  for (auto& g : cfg.gpu_details)
    spdlog::info("GPU {} node={}", g, cfg.node_id);
  if (cfg.runner == "bench-sleep") { // benchmarks only, and only when configured
    auto ms = bench_sleep_ms_of(current_environment());
    if (!ms)
      return status::fail("ATLAS_BENCH_SLEEP_MS: expected a whole number of milliseconds up to 3600000");
    spdlog::warn("runner bench-sleep: jobs run NOTHING, each ends after {} ms (benchmarks only)", *ms);
    rt.runners->add(std::make_unique<bench_sleep_runner>(rt.loop, *ms));
  }
  rt.caf_cfg = std::make_unique<caf::actor_system_config>();
  register_message_types(*rt.caf_cfg);
  rt.caf_cfg->load<caf::io::middleman>();
  rt.caf_cfg->set("scheduler.policy", caf::atom("sharing"));
  // Fewer threads mean fewer cross-thread hand-offs per request (measured:
  // bench/RESULTS.md §3); more let CPU-heavy answers run side by side.
  if (cfg.actor_threads > 0)
    rt.caf_cfg->set("scheduler.max-threads", static_cast<size_t>(cfg.actor_threads));
  rt.caf_cfg->set("logger.console", caf::atom("none"));
  // A peer's message is read on the thread that reads its connection: a
  // helper thread (CAF's default) may read it after the connection closed,
  // when CAF no longer knows the sender and delivers the message as if
  // anonymous, which actors/peer_check.cpp must take for this node's own.
  rt.caf_cfg->set("middleman.workers", size_t{0});
  // Heartbeats in every process: a hung peer (not only a dead one) is seen.
  rt.caf_cfg->set("middleman.heartbeat-interval",
                  caf::timespan{std::chrono::milliseconds(cfg.heartbeat_ms)});
  rt.caf_cfg->set("middleman.connection-timeout",
                  caf::timespan{std::chrono::milliseconds(cfg.connection_timeout_ms)});
  rt.sys = std::make_unique<caf::actor_system>(*rt.caf_cfg);

  if (auto n = kill_leftover_jobs(cfg.node_dir); n > 0)
    spdlog::warn("ended {} job process group(s) left running by this node's previous run", n);
  metrics::set_identity(cfg.node_id, cfg.is_master ? "master" : "worker", server_version);
  rt.secret = ensure_cluster_secret(cfg);
  if (cfg.auth)
    cfg.metrics_token = ensure_metrics_token(cfg);
  if (auto st = make_cluster_port(rt); !st)
    return st;
  resolve_dashboard_dirs(cfg);
  spdlog::info("dashboard files: {}; job SDK: {}", cfg.web_dir.empty() ? "(none)" : cfg.web_dir,
               cfg.sdk_dir.empty() ? "(none)" : cfg.sdk_dir);
  if (!cfg.is_master) {
    rt.lookup = spawn_lookup(*rt.sys, redis_target_of(cfg), lookup_options_of(rt));
    rt.node = spawn_node(*rt.sys, context_of(rt), rt.lookup, rt.secret);
    if (auto st = ensure_redis(rt); !st)
      return st;
    return bring_up_serving(rt);
  }
  rt.node = spawn_node(*rt.sys, context_of(rt));
  if (auto st = ensure_redis(rt); !st)
    return st;
  rt.lease = std::make_unique<master_lease>(
    redis_target_of(cfg), cfg.node_id, cfg.host_address,
    std::chrono::milliseconds(cfg.lease_ttl_ms), cfg.redis_min_replica_acks,
    cfg.redis_wait_timeout_ms);
  lease_holder holder;
  std::string error;
  auto got = rt.lease->acquire(holder, error);
  if (got == master_lease::outcome::unreachable)
    return status::fail("cannot take the master lease in Redis: " + error);
  if (got == master_lease::outcome::held) {
    if (!cfg.standby)
      return status::fail("another master is active: " + holder.node_id + " (epoch "
                          + std::to_string(holder.epoch) + "), and cluster.standby is false");
    rt.standby = true;
    rt.active = holder;
    rt.lease->announce_standby();
    spdlog::info("{}", standby_line());
    return serve_standby(rt);
  }
  return bring_up_active(rt);
}

std::string node_runtime::standby_line() const {
  auto& rt = *parts_;
  if (!rt.standby)
    return {};
  std::lock_guard<std::mutex> guard(rt.active_mutex);
  return "standby master: active master is " + rt.active.node_id + " (epoch "
         + std::to_string(rt.active.epoch) + ")";
}

std::chrono::milliseconds node_runtime::tick_interval() const {
  auto& rt = *parts_;
  if (!rt.lease)
    return std::chrono::hours(1);
  // The holder renews three times per TTL; a standby looks more often, so
  // that it takes over soon after the lease lapses.
  auto third = rt.lease->ttl() / 3;
  return rt.standby ? std::min<std::chrono::milliseconds>(third, std::chrono::milliseconds(500))
                    : third;
}

node_runtime::lease_news node_runtime::tick() {
  auto& rt = *parts_;
  if (!rt.lease)
    return lease_news::none;
  lease_holder holder;
  std::string error;
  auto got = rt.standby ? rt.lease->acquire(holder, error) : rt.lease->renew(holder, error);
  if (got == master_lease::outcome::unreachable) {
    if (rt.redis_reachable)
      spdlog::warn("master lease: Redis unreachable ({}); {}", error,
                   rt.standby ? "standing by" : "writes wait for it");
    rt.redis_reachable = false;
    return lease_news::none;
  }
  if (!rt.redis_reachable)
    spdlog::info("master lease: Redis reachable again");
  rt.redis_reachable = true;
  if (!rt.standby && got == master_lease::outcome::ours)
    return lease_news::none;
  if (!rt.standby) {
    spdlog::error("lost the master lease to {} (epoch {}): stepping down", holder.node_id,
                  holder.epoch);
    return lease_news::lost;
  }
  if (got == master_lease::outcome::held) {
    std::lock_guard<std::mutex> guard(rt.active_mutex);
    if (holder.value != rt.active.value)
      spdlog::info("standby master: active master is now {} (epoch {})", holder.node_id,
                   holder.epoch);
    rt.active = holder;
    rt.lease->announce_standby();
    return lease_news::none;
  }
  std::string before;
  {
    std::lock_guard<std::mutex> guard(rt.active_mutex);
    before = rt.active.node_id + " (epoch " + std::to_string(rt.active.epoch) + ")";
  }
  spdlog::info("took over as the active master (epoch {}) after {} lapsed", holder.epoch, before);
  for (auto& s : rt.standby_servers)
    s->close();
  rt.standby_servers.clear();
  rt.standby = false;
  if (auto st = bring_up_active(rt); !st) {
    spdlog::error("taking over failed: {}", st.error());
    return lease_news::lost;
  }
  return lease_news::took_over;
}

bool node_runtime::tear_down() {
  auto& rt = *parts_;
  if (rt.sys && rt.node) {
    spdlog::info("draining node={} (up to {} s)", rt.cfg->node_id, rt.cfg->drain_timeout_s);
    caf::scoped_actor self{*rt.sys};
    self->request(rt.node, std::chrono::seconds(rt.cfg->drain_timeout_s + 15),
                  drain_atom::value, int32_t{rt.cfg->drain_timeout_s})
      .receive([](bool) {},
               [](caf::error& err) {
                 spdlog::warn("drain incomplete: {}", error_message(err));
               });
  }
  if (rt.notifications) // what it has not sent, the next master sends
    rt.notifications->stop();
  spdlog::debug("closing HTTP servers");
  for (auto& s : rt.servers)
    s->close(); // no handler runs after this
  for (auto& s : rt.standby_servers)
    s->close();
  if (rt.front)
    rt.front->close(); // the peers' connections end here
  if (rt.sys) {
    for (auto& b : rt.bridges) {
      caf::anon_send_exit(*b, caf::exit_reason::user_shutdown);
      *b = nullptr;
    }
    for (auto& s : rt.slots)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.gateway, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.tracking, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.schedules, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.retention, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.master, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.door, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.lookup, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.node, caf::exit_reason::user_shutdown);
    rt.slots.clear();
    rt.gateway = nullptr;
    rt.tracking = nullptr;
    rt.schedules = nullptr;
    rt.retention = nullptr;
    rt.master = nullptr;
    rt.door = nullptr;
    rt.lookup = nullptr;
    rt.node = nullptr;
    // Their last writes (slot gone, node left) need the lease and Redis:
    // let them finish before either goes, within a bound.
    for (int i = 0; i < 300 && rt.sys->registry().running() > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (auto left = rt.sys->registry().running(); left > 0)
      spdlog::warn("{} actor(s) still running 3 s after the stop", left);
  }
  if (rt.lease) { // a standby takes over at once, not after the TTL
    if (rt.standby)
      rt.lease->withdraw_standby();
    else
      rt.lease->release();
  }
  if (int pid = rt.redis_pid.load(); pid > 0) {
    // The drained node no longer restarts it: stop Redis so it flushes its
    // AOF, and wait until its exit callback (holding an actor handle) ran.
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 200 && rt.redis_pid.load() > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (rt.sys) {
    // Every actor of ours has its exit message. The wait stays bounded as a
    // safety net (the caller then exits at once): ~actor_system used to
    // hang on every node, for the logger reference dropped below.
    spdlog::debug("stopping the actor system ({} actors running)", rt.sys->registry().running());
    rt.sys->await_actors_before_shutdown(false);
    // ~actor_system waits until its logger is destroyed, and this thread
    // (which created the system) holds a reference to it in a thread-local:
    // drop it here, or the destructor on the other thread never returns.
    caf::logger::set_current_actor_system(nullptr);
    auto done = std::make_shared<std::promise<void>>();
    auto stopped = done->get_future();
    std::thread([sys = rt.sys.release(), done] {
      delete sys;
      done->set_value();
    }).detach();
    if (stopped.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
      spdlog::warn("the actor system did not stop within 2 s; exiting without waiting");
      return false;
    }
  }
  rt.servers.clear();
  spdlog::debug("stopping the event loop");
  rt.loop.stop();
  return true;
}

} // namespace atlas
