#include "library/config_files.hpp"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "library/auth_config.hpp"
#include "library/notify_config.hpp"
#include "library/config_hosts.hpp"

namespace atlas::config_parts {

using yaml::lower;
using yaml::open_yaml;
using yaml::section;
using yaml::sink;

namespace {

const char* const log_levels_text = "one of trace, debug, info, warning, error, critical, off";

/// Normalises a log level name ("INFO", "warn", "err") for spdlog.
std::optional<std::string> normalise_level(std::string v) {
  v = lower(v);
  if (v == "warn")
    v = "warning";
  if (v == "err")
    v = "error";
  for (const char* l : {"trace", "debug", "info", "warning", "error", "critical", "off"})
    if (v == l)
      return v;
  return std::nullopt;
}

bool read_level(const section& s, const char* key, std::string& out) {
  std::string v;
  if (!s.str(key, v))
    return false;
  auto l = normalise_level(v);
  if (!l)
    return s.bad(key, log_levels_text, s.get(key)), false;
  out = *l;
  return true;
}

void read_host_port(const section& s, redis_place& r) {
  std::string host;
  uint16_t port = r.port;
  bool h = s.str("host", host);
  bool p = s.port("port", port, 1);
  if (h || p) {
    if (h)
      r.host = host;
    r.port = port;
    r.set = true;
  }
}

/// atlas.config.yaml `docker:`: where the engine is and how containers run.
void read_docker_section(const section& d, node_config& c) {
  d.known({"socket", "image", "network_mode", "user", "python"});
  d.path("socket", c.docker_socket);
  if (d.str("image", c.docker_image) && c.docker_image.find_first_of(" \t\n") != std::string::npos)
    d.bad("image", "an image name such as python:3.11 or atlas-test/busybox", d.get("image"));
  if (d.str("network_mode", c.docker_network) && c.docker_network.empty())
    d.bad("network_mode", "none, host, bridge or a network's name", d.get("network_mode"));
  d.str("user", c.docker_user);
  if (d.str("python", c.docker_python) && c.docker_python.empty())
    d.bad("python", "the interpreter's name in the image, e.g. python3", d.get("python"));
}

/// A quota: {running_jobs, gpus, slots}, each a whole number.
quota_limits read_quota(const section& q) {
  quota_limits out;
  q.known({"running_jobs", "gpus", "slots"});
  q.whole("running_jobs", out.running_jobs, 0, INT32_MAX, "");
  q.whole("gpus", out.gpus, 0, INT32_MAX, "");
  q.whole("slots", out.slots, 0, INT32_MAX, "");
  return out;
}

/// projects:, quotas: and scheduling: of atlas.config.yaml.
void read_scheduling_sections(const section& f, node_config& c) {
  if (auto projects = f.sub("projects")) {
    for (auto& name : projects->keys()) {
      auto p = projects->sub(name.c_str());
      if (!p)
        continue;
      p->known({"time_limit_s", "max_time_limit_s"});
      auto& limits = c.projects[name];
      p->whole("time_limit_s", limits.time_limit_s, 0, INT32_MAX, " of seconds (0: none)");
      p->whole("max_time_limit_s", limits.max_time_limit_s, 0, INT32_MAX, " of seconds (0: no maximum)");
    }
  }
  if (auto q = f.sub("quotas")) {
    q->known({"users", "groups", "members"});
    for (auto [key, table] : {std::pair{"users", &c.user_quotas}, std::pair{"groups", &c.group_quotas}})
      if (auto names = q->sub(key))
        for (auto& name : names->keys())
          if (auto limits = names->sub(name.c_str()))
            (*table)[name] = read_quota(*limits);
    if (auto members = q->sub("members"))
      for (auto& group : members->keys())
        members->strings(group.c_str(), c.group_members[group]);
  }
  if (auto s = f.sub("scheduling")) {
    s->known({"preemption", "min_runtime_s"});
    s->flag("preemption", c.preemption);
    s->whole("min_runtime_s", c.min_runtime_s, 0, INT32_MAX, " of seconds");
  }
}

/// An age: "90d", "12h", "30m", "45s" or a number of seconds; nullopt
/// for anything else.
std::optional<double> age_seconds(const std::string& text) {
  static const std::pair<char, double> units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
  double scale = 1;
  auto digits = text;
  for (auto [unit, s] : units)
    if (!text.empty() && text.back() == unit) {
      scale = s;
      digits.pop_back();
    }
  char* end = nullptr;
  double n = digits.empty() ? -1 : std::strtod(digits.c_str(), &end);
  if (digits.empty() || end != digits.c_str() + digits.size() || !(n >= 0) || n > 1e7)
    return std::nullopt;
  return n * scale;
}

void read_retention_rule(const section& s, retention_rule& rule) {
  if (auto age = s.get("max_age"); age) {
    auto text = age.IsScalar() ? age.as<std::string>() : std::string{};
    if (auto secs = age_seconds(text))
      rule.max_age_s = *secs;
    else
      s.bad("max_age", "an age such as 90d, 12h, 30m or 45s (0: no limit)", age);
  }
  s.whole("max_jobs", rule.max_jobs, 0, UINT32_MAX, " of finished jobs (0: no limit)");
}

/// retention: how long finished jobs are kept (library/settings/retention.hpp).
void read_retention_section(const section& f, node_config& c) {
  auto r = f.sub("retention");
  if (!r)
    return;
  r->known({"max_age", "max_jobs", "projects", "interval_s", "batch", "unused_bundles"});
  read_retention_rule(*r, c.retention);
  if (auto age = r->get("unused_bundles"); age) {
    auto text = age.IsScalar() ? age.as<std::string>() : std::string{};
    if (auto secs = age_seconds(text))
      c.unused_bundles_s = *secs;
    else
      r->bad("unused_bundles", "an age such as 7d or 12h (0: kept forever)", age);
  }
  r->whole("interval_s", c.retention_interval_s, 1, 86400, " of seconds");
  r->whole("batch", c.retention_batch, 1, 100000, " of jobs");
  if (auto projects = r->sub("projects"))
    for (auto& name : projects->keys())
      if (auto p = projects->sub(name.c_str())) {
        p->known({"max_age", "max_jobs"});
        auto rule = c.retention; // what it does not set is everyone's
        read_retention_rule(*p, rule);
        c.project_retention[name] = rule;
      }
}

} // namespace

int signal_number(const std::string& text) {
  // Only signals a job can catch: a warning it cannot see is no warning.
  static const std::pair<const char*, int> names[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"WINCH", SIGWINCH},
  };
  auto up = text;
  for (auto& ch : up)
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (up.rfind("SIG", 0) == 0)
    up = up.substr(3);
  if (!up.empty() && std::all_of(up.begin(), up.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    if (up.size() > 2)
      return 0;
    int n = std::stoi(up);
    for (const auto& [name, num] : names)
      if (num == n)
        return n;
    return 0;
  }
  for (const auto& [name, num] : names)
    if (up == name)
      return num;
  return 0;
}

/// The original installer's files under config/local_docker_scheduler/.
void read_original_files(sink& sk, const std::string& home, const std::string& user_home,
                         node_config& c, redis_place& redis) {
  const std::string dir = home + "/config/local_docker_scheduler/";
  if (auto f = open_yaml(sk, dir + "tracker_client_plugins.yaml", user_home)) {
    f->known({"redis_tracker_client"});
    if (auto t = f->sub("redis_tracker_client")) {
      t->known({"host", "port"});
      read_host_port(*t, redis);
    }
  }
  if (sk.failed())
    return;
  if (auto f = open_yaml(sk, dir + "worker_config/execution/default.config.yaml", user_home)) {
    f->known({"results_config", "cache_config", "ssh_config", "log_level", "obfuscate_foundations"});
    read_level(*f, "log_level", c.log_level);
    if (auto r = f->sub("results_config")) {
      r->known({"redis_end_point", "archive_end_point", "artifact_path"});
      std::string url;
      if (r->str("redis_end_point", url)) {
        auto a = split_address(url);
        if (!a || (!a->scheme.empty() && a->scheme != "redis"))
          r->bad("redis_end_point", "a URL like redis://<host>:<port>", r->get("redis_end_point"));
        else
          redis = {a->host, a->port.value_or(redis.port), true};
      }
      r->path("archive_end_point", c.job_results_root);
    }
  }
  if (sk.failed())
    return;
  if (auto f = open_yaml(sk, dir + "database.config.yaml", user_home)) {
    static constexpr const char* entries[] = {"queue", "running_jobs", "completed_jobs", "failed_jobs"};
    f->known({"queue", "running_jobs", "completed_jobs", "failed_jobs"});
    std::optional<redis_place> first;
    std::string first_name;
    for (const char* name : entries) {
      auto e = f->sub(name);
      if (!e)
        continue;
      e->known({"type", "args"});
      std::string type;
      e->str("type", type);
      auto args = e->sub("args");
      if (!args)
        continue;
      args->known({"key", "host", "port", "db", "password"});
      redis_place here = redis;
      here.set = false;
      read_host_port(*args, here);
      if (!here.set)
        continue;
      if (!first) {
        first = here;
        first_name = name;
      } else if (here.host != first->host || here.port != first->port) {
        sk.warn(f->file() + ": " + name + ".args names " + here.host + ":" +
                              std::to_string(here.port) + " but " + first_name + ".args names " +
                              first->host + ":" + std::to_string(first->port) + " (using the latter)");
      }
    }
    if (first)
      redis = *first;
  }
  if (sk.failed())
    return;
  if (auto f = open_yaml(sk, dir + "worker_config/submission/scheduler.config.yaml", user_home)) {
    f->known({"working_dir_root", "job_store_dir_root", "job_results_root", "scheduler_url",
              "container_config_root", "cache_config", "job_deployment_env", "results_config",
              "obfuscate_foundations", "ssh_config", "worker", "log_level"});
    f->path("working_dir_root", c.working_dir_root);
    f->path("job_store_dir_root", c.job_store_dir_root);
    f->path("job_results_root", c.job_results_root);
  }
}

void read_atlas_file(sink& sk, const std::string& home, const std::string& user_home,
                     node_config& c, redis_place& redis, std::optional<bool>& managed) {
  auto f = open_yaml(sk, home + "/config/atlas.config.yaml", user_home);
  if (!f)
    return;
  f->known({"runner", "python", "ports", "redis", "directories", "limits", "cluster", "log_level",
            "auth", "docker", "projects", "quotas", "scheduling", "notifications", "retention"});
  // bench-sleep (benchmarks only) is accepted but not advertised.
  f->choice("runner", c.runner, {"process", "docker", "bench-sleep"}, "process or docker");
  f->str("python", c.python);
  read_level(*f, "log_level", c.log_level);
  if (auto p = f->sub("ports")) {
    p->known({"gateway", "dashboard", "caf"});
    p->port("gateway", c.gateway_port);
    p->port("dashboard", c.dashboard_port);
    p->port("caf", c.caf_port);
  }
  if (auto r = f->sub("redis")) {
    r->known({"host", "port", "managed", "binary", "sentinels", "master_name", "min_replica_acks",
              "wait_timeout_ms"});
    read_host_port(*r, redis);
    if (auto list = r->get("sentinels"); list.IsDefined()) {
      std::vector<std::string> items;
      if (list.IsSequence()) {
        for (const auto& item : list)
          items.push_back(item.IsScalar() ? item.as<std::string>() : std::string{"?"});
      } else if (list.IsScalar()) {
        items.push_back(list.as<std::string>());
      }
      std::string bad;
      if ((!list.IsSequence() && !list.IsScalar()) || !parse_sentinels(items, c.redis_sentinels, bad))
        r->bad("sentinels", "a list of host:port (Redis Sentinels)", list);
    }
    if (r->str("master_name", c.redis_master_name) && c.redis_master_name.empty())
      r->bad("master_name", "the name the sentinels monitor", r->get("master_name"));
    r->whole("min_replica_acks", c.redis_min_replica_acks, 0, 16, " of replicas");
    r->whole("wait_timeout_ms", c.redis_wait_timeout_ms, 1, 600000, " of milliseconds");
    bool m = true;
    if (r->flag("managed", m))
      managed = m;
    r->str("binary", c.redis_binary);
  }
  if (auto d = f->sub("directories")) {
    d->known({"working_dir_root", "job_store_dir_root", "job_results_root", "web_dir", "sdk_dir"});
    d->path("working_dir_root", c.working_dir_root);
    d->path("job_store_dir_root", c.job_store_dir_root);
    d->path("job_results_root", c.job_results_root);
    d->path("web_dir", c.web_dir); // the dashboard's page (library/dashboard_static.hpp)
    d->path("sdk_dir", c.sdk_dir); // the in-job SDK put on jobs' PYTHONPATH
  }
  if (auto l = f->sub("limits")) {
    l->known({"max_upload_mb", "max_body_kb", "max_header_kb", "log_cap_mb", "stop_grace_s",
              "idle_timeout_s", "max_retries", "drain_timeout_s", "gpu_reserve_after_s",
              "actor_threads", "time_limit_s", "max_time_limit_s", "warning_signal",
              "time_warning_s"});
    uint64_t v = 0;
    if (l->whole("max_upload_mb", v, 1, 1u << 20, " of megabytes"))
      c.max_upload_bytes = v << 20;
    if (l->whole("max_body_kb", v, 1, 1u << 20, " of kilobytes"))
      c.max_body_bytes = v << 10;
    if (l->whole("max_header_kb", v, 1, 1u << 16, " of kilobytes"))
      c.max_header_bytes = v << 10;
    if (l->whole("log_cap_mb", v, 1, 1u << 20, " of megabytes"))
      c.log_cap_bytes = v << 20;
    l->whole("stop_grace_s", c.stop_grace_s, 0, INT32_MAX, " of seconds");
    l->whole("time_warning_s", c.time_warning_s, 0, INT32_MAX, " of seconds");
    if (std::string sig; l->str("warning_signal", sig)) {
      if (int n = signal_number(sig); n > 0)
        c.warning_signal = n;
      else
        l->bad("warning_signal", "a signal such as SIGUSR1, USR1 or 10", l->get("warning_signal"));
    }
    l->whole("idle_timeout_s", c.idle_timeout_s, 1, INT32_MAX, " of seconds");
    l->whole("max_retries", c.max_retries, 0, INT32_MAX, "");
    l->whole("drain_timeout_s", c.drain_timeout_s, 0, INT32_MAX, " of seconds");
    l->whole("gpu_reserve_after_s", c.gpu_reserve_after_s, 0, INT32_MAX, " of seconds");
    l->whole("actor_threads", c.actor_threads, 0, 256, " of threads (0: one per core)");
    l->whole("time_limit_s", c.time_limit_s, 0, INT32_MAX, " of seconds (0: none)");
    l->whole("max_time_limit_s", c.max_time_limit_s, 0, INT32_MAX, " of seconds (0: no maximum)");
  }
  read_scheduling_sections(*f, c);
  read_retention_section(*f, c);
  if (auto cl = f->sub("cluster")) {
    cl->known({"placement", "secret", "heartbeat_ms", "connection_timeout_ms", "rejoin_grace_s",
               "shared_fs", "tls", "standby", "lease_ttl_ms"});
    cl->flag("tls", c.cluster_tls);
    cl->flag("standby", c.standby);
    cl->whole("lease_ttl_ms", c.lease_ttl_ms, 1000, 600000, " of milliseconds");
    cl->choice("shared_fs", c.shared_fs, {"auto", "yes", "no"}, "auto, yes or no");
    cl->choice("placement", c.placement, {"spread", "pack"}, "spread or pack");
    cl->str("secret", c.cluster_secret);
    cl->whole("heartbeat_ms", c.heartbeat_ms, 10, 60000, " of milliseconds");
    cl->whole("connection_timeout_ms", c.connection_timeout_ms, 100, 600000, " of milliseconds");
    cl->whole("rejoin_grace_s", c.rejoin_grace_s, 0, 3600, " of seconds");
  }
  if (auto a = f->sub("auth"))
    read_auth_section(*a, c);
  if (auto d = f->sub("docker"))
    read_docker_section(*d, c);
  if (auto n = f->sub("notifications"))
    read_notifications_section(*n, c);
  if (!sk.failed() && c.runner == "docker" && c.docker_image.empty())
    sk.fail(f->file() + ": docker.image: required with runner: docker (the image for jobs whose spec names none)");
}

} // namespace atlas::config_parts
