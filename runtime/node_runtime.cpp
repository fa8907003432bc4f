#include "runtime/node_runtime.hpp"

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
#include "adapters/process_runner.hpp"
#include "messages/errors.hpp"
#include "messages/types.hpp"
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

/// Everything a running node owns, in the order it is torn down.
struct node_runtime::parts {
  std::shared_ptr<node_config> cfg;
  event_loop loop;
  std::unique_ptr<process_supervisor> processes;
  std::unique_ptr<job_runners> runners; // use `processes`: torn down before it
  std::atomic<int> redis_pid{0};
  std::unique_ptr<caf::actor_system_config> caf_cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::vector<std::unique_ptr<http_server>> servers;
  std::unique_ptr<caf_front> front; // the cluster port (adapters/caf_front.hpp)
  node_actor node;
  lookup_actor lookup;
  master_actor master;
  cluster_actor door;
  tracking_actor tracking;
  http_gateway_actor gateway;
  std::vector<worker_slot_actor> slots;
  // Shared with each server's handler; emptied once the servers are closed.
  std::vector<std::shared_ptr<http_bridge_actor>> bridges;
  std::string secret; // the cluster secret (runtime/cluster_secret.hpp)
  // Masters only: the lease, and while standing by, who holds it and the
  // servers that say so on this node's ports.
  std::unique_ptr<master_lease> lease;
  bool standby = false;
  bool redis_reachable = true; // for logging a change only
  std::mutex active_mutex;     // `active` is read by the standby servers' loop
  lease_holder active;
  std::vector<std::unique_ptr<http_server>> standby_servers;
};

namespace {

/// Starts listening on `port` with a bridge into the gateway; requests are
/// tagged with the `listener` role so that routes can tell the ports apart.
status serve(node_runtime::parts& rt, uint16_t port, const char* listener) {
  http_server_options opts;
  opts.host = rt.cfg->http_host;
  opts.port = port;
  opts.max_header_bytes = rt.cfg->max_header_bytes;
  opts.max_body_bytes = rt.cfg->max_body_bytes;
  opts.max_upload_bytes = rt.cfg->max_upload_bytes;
  opts.upload_dir = rt.cfg->node_dir + "/uploads";
  opts.idle_timeout_ms = rt.cfg->idle_timeout_s * 1000;
  // -p: the bearer token is checked from the headers, before any body is read.
  opts.header_check = header_auth_check(rt.cfg, listener, rt.loop);
  auto bridge_slot = std::make_shared<http_bridge_actor>();
  auto server = std::make_unique<http_server>(
    rt.loop, opts, [bridge_slot, listener](http_request&& req, uint64_t token) {
      req.listener = listener;
      caf::anon_send(*bridge_slot, std::move(req), token);
    });
  *bridge_slot = spawn_http_bridge(*rt.sys, server.get(), rt.gateway);
  rt.bridges.push_back(bridge_slot);
  auto st = server->listen();
  if (!st)
    return st;
  rt.servers.push_back(std::move(server));
  return status::success();
}

/// The host part of HOST_ADDRESS: where other nodes reach this one.
std::string advertised_host(const node_config& cfg) {
  auto rest = cfg.host_address.substr(cfg.host_address.find("://") + 3);
  auto end = rest.rfind(':');
  return rest.substr(0, end == std::string::npos ? rest.find('/') : end);
}

/// Makes sure Redis is there: the managed one is started (or an already
/// running one reused); a configured one must answer, except on workers,
/// which wait for the master's.
status ensure_redis(node_runtime::parts& rt) {
  auto& cfg = *rt.cfg;
  if (cfg.manage_redis) {
    // Where it answers: REDIS_ADDRESS's own address (the guide names the
    // master's network address), loopback for names of this machine.
    auto host = is_loopback_host(cfg.redis_host) || cfg.redis_host.find_first_not_of("0123456789.") != std::string::npos
                  ? std::string{"127.0.0.1"} : cfg.redis_host;
    if (port_in_use(host, cfg.redis_port)) {
      if (!redis_answers(host, cfg.redis_port, std::chrono::seconds(2)))
        return status::fail("port " + std::to_string(cfg.redis_port)
                            + " (Redis) is in use by another program");
      spdlog::warn("using the Redis already running on port {}", cfg.redis_port);
      return status::success();
    }
    caf::anon_send(rt.node, redis_atom::value);
    if (!redis_answers(host, cfg.redis_port, std::chrono::seconds(15)))
      return status::fail("redis-server did not start on port " + std::to_string(cfg.redis_port)
                          + "; see " + cfg.node_dir + "/redis/redis.log");
    return status::success();
  }
  if (redis_answers(redis_target_of(cfg), std::chrono::seconds(5)))
    return status::success();
  auto where = redis_target_of(cfg).describe();
  if (cfg.is_master)
    return status::fail("cannot reach Redis at " + where
                        + " (REDIS_ADDRESS or database.config.yaml)");
  spdlog::warn("cannot reach Redis at {} yet; waiting for the master", where);
  return status::success();
}

/// The most one CAF message from a peer may carry. The biggest legitimate
/// ones are answers proxied from a worker's gateway: a job's log as JSON
/// (log_cap_bytes, up to 6 bytes per byte once escaped as \u00XX) or an
/// artifact (at most 256 MiB). Never less than 512 MiB.
uint32_t caf_payload_limit(const node_config& cfg) {
  const uint64_t logs = 6 * (cfg.log_cap_bytes + 4096) + (16ull << 20);
  return static_cast<uint32_t>(std::min<uint64_t>(std::max<uint64_t>(logs, 512ull << 20),
                                                  UINT32_MAX));
}

/// Writes the master's public CAF endpoint to Redis for the workers.
status record_endpoint(node_runtime::parts& rt, const std::string& endpoint) {
  caf::scoped_actor self{*rt.sys};
  status result = status::success();
  self->request(rt.lookup, std::chrono::seconds(30), endpoint_atom::value, endpoint)
    .receive([](bool) {},
             [&](caf::error& err) {
               result = status::fail("cannot record the master's endpoint in Redis: "
                                     + error_message(err));
             });
  spdlog::info("master endpoint {} recorded", endpoint);
  return result;
}

/// How the lookup actor writes on this node: fenced by the lease on the
/// active master, waiting for replicas when configured.
lookup_options lookup_options_of(const node_runtime::parts& rt) {
  lookup_options o;
  auto& cfg = *rt.cfg;
  // With sentinels, long enough for a failover (down-after plus election).
  o.retry_s = cfg.redis_sentinels.empty() ? 10 : 60;
  if (rt.lease)
    o.fence = rt.lease->mine().value;
  o.min_replica_acks = cfg.redis_min_replica_acks;
  o.wait_timeout_ms = cfg.redis_wait_timeout_ms;
  return o;
}

/// The master's part: queue owner, its door on the cluster port, its
/// endpoint in Redis for the workers to find.
status bring_up_master(node_runtime::parts& rt) {
  auto& cfg = *rt.cfg;
  rt.master = spawn_master(*rt.sys, rt.cfg, rt.lookup);
  rt.door = spawn_cluster_door(*rt.sys, rt.secret, rt.master);
  if (auto st = rt.front->listen(); !st)
    return st;
  return record_endpoint(rt, advertised_host(cfg) + ":" + std::to_string(rt.front->port()));
}

/// The cluster port, both ways: the master accepts nodes and tools on it,
/// workers dial the master through it. With cluster.tls off it carries
/// plaintext between loopback addresses only.
status make_cluster_port(node_runtime::parts& rt) {
  auto& cfg = *rt.cfg;
  cluster_peers().set_local(local_node_bytes(*rt.sys));
  caf_front_options fo;
  fo.port = cfg.caf_port;
  fo.limits.payload = caf_payload_limit(cfg);
  // A peer that cannot finish its handshake in that time is as dead as a
  // silent one; a worker dialling a frozen master gives up and tries the
  // endpoint a standby has recorded since.
  fo.handshake_ms = static_cast<uint64_t>(std::max(1000, cfg.connection_timeout_ms));
  if (cfg.cluster_tls) {
    if (cfg.is_master) {
      if (auto st = ensure_cluster_ca(cfg); !st)
        return st;
      std::string error; // a master without a usable certificate says so now
      if (!node_tls_context(cfg, error))
        return status::fail(error);
    }
    // Made again at most hourly, so that a certificate renewed in its last
    // 30 days (runtime/cluster_tls.hpp) is picked up without a restart.
    struct cached {
      std::shared_ptr<tls_context> ctx;
      std::chrono::steady_clock::time_point made;
    };
    auto cache = std::make_shared<cached>();
    auto shared = rt.cfg;
    fo.tls = [shared, cache](std::string& error) { // the loop thread only
      auto now = std::chrono::steady_clock::now();
      if (!cache->ctx || now - cache->made > std::chrono::hours(1)) {
        if (auto fresh = node_tls_context(*shared, error); fresh || !cache->ctx) {
          cache->ctx = std::move(fresh);
          cache->made = now;
        }
      }
      return cache->ctx;
    };
  } else {
    if (!is_loopback_host(advertised_host(cfg)))
      return status::fail("cluster.tls: false is for one machine only, and HOST_ADDRESS ("
                          + cfg.host_address + ") is not a loopback address");
    spdlog::warn("cluster.tls is off: nodes talk in plaintext, on loopback only");
    fo.host = "127.0.0.1";
  }
  fo.attach = [&rt](int fd, const peer_identity&) {
    attach_inbound(*rt.sys, fd, rt.door, rt.front->port());
  };
  rt.front = std::make_unique<caf_front>(rt.loop, fo);
  return status::success();
}

node_context context_of(node_runtime::parts& rt) {
  return node_context{rt.cfg, &rt.loop, rt.processes.get(), rt.runners.get(), &rt.redis_pid,
                      rt.front.get()};
}

/// The gateway, the HTTP ports and the worker slots: every node's, once it
/// knows its master (its own actor, or the one it joins).
status bring_up_serving(node_runtime::parts& rt) {
  auto& cfg = *rt.cfg;
  // Writes as the lookup does: fenced by the lease on the active master.
  rt.tracking = spawn_tracking(*rt.sys, redis_target_of(cfg), lookup_options_of(rt));
  caf::anon_send(rt.node, register_atom::value, rt.tracking);
  rt.gateway = spawn_http_gateway(*rt.sys, rt.cfg, &rt.loop, rt.lookup, rt.tracking, rt.master);
  caf::anon_send(rt.node, register_atom::value, rt.gateway);
  if (rt.master) { // the master's own jobs are answered by its own gateway
    node_info me{cfg.node_id, cfg.host_address, server_version, cfg.num_workers, now_seconds(),
                 cfg.gpu_details};
    caf::anon_send(rt.master, join_atom::value, me, caf::actor_cast<caf::actor>(rt.gateway),
                   caf::actor_cast<caf::actor>(rt.node));
    caf::anon_send(rt.node, register_atom::value, rt.master);
  }
  if (auto st = serve(rt, cfg.http_port, "api"); !st)
    return st;
  if (cfg.is_master && cfg.gateway_port != 0 && cfg.gateway_port != cfg.http_port)
    if (auto st = serve(rt, cfg.gateway_port, "gateway"); !st)
      return st;
  auto slot_gpus = gpus_per_slot(cfg.gpus, cfg.num_workers); // -g: one GPU each, usually
  if (cfg.is_master && cfg.dashboard_port != 0 && cfg.dashboard_port != cfg.http_port)
    if (auto st = serve(rt, cfg.dashboard_port, "dashboard"); !st)
      return st;
  auto ctx = context_of(rt);
  for (int i = 0; i < cfg.num_workers; ++i)
    rt.slots.push_back(spawn_worker_slot(*rt.sys, ctx, i, slot_gpus[static_cast<size_t>(i)],
                                         rt.master, rt.node));
  if (!cfg.is_master)
    caf::anon_send(rt.node, connect_atom::value);
  return status::success();
}

/// The master holds the lease: its lookup writes fenced by it, its actors,
/// endpoint and ports; unfinished jobs are read back as after a restart.
status bring_up_active(node_runtime::parts& rt) {
  rt.cfg->lease_epoch = rt.lease->mine().epoch; // before any actor reads it
  rt.lookup = spawn_lookup(*rt.sys, redis_target_of(*rt.cfg), lookup_options_of(rt));
  if (auto st = bring_up_master(rt); !st)
    return st;
  return bring_up_serving(rt);
}

/// A standby's answer on every port: 503 naming the active master, and
/// its own state on /healthz. Clients go to the active master themselves.
http_response standby_answer(node_runtime::parts& rt, const http_request& req) {
  lease_holder active;
  {
    std::lock_guard<std::mutex> guard(rt.active_mutex);
    active = rt.active;
  }
  bool health = req.path == "/healthz" || req.path == "/api/v1/healthz";
  json::writer w;
  w.begin_object();
  if (health)
    w.kv("status", "ok").kv("node", rt.cfg->node_id).kv("role", "standby");
  else
    w.kv("error", "this is a standby master; the active master is " + active.node_id + " at "
                    + active.host_address);
  w.kv("active_master", active.node_id).kv("active_address", active.host_address)
    .kv("epoch", active.epoch).end_object();
  return json_answer(health ? 200 : 503, w.take());
}

/// The standby's ports, until it takes over.
status serve_standby(node_runtime::parts& rt) {
  auto& cfg = *rt.cfg;
  for (uint16_t port : std::set<uint16_t>{cfg.http_port, cfg.gateway_port, cfg.dashboard_port}) {
    if (port == 0)
      continue;
    http_server_options opts;
    opts.host = cfg.http_host;
    opts.port = port;
    opts.max_header_bytes = cfg.max_header_bytes;
    opts.max_body_bytes = cfg.max_body_bytes;
    opts.upload_dir = cfg.node_dir + "/uploads";
    opts.idle_timeout_ms = cfg.idle_timeout_s * 1000;
    auto* parts = &rt;
    // Answered from the headers: no body is read, whatever its size or kind.
    opts.header_check = [parts](const http_request& req) -> std::optional<http_response> {
      return standby_answer(*parts, req);
    };
    auto server_slot = std::make_shared<http_server*>(nullptr);
    auto server = std::make_unique<http_server>(
      rt.loop, opts, [server_slot, parts](http_request&& req, uint64_t token) {
        (*server_slot)->respond(token, standby_answer(*parts, req));
      });
    *server_slot = server.get();
    if (auto st = server->listen(); !st)
      return st;
    rt.standby_servers.push_back(std::move(server));
  }
  return status::success();
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
  rt.runners->add(std::make_unique<process_runner>(*rt.processes));
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
  // Heartbeats in every process: a hung peer (not only a dead one) is seen.
  rt.caf_cfg->set("middleman.heartbeat-interval",
                  caf::timespan{std::chrono::milliseconds(cfg.heartbeat_ms)});
  rt.caf_cfg->set("middleman.connection-timeout",
                  caf::timespan{std::chrono::milliseconds(cfg.connection_timeout_ms)});
  rt.sys = std::make_unique<caf::actor_system>(*rt.caf_cfg);

  if (auto n = kill_leftover_jobs(cfg.node_dir); n > 0)
    spdlog::warn("ended {} job process group(s) left running by this node's previous run", n);
  rt.secret = ensure_cluster_secret(cfg);
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
    caf::anon_send_exit(rt.master, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.door, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.lookup, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rt.node, caf::exit_reason::user_shutdown);
    rt.slots.clear();
    rt.gateway = nullptr;
    rt.tracking = nullptr;
    rt.master = nullptr;
    rt.door = nullptr;
    rt.lookup = nullptr;
    rt.node = nullptr;
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
