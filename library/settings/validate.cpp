// Each component's settings check themselves once they are assembled from
// the files, the environment and the flags (library/config.cpp): the ranges
// the YAML reader enforces hold for values from anywhere, and the settings
// that only make sense together are checked together.

#include <algorithm>
#include <initializer_list>
#include <string>
#include <tuple>
#include <vector>

#include "library/config.hpp"
#include "library/settings/auth.hpp"
#include "library/settings/cluster.hpp"
#include "library/settings/docker.hpp"
#include "library/settings/gateway.hpp"
#include "library/settings/master.hpp"
#include "library/settings/node.hpp"
#include "library/settings/notifications.hpp"
#include "library/settings/redis.hpp"
#include "library/settings/slot.hpp"

namespace atlas {

namespace {

/// "<name>: expected <lo>..<hi><unit>, got <v>" when out of range.
template <class T>
std::string in_range(const char* name, T v, T lo, T hi, const char* unit = "") {
  if (v >= lo && v <= hi)
    return {};
  return std::string{name} + ": expected " + std::to_string(lo) + ".." + std::to_string(hi) + unit
         + ", got " + std::to_string(v);
}

std::string one_of(const char* name, const std::string& v, std::initializer_list<const char*> ok) {
  if (std::any_of(ok.begin(), ok.end(), [&](const char* o) { return v == o; }))
    return {};
  std::string list;
  for (auto o : ok)
    list += (list.empty() ? "" : ", ") + std::string{o};
  return std::string{name} + ": expected one of " + list + ", got '" + v + "'";
}

std::string non_empty(const char* name, const std::string& v, const char* what) {
  return v.empty() ? std::string{name} + ": expected " + what + ", got nothing" : std::string{};
}

/// The first complaint, or "".
std::string first(std::initializer_list<std::string> checks) {
  for (auto& c : checks)
    if (!c.empty())
      return c;
  return {};
}

} // namespace

std::string node_settings::validate() const {
  return first({
    non_empty("FOUNDATIONS_HOME", foundations_home, "a directory"),
    non_empty("node id", node_id, "a name from HOST_ADDRESS"),
    one_of("--role", role, {"auto", "master", "worker"}),
    in_range("NUM_WORKERS", num_workers, 0, 4096),
    one_of("log_level", log_level, {"trace", "debug", "info", "warning", "error", "critical", "off"}),
    in_range("limits.actor_threads", actor_threads, 0, 256, " threads"),
  });
}

std::string gateway_settings::validate() const {
  return first({
    http_port == 0 ? std::string{"HOST_ADDRESS: expected a port other than 0"} : std::string{},
    in_range<uint64_t>("limits.max_upload_mb", max_upload_bytes >> 20, 1, 1u << 20, " MB"),
    in_range<uint64_t>("limits.max_body_kb", max_body_bytes >> 10, 1, 1u << 20, " kB"),
    in_range<uint64_t>("limits.max_header_kb", max_header_bytes >> 10, 1, 1u << 16, " kB"),
    in_range("limits.idle_timeout_s", idle_timeout_s, 1, INT32_MAX, " s"),
  });
}

std::string redis_settings::validate() const {
  return first({
    redis_sentinels.empty() ? non_empty("REDIS_ADDRESS", redis_host, "a host") : std::string{},
    redis_sentinels.empty() && redis_port == 0 ? "REDIS_ADDRESS: expected a port other than 0"
                                               : std::string{},
    non_empty("redis.master_name", redis_master_name, "the name the sentinels monitor"),
    in_range("redis.min_replica_acks", redis_min_replica_acks, 0, 16, " replicas"),
    in_range("redis.wait_timeout_ms", redis_wait_timeout_ms, 1, 600000, " ms"),
  });
}

std::string cluster_settings::validate() const {
  return first({
    caf_port == 0 ? std::string{"ports.caf: expected a port other than 0"} : std::string{},
    in_range("cluster.heartbeat_ms", heartbeat_ms, 10, 60000, " ms"),
    in_range("cluster.connection_timeout_ms", connection_timeout_ms, 100, 600000, " ms"),
    // A peer must be able to show it is alive before it is declared dead.
    connection_timeout_ms <= heartbeat_ms
      ? "cluster.connection_timeout_ms (" + std::to_string(connection_timeout_ms)
          + ") must be longer than cluster.heartbeat_ms (" + std::to_string(heartbeat_ms) + ")"
      : std::string{},
    one_of("cluster.shared_fs", shared_fs, {"auto", "yes", "no"}),
    in_range("cluster.rejoin_grace_s", rejoin_grace_s, 0, 3600, " s"),
    in_range("cluster.lease_ttl_ms", lease_ttl_ms, 1000, 600000, " ms"),
  });
}

std::string master_settings::validate() const {
  return first({
    one_of("cluster.placement", placement, {"spread", "pack"}),
    in_range("limits.max_retries", max_retries, 0, INT32_MAX),
    in_range("limits.gpu_reserve_after_s", gpu_reserve_after_s, 0, INT32_MAX, " s"),
  });
}

std::string scheduling_settings::validate() const {
  if (max_time_limit_s > 0 && time_limit_s > max_time_limit_s)
    return "limits.time_limit_s (" + std::to_string(time_limit_s)
           + ") is longer than limits.max_time_limit_s (" + std::to_string(max_time_limit_s) + ")";
  return first({
    in_range<int64_t>("limits.time_limit_s", time_limit_s, 0, INT32_MAX, " s"),
    in_range<int64_t>("limits.max_time_limit_s", max_time_limit_s, 0, INT32_MAX, " s"),
    in_range("scheduling.min_runtime_s", min_runtime_s, 0, INT32_MAX, " s"),
  });
}

std::string slot_settings::validate() const {
  return first({
    one_of("runner", runner, {"process", "docker", "bench-sleep"}),
    non_empty("python", python, "an interpreter"),
    non_empty("directories.working_dir_root", working_dir_root, "a directory"),
    non_empty("directories.job_store_dir_root", job_store_dir_root, "a directory"),
    non_empty("directories.job_results_root", job_results_root, "a directory"),
    in_range<uint64_t>("limits.log_cap_mb", log_cap_bytes >> 20, 1, 1u << 20, " MB"),
    in_range("limits.stop_grace_s", stop_grace_s, 0, INT32_MAX, " s"),
    in_range("limits.drain_timeout_s", drain_timeout_s, 0, INT32_MAX, " s"),
    in_range("limits.time_warning_s", time_warning_s, 0, INT32_MAX, " s"),
    in_range("limits.warning_signal", warning_signal, 1, 31, ""),
  });
}

std::string container_settings::validate(const std::string& runner) const {
  if (runner != "docker")
    return {};
  return first({
    non_empty("docker.image", docker_image,
              "an image with runner: docker (for jobs whose spec names none)"),
    non_empty("docker.socket", docker_socket, "the engine's unix socket"),
    non_empty("docker.network_mode", docker_network, "none, host, bridge or a network's name"),
    non_empty("docker.python", docker_python, "an interpreter"),
  });
}

std::string auth_settings::validate(bool on) const {
  if (!on)
    return {};
  bool url = auth_issuer.rfind("https://", 0) == 0 || auth_issuer.rfind("http://", 0) == 0;
  return first({
    url ? std::string{} : "auth.issuer: expected a URL starting with https://, got '" + auth_issuer + "'",
    non_empty("auth.client_id", auth_client_id, "a client id"),
    non_empty("auth.admin_role", auth_admin_role, "a realm role name"),
    in_range("auth.leeway_s", auth_leeway_s, 0, 600, " s"),
    in_range("auth.jwks_refresh_s", auth_jwks_refresh_s, 0, 3600, " s"),
  });
}

std::string notification_settings::validate() const {
  for (size_t i = 0; i < notify_sinks.size(); ++i) {
    auto& s = notify_sinks[i];
    auto where = "notifications." + (s.kind == "slack" ? std::string{"slack"}
                                                       : "webhooks[" + std::to_string(i) + "]");
    if (s.url.rfind("http://", 0) != 0 && s.url.rfind("https://", 0) != 0)
      return where + (s.kind == "slack" ? ".api_url" : ".url") + ": expected a URL starting with http:// or https://";
    if (s.kind == "slack" && s.channel.empty())
      return where + ".channel: required (the channel job notifications go to)";
    for (size_t j = 0; j < i; ++j)
      if (notify_sinks[j].name == s.name)
        return where + ".name: '" + s.name + "' names two sinks; each needs its own";
    for (auto [name, v, lo, hi] : {std::tuple{".timeout_s", s.timeout_s, 1, 3600},
                                   std::tuple{".connect_timeout_s", s.connect_timeout_s, 1, 3600},
                                   std::tuple{".max_queue", s.max_queue, 1, 1000000},
                                   std::tuple{".max_tries", s.max_tries, 1, 100}})
      if (auto why = in_range((where + name).c_str(), v, lo, hi); !why.empty())
        return why;
  }
  return {};
}

std::string node_config::validate() const {
  auto why = first({node_settings::validate(), gateway_settings::validate(),
                    redis_settings::validate(), cluster_settings::validate(),
                    master_settings::validate(), slot_settings::validate(),
                    scheduling_settings::validate(), notification_settings::validate(),
                    container_settings::validate(runner), auth_settings::validate(auth)});
  if (!why.empty())
    return why;
  // The ports this node listens on, each once (0: that listener is off).
  std::vector<std::pair<const char*, uint16_t>> ports{{"HOST_ADDRESS", http_port}};
  if (is_master) {
    ports.insert(ports.end(), {{"ports.gateway", gateway_port}, {"ports.dashboard", dashboard_port},
                               {"ports.caf", caf_port}});
    if (manage_redis)
      ports.emplace_back("REDIS_ADDRESS", redis_port);
  }
  for (size_t i = 0; i < ports.size(); ++i)
    for (size_t j = i + 1; j < ports.size(); ++j)
      if (ports[i].second != 0 && ports[i].second == ports[j].second)
        return std::string{ports[i].first} + " and " + ports[j].first + " both name port "
               + std::to_string(ports[i].second) + "; each listener needs its own";
  return {};
}

} // namespace atlas
