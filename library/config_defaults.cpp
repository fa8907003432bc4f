// The default files `atlas-server start` writes under $FOUNDATIONS_HOME/config
// on a fresh machine: the original installer's layout with local values, and
// a commented atlas.config.yaml listing every key with its default.

#include "library/config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>

namespace atlas {
namespace {

namespace fs = std::filesystem;

/// `s` as a YAML scalar, double-quoted unless it is plainly safe.
std::string yq(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") ==
                      std::string::npos)
    return s;
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\')
      out += '\\';
    out += ch;
  }
  return out + "\"";
}

/// Creates `file` with `text` unless it exists; never overwrites.
status write_new_file(const std::string& file, const std::string& text) {
  std::error_code ec;
  fs::create_directories(fs::path(file).parent_path(), ec);
  if (ec)
    return status::fail("cannot create " + fs::path(file).parent_path().string() + ": " + ec.message());
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno == EEXIST ? status::success()
                           : status::fail("cannot create " + file + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      std::string err = std::strerror(errno);
      ::close(fd);
      return status::fail("cannot write " + file + ": " + err);
    }
    done += static_cast<size_t>(n);
  }
  return ::close(fd) == 0 ? status::success() : status::fail("cannot write " + file + ": " + std::strerror(errno));
}

std::string database_yaml() {
  std::string out;
  for (const char* e : {"queue", "failed_jobs", "completed_jobs", "running_jobs"}) {
    out += std::string{e} + ":\n  type: redis_connection." + (std::string_view{e} == "queue" ? "RedisList" : "RedisDict") +
           "\n  args:\n    key: " + e + "\n    host: 127.0.0.1\n    port: 5556\n";
  }
  return out;
}

std::string atlas_yaml(const std::string& h) {
  return "# Atlas settings beyond the original installer's files. Every key is optional;\n"
         "# the values shown are the defaults. Environment variables override this file.\n"
         "# runner: process            # process | docker\n"
         "# python: python3            # runs `python3 <command...>` in the job's directory\n"
         "# log_level: info\n"
         "# ports:\n"
         "#   gateway: 5558            # ATLAS_GATEWAY_PORT; 0 = off\n"
         "#   dashboard: 5555          # ATLAS_DASHBOARD_PORT; 0 = off\n"
         "#   caf: 5559                # ATLAS_CAF_PORT\n"
         "# redis:                     # REDIS_ADDRESS overrides host and port\n"
         "#   host: 127.0.0.1\n"
         "#   port: 5556\n"
         "#   managed: true            # the master starts and supervises redis-server\n"
         "#   binary: redis-server\n"
         "#   sentinels: []            # REDIS_SENTINELS: [host:port, ...] of Redis Sentinels, instead of host and port\n"
         "#   master_name: atlas       # the primary's name in the sentinels' configuration\n"
         "#   min_replica_acks: 0      # a write counts once this many replicas have it (Redis WAIT)\n"
         "#   wait_timeout_ms: 1000    # how long a write waits for those replicas\n"
         "# directories:\n"
         "#   working_dir_root: " + h + "/job_data/working_dir\n"
         "#   job_store_dir_root: " + h + "/job_data/job_store\n"
         "#   job_results_root: " + h + "/job_data\n"
         "#   web_dir: <found next to atlas-server>   # ATLAS_WEB_DIR: the dashboard's page\n"
         "#   sdk_dir: <found next to atlas-server>   # ATLAS_SDK_DIR: the in-job SDK\n"
         "# limits:\n"
         "#   max_upload_mb: 1024\n"
         "#   max_body_kb: 1024\n"
         "#   max_header_kb: 64\n"
         "#   log_cap_mb: 64\n"
         "#   stop_grace_s: 10         # SIGTERM, then SIGKILL after this long\n"
         "#   warning_signal: SIGUSR1  # sent to a job before its time limit or a preemption\n"
         "#   time_warning_s: 30       # the warning this long before a job's time limit (at most half of it)\n"
         "#   idle_timeout_s: 60\n"
         "#   max_retries: 1           # requeues of a job whose node was lost\n"
         "#   drain_timeout_s: 30      # `atlas-server stop` lets running jobs finish this long\n"
         "#   gpu_reserve_after_s: 600 # a GPU job waiting longer has GPUs held for it (no starvation)\n"
         "#   actor_threads: 0         # actor scheduler threads; 0: one per core (see bench/RESULTS.md)\n"
         "#   time_limit_s: 0          # a job's time limit when it asks none (--time); 0: none\n"
         "#   max_time_limit_s: 0      # the longest a job may ask; 0: no maximum\n"
         "# projects:                  # per project, overriding the two above\n"
         "#   my-project: {time_limit_s: 3600, max_time_limit_s: 86400}\n"
         "# quotas:                    # across the cluster; a job over quota waits, never fails\n"
         "#   users:\n"
         "#     alice: {running_jobs: 2, gpus: 4, slots: 2}\n"
         "#     \"*\": {running_jobs: 8}  # every user without their own\n"
         "#   groups:\n"
         "#     ml: {gpus: 8}\n"
         "#   members:                 # groups without -p (with -p: the token's groups and roles too)\n"
         "#     ml: [alice, bob]\n"
         "# scheduling:\n"
         "#   preemption: false        # a higher priority stops lower ones on one node (requeued)\n"
         "#   min_runtime_s: 60        # a job younger than this is never preempted\n"
         "# cluster:\n"
         "#   placement: spread        # spread | pack\n"
         "#   secret: \"\"               # nodes join only with this secret (default: config/cluster.secret)\n"
         "#   heartbeat_ms: 500        # CAF heartbeats between nodes (a node's own ping: every other one)\n"
         "#   connection_timeout_ms: 3000  # a silent node is declared lost after this\n"
         "#   shared_fs: auto          # yes | no | auto (fetch a bundle from the master when it is not here)\n"
         "#   rejoin_grace_s: 10       # after a master restart, nodes have this long to report their jobs\n"
         "#   tls: true                # mutual TLS between nodes (config/tls/); false: one machine only, loopback peers\n"
         "#   standby: true            # a second master waits as a hot standby; false: it refuses to start\n"
         "#   lease_ttl_ms: 5000       # the active master's lease; a standby takes over once it lapses\n"
         "# auth: {}\n"
         "# docker:                    # runner: docker, or a spec that names an image\n"
         "#   socket: /var/run/docker.sock\n"
         "#   image: python:3.11       # for specs that name no image (required with runner: docker)\n"
         "#   network_mode: none       # none | host | bridge | a network's name\n"
         "#   user: \"\"                 # uid[:gid] containers run as; empty: the image's user\n"
         "#   python: python3          # runs `python3 <command...>` when the spec has no entrypoint\n"
         "# notifications:             # job transitions, sent by the active master (README \"Notifications\")\n"
         "#   webhooks:\n"
         "#     - name: ops              # its cursor and /metrics label (default webhook-1, -2, ...)\n"
         "#       url: https://ops.example.org/atlas   # POSTed JSON, X-Atlas-Signature: sha256=<HMAC>\n"
         "#       secret_env: OPS_HOOK_SECRET           # or secret: \"...\" (the HMAC key)\n"
         "#       events: [completed, failed, stopped]  # default: queued, running, completed, failed, stopped\n"
         "#       projects: []           # only these projects; empty: all\n"
         "#       users: []              # only these users; empty: all\n"
         "#       timeout_s: 10          # one try, connect included\n"
         "#       connect_timeout_s: 5\n"
         "#       max_tries: 5           # with exponential backoff from 0.5 s\n"
         "#       max_queue: 1000        # waiting events; when full the oldest is dropped\n"
         "#   slack:                     # as the original: chat.postMessage with FOUNDATIONS_SLACK_TOKEN\n"
         "#     channel: \"#jobs\"         # the original's job_notification_channel (also accepted)\n"
         "#     token_env: FOUNDATIONS_SLACK_TOKEN\n"
         "#     events: [queued, running, completed, failed]\n"
         "#     api_url: https://slack.com/api/chat.postMessage\n";
}

} // namespace

status write_default_config(const std::string& home) {
  try {
    const std::string cfg = home + "/config/";
    const std::string lds = cfg + "local_docker_scheduler/";
    const std::string data = home + "/job_data";
    std::string dirs = "job_results_root: " + yq(data) + "\njob_store_dir_root: " +
                       yq(data + "/job_store") + "\nworking_dir_root: " + yq(data + "/working_dir") + "\n";
    std::string common = "container_config_root: " + yq(lds + "worker_config") +
                         "\njob_deployment_env: local_docker_scheduler_plugin\n" + dirs;
    std::string client = common + "scheduler_url: http://127.0.0.1:5558\n";
    const std::pair<std::string, std::string> files[] = {
      {lds + "database.config.yaml", database_yaml()},
      {lds + "tracker_client_plugins.yaml", "redis_tracker_client:\n  host: 127.0.0.1\n  port: 5556\n"},
      {lds + "worker_config/execution/default.config.yaml",
       "log_level: INFO\nresults_config:\n  archive_end_point: " + yq(data) +
         "\n  redis_end_point: redis://127.0.0.1:5556\n"},
      {lds + "worker_config/submission/scheduler.config.yaml", common + "scheduler_url: http://127.0.0.1:5000\n"},
      {cfg + "submission/scheduler.config.yaml", client},
      {cfg + "submission/remote.config.yaml", client},
      {cfg + "atlas.config.yaml", atlas_yaml(home)},
    };
    for (const auto& [file, text] : files)
      if (auto st = write_new_file(file, text); !st)
        return st;
    return status::success();
  } catch (const std::exception& e) {
    return status::fail(std::string{"cannot write the default configuration: "} + e.what());
  }
}

} // namespace atlas
