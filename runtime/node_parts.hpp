#pragma once

// What a running node owns (node_runtime::parts) and the steps that bring
// its parts up, shared by node_runtime.cpp (the node's life: up, tick,
// stand by, take over, down) and node_bring_up.cpp (each step). Private to
// those two files.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/lookup.hpp"
#include "actors/retention.hpp"
#include "actors/scheduler.hpp"
#include "actors/policy/job_runners.hpp"
#include "actors/worker_slot.hpp"
#include "adapters/caf_front.hpp"
#include "adapters/event_loop.hpp"
#include "adapters/http_server.hpp"
#include "adapters/process.hpp"
#include "library/config.hpp"
#include "library/notifier.hpp"
#include "messages/actors.hpp"
#include "runtime/master_lease.hpp"
#include "runtime/node_runtime.hpp"

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
  scheduler_actor schedules; // the active master's (actors/scheduler.hpp)
  retention_actor retention; // the active master's (actors/retention.hpp)
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
  // The active master's notifications (library/notifier.hpp); none on
  // standbys and workers.
  std::unique_ptr<notifier> notifications;
};

namespace node_steps {

/// Starts listening on `port` with a bridge into the gateway; requests are
/// tagged with the `listener` role so that routes can tell the ports apart.
status serve(node_runtime::parts& rt, uint16_t port, const char* listener);

/// The host part of HOST_ADDRESS: where other nodes reach this one.
std::string advertised_host(const node_config& cfg);

/// Makes sure Redis is there: the managed one is started (or an already
/// running one reused); a configured one must answer, except on workers,
/// which wait for the master's.
status ensure_redis(node_runtime::parts& rt);

/// The most one CAF message from a peer may carry. The biggest legitimate
/// ones are answers proxied from a worker's gateway: a job's log as JSON
/// (log_cap_bytes, up to 6 bytes per byte once escaped as \u00XX) or an
/// artifact (at most 256 MiB). Never less than 512 MiB.
uint32_t caf_payload_limit(const node_config& cfg);

/// Writes the master's public CAF endpoint to Redis for the workers.
status record_endpoint(node_runtime::parts& rt, const std::string& endpoint);

/// How the lookup actor writes on this node: fenced by the lease on the
/// active master, waiting for replicas when configured.
lookup_options lookup_options_of(const node_runtime::parts& rt);

/// The active master's notifications: started before its actors, so that
/// no event they write is missed by a sink seen for the first time.
status start_notifications(node_runtime::parts& rt);

/// The master's part: queue owner, its door on the cluster port, its
/// endpoint in Redis for the workers to find.
status bring_up_master(node_runtime::parts& rt);

/// The cluster port, both ways: the master accepts nodes and tools on it,
/// workers dial the master through it. With cluster.tls off it carries
/// plaintext between loopback addresses only.
status make_cluster_port(node_runtime::parts& rt);

node_context context_of(node_runtime::parts& rt);

/// The gateway, the HTTP ports and the worker slots: every node's, once it
/// knows its master (its own actor, or the one it joins).
status bring_up_serving(node_runtime::parts& rt);

/// The master holds the lease: its lookup writes fenced by it, its actors,
/// endpoint and ports; unfinished jobs are read back as after a restart.
status bring_up_active(node_runtime::parts& rt);

/// A standby's answer on every port: 503 naming the active master, and
/// its own state on /healthz. Clients go to the active master themselves.
http_response standby_answer(node_runtime::parts& rt, const http_request& req);

/// The standby's ports, until it takes over.
status serve_standby(node_runtime::parts& rt);

} // namespace node_steps

} // namespace atlas
