// The steps that bring a node's parts up: Redis, the cluster port, the
// master's actors and endpoint, the gateway with its HTTP ports and the
// worker slots, or a standby's ports (runtime/node_parts.hpp).

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
#include "actors/scheduler.hpp"
#include "actors/worker_slot.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/http_server.hpp"
#include "adapters/process.hpp"
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
#include "library/metrics.hpp"
#include "library/job_files.hpp"
#include "runtime/master_lease.hpp"
#include "library/redis_server.hpp"
#include "adapters/json.hpp"
#include "library/http_answers.hpp"

namespace atlas::node_steps {

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

status start_notifications(node_runtime::parts& rt) {
  if (rt.cfg->notify_sinks.empty())
    return status::success();
  notifier_options o;
  o.target = redis_target_of(*rt.cfg);
  o.writes.fence = rt.lease->mine().value;
  o.writes.retry_s = rt.cfg->redis_sentinels.empty() ? 10 : 60;
  o.sinks = rt.cfg->notify_sinks;
  rt.notifications = std::make_unique<notifier>(std::move(o));
  return rt.notifications->start();
}

/// The master's part: queue owner, its door on the cluster port, its
/// endpoint in Redis for the workers to find.
status bring_up_master(node_runtime::parts& rt) {
  auto& cfg = *rt.cfg;
  rt.master = spawn_master(*rt.sys, rt.cfg, rt.lookup);
  // Only here, on the master holding the lease: a standby never fires.
  rt.schedules = spawn_scheduler(*rt.sys, rt.cfg, redis_target_of(cfg), lookup_options_of(rt),
                                 rt.master);
  rt.retention = spawn_retention(*rt.sys, rt.cfg, redis_target_of(cfg), lookup_options_of(rt));
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
  cluster_peers().add_local(local_node_bytes(*rt.sys));
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
  rt.gateway = spawn_http_gateway(*rt.sys, rt.cfg, &rt.loop, rt.lookup, rt.tracking, rt.master,
                                  rt.schedules);
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
  // Until the main thread ticks again: reading a long queue back while a
  // thousand nodes reconnect may take longer than the lease lives.
  lease_keeper keeper{*rt.lease};
  rt.cfg->lease_epoch = rt.lease->mine().epoch; // before any actor reads it
  if (auto st = start_notifications(rt); !st)
    return st;
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
  if ((req.path == "/metrics" || req.path == "/api/v1/metrics") && req.method == "GET") {
    http_response r; // its own figures: Prometheus sees a standby up, and not active
    r.content_type = metrics::content_type;
    metrics::cluster_snapshot standby;
    standby.active = false;
    r.body = metrics::exposition() + metrics::cluster_text(standby);
    return r;
  }
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

} // namespace atlas::node_steps
