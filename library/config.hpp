#pragma once

// Configuration of a node and of the CLI: the Atlas files under
// $FOUNDATIONS_HOME/config/ (layout of the original installer), then
// atlas.config.yaml, then environment variables, which win. Defaults live in
// the structs below and nowhere else.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "adapters/status.hpp"

namespace atlas {

/// Everything `atlas-server start` needs to know about this node.
struct node_config {
  // --- identity and role
  std::string foundations_home;  // $FOUNDATIONS_HOME, default ~/.foundations
  std::string host_address = "http://127.0.0.1:5000/"; // HOST_ADDRESS, normalised with trailing '/'
  std::string http_host = "0.0.0.0"; // where the node API listens
  uint16_t http_port = 5000;         // from HOST_ADDRESS
  std::string role = "auto";         // --role: auto | master | worker
  bool is_master = true;             // resolved from role and REDIS_ADDRESS
  std::string node_id;               // "<host>-<port>" of HOST_ADDRESS, safe as a path segment
  std::string node_dir;              // <home>/nodes/<node_id>: pid file, log, redis data
  int num_workers = 1;               // NUM_WORKERS; 0 = runs no jobs
  bool auth = false;                 // -p
  bool gpu = false;                  // -g

  // --- ports (atlas.config.yaml `ports:`; env ATLAS_GATEWAY_PORT, ATLAS_CAF_PORT, ATLAS_DASHBOARD_PORT)
  uint16_t gateway_port = 5558;   // client gateway on the master; 0 = off
  uint16_t dashboard_port = 5555; // dashboard on the master; 0 = off
  uint16_t caf_port = 5559;       // CAF network port

  // --- redis (REDIS_ADDRESS "host" or "host:port"; files in local_docker_scheduler/)
  std::string redis_host = "127.0.0.1";
  uint16_t redis_port = 5556;
  bool manage_redis = true;       // master starts and supervises its own redis-server
  std::string redis_binary = "redis-server";
  // Redis Sentinel instead of one address (redis.sentinels, REDIS_SENTINELS
  // "host:port,host:port"): every node asks them for the current primary.
  std::vector<std::string> redis_sentinels; // "host:port" each
  std::string redis_master_name = "atlas";  // redis.master_name: the name the sentinels monitor
  int redis_min_replica_acks = 0;           // redis.min_replica_acks: writes count once this many replicas have them (WAIT)
  int redis_wait_timeout_ms = 1000;         // redis.wait_timeout_ms: how long WAIT waits for them

  // --- directories (worker_config/submission/scheduler.config.yaml and defaults)
  std::string working_dir_root;   // default <home>/job_data/working_dir (must be the same on all nodes)
  std::string job_store_dir_root; // default <home>/job_data/job_store: uploaded bundles
  std::string job_results_root;   // default <home>/job_data: archives under archive/<job_id>/artifacts

  // --- runner and limits (atlas.config.yaml `runner`, `limits:`)
  std::string runner = "process";
  std::string python = "python3";    // interpreter for `python3 <command...>`
  uint64_t max_upload_bytes = 1ull << 30;  // limits.max_upload_mb
  uint64_t max_body_bytes = 1ull << 20;    // limits.max_body_kb
  uint64_t max_header_bytes = 64 << 10;    // limits.max_header_kb
  uint64_t log_cap_bytes = 64ull << 20;    // limits.log_cap_mb
  int stop_grace_s = 10;                   // limits.stop_grace_s: SIGTERM, then SIGKILL
  int idle_timeout_s = 60;                 // limits.idle_timeout_s: idle keep-alive connections
  int max_retries = 1;                     // limits.max_retries: requeues of a lost job
  int drain_timeout_s = 30;                // limits.drain_timeout_s: `stop` lets jobs finish this long
  std::string placement = "spread";        // cluster.placement: spread | pack
  std::string cluster_secret;              // cluster.secret, else ATLAS_CLUSTER_SECRET, else config/cluster.secret
  int heartbeat_ms = 500;                  // cluster.heartbeat_ms: CAF heartbeats between nodes
  int connection_timeout_ms = 3000;        // cluster.connection_timeout_ms: a silent peer is dead after this
  std::string shared_fs = "auto";          // cluster.shared_fs: auto | yes | no: does this node see the master's job store?
  bool cluster_tls = true;                 // cluster.tls: mutual TLS between nodes; false: loopback peers only
  int rejoin_grace_s = 10;                 // cluster.rejoin_grace_s: after a master restart, slots have this long to report their jobs
  bool standby = true;                     // cluster.standby: a second master waits as a hot standby; false: it refuses to start
  int lease_ttl_ms = 5000;                 // cluster.lease_ttl_ms: the active master's lease in Redis; a standby takes over once it lapses
  uint64_t lease_epoch = 0;                // not configured: the epoch of the lease this master holds, set before its actors start
  std::string log_level = "info";          // worker_config/execution/default.config.yaml log_level
  uint32_t bench_sleep_ms = 0;             // bench.sleep_ms: how long a `runner: bench-sleep` job "runs"
  std::string web_dir;                     // ATLAS_WEB_DIR, else directories.web_dir, else found next to the program (library/dashboard_static.hpp)
  std::string sdk_dir;                     // ATLAS_SDK_DIR, else directories.sdk_dir, else found next to the program: put on jobs' PYTHONPATH

  // --- Docker runner (atlas.config.yaml `docker:`) and GPU mode (-g)
  std::string docker_socket = "/var/run/docker.sock"; // docker.socket: the engine's unix socket
  std::string docker_image;                // docker.image: for specs that name none (required with runner: docker)
  std::string docker_network = "none";     // docker.network_mode: none | host | bridge | a network's name
  std::string docker_user;                 // docker.user: "uid[:gid]" containers run as; empty: the image's
  std::string docker_python = "python3";   // docker.python: runs `python3 <command...>` in containers
  int gpu_reserve_after_s = 600;           // limits.gpu_reserve_after_s: a GPU job waiting longer gets GPUs held for it
  int actor_threads = 0;                   // limits.actor_threads: CAF scheduler threads; 0: one per core (CAF's default)
  std::vector<std::string> gpus;           // -g: this node's GPU ids, as detected at start
  std::vector<std::string> gpu_details;    // -g: "<index> <name> (<memory>, <uuid>)" each
  // --- auth (atlas.config.yaml `auth:`, library/auth_config.cpp); on with -p or auth.enabled
  std::string auth_issuer;                 // auth.issuer; default https://<master host>:8443/auth/realms/Atlas
  std::string auth_client_id = "foundations"; // auth.client_id: aud or azp of accepted tokens
  std::string auth_ca_file;                // auth.ca_file: CA of a self-signed Keycloak
  std::string auth_admin_role = "atlas-admin"; // auth.admin_role: realm role that may act on every job
  int auth_leeway_s = 30;                  // auth.leeway_s: clock skew on exp/nbf
  int auth_jwks_refresh_s = 10;            // auth.jwks_refresh_s: at most one JWKS fetch per this long
};

/// What `foundations` reads from submission/<env>.config.yaml.
struct submission_config {
  std::string env_name;
  std::string file;                 // the file it was read from
  std::string scheduler_url = "http://127.0.0.1:5558"; // no trailing '/'
  std::string working_dir_root;
  std::string job_results_root;
  std::string job_store_dir_root;
  std::string container_config_root;
};

/// Flags of `atlas-server start` that shape the configuration.
struct start_flags {
  bool auth = false;       // -p
  bool gpu = false;        // -g
  std::string role = "auto";
};

/// The result of loading: a config, warnings (unknown keys), or one error
/// line naming the file, the key and what was expected.
template <class T>
struct loaded {
  T config;
  std::vector<std::string> warnings;
  std::string error; // empty when loading succeeded
  bool ok() const { return error.empty(); }
};

/// Loads the node configuration. `env` is the process environment (tests pass
/// their own). Never throws.
loaded<node_config> load_node_config(const std::map<std::string, std::string>& env,
                                     const start_flags& flags);

/// Loads submission/<env_name>.config.yaml under `home`.
loaded<submission_config> load_submission_config(const std::string& home,
                                                 const std::string& env_name);

/// Writes the original installer's files under <home>/config with local
/// defaults where they do not exist yet (existing files are never touched).
status write_default_config(const std::string& home);

/// The process environment as a map.
std::map<std::string, std::string> current_environment();

/// 127.x, ::1 or localhost (any case): an address of this machine only.
bool is_loopback_host(const std::string& host);

/// $FOUNDATIONS_HOME, or ~/.foundations.
std::string foundations_home(const std::map<std::string, std::string>& env);

} // namespace atlas
