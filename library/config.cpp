#include "library/config.hpp"

#include "library/auth_config.hpp"
#include "library/yaml_section.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>
#include <string_view>

extern char** environ;

namespace atlas {
namespace {

namespace fs = std::filesystem;
using yaml::expand_home;
using yaml::lower;
using yaml::open_yaml;
using yaml::parse_whole;
using yaml::section;
using yaml::sink;

/// host[:port] of a URL-ish text: "http://h:1/", "h:1", "[::1]:1", "redis://h:1/0".
struct address {
  std::string scheme, host, rest;
  std::optional<uint16_t> port;
};

std::optional<address> split_address(std::string_view s) {
  address a;
  if (auto pos = s.find("://"); pos != std::string_view::npos) {
    a.scheme = lower(std::string{s.substr(0, pos)});
    s.remove_prefix(pos + 3);
  }
  auto slash = s.find('/');
  if (slash != std::string_view::npos) {
    a.rest = std::string{s.substr(slash)};
    s = s.substr(0, slash);
  }
  std::string_view port;
  const bool bracketed = !s.empty() && s.front() == '[';
  if (bracketed) {
    auto close = s.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    a.host = std::string{s.substr(1, close - 1)};
    s.remove_prefix(close + 1);
    if (!s.empty() && s.front() != ':')
      return std::nullopt;
    port = s.empty() ? s : s.substr(1);
  } else if (auto colon = s.rfind(':'); colon != std::string_view::npos) {
    a.host = std::string{s.substr(0, colon)};
    port = s.substr(colon + 1);
  } else {
    a.host = std::string{s};
  }
  if (a.host.empty() || a.host.find_first_of(bracketed ? " \t@/" : " \t@/:") != std::string::npos)
    return std::nullopt;
  if (!port.empty() || (!s.empty() && s.back() == ':')) {
    auto p = parse_whole(port);
    if (!p || *p == 0 || *p > 65535)
      return std::nullopt;
    a.port = static_cast<uint16_t>(*p);
  }
  return a;
}

/// Names of this master in the original installer's files.
bool is_original_alias(const std::string& host) {
  return host == "atlas-ce-tracker" || host == "redis" || host == "scheduler" ||
         host == "localhost";
}

/// "host:port" items (a YAML list, or one string split at commas) as
/// sentinels; false when one is not host:port.
bool parse_sentinels(const std::vector<std::string>& items, std::vector<std::string>& out,
                     std::string& bad) {
  out.clear();
  for (auto& item : items) {
    std::string_view rest{item};
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string one{rest.substr(0, comma)};
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      one.erase(0, one.find_first_not_of(" \t"));
      one.erase(one.find_last_not_of(" \t") + 1);
      auto a = split_address(one);
      if (!a || !a->port || !a->scheme.empty()) {
        bad = one;
        return false;
      }
      out.push_back(a->host + ":" + std::to_string(*a->port));
    }
  }
  return true;
}

/// Loopback addresses tell nodes on one machine apart; "localhost" is 127.0.0.1.
bool same_host(std::string a, std::string b) {
  a = lower(a);
  b = lower(b);
  auto canonical = [](std::string& h) {
    if (h == "localhost")
      h = "127.0.0.1";
  };
  canonical(a);
  canonical(b);
  return a == b;
}

/// Whether `host` is this machine: loopback, the HOST_ADDRESS host, the host
/// name, or an address of a local interface.
bool names_this_host(std::string host, const std::string& own_host) {
  host = lower(host);
  if (host.empty())
    return false;
  if (host == lower(own_host) || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0)
    return true;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0) {
    std::string n = lower(name);
    if (host == n || host == n.substr(0, n.find('.')))
      return true;
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0)
    return false;
  bool found = false;
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr)
      continue;
    char buf[INET6_ADDRSTRLEN] = {};
    const void* src = nullptr;
    if (i->ifa_addr->sa_family == AF_INET)
      src = &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
    else if (i->ifa_addr->sa_family == AF_INET6)
      src = &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr;
    if (src && inet_ntop(i->ifa_addr->sa_family, src, buf, sizeof buf))
      found = host == buf;
  }
  freeifaddrs(list);
  return found;
}

std::string safe_segment(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      c = '_';
  return s;
}

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

/// Where Redis is according to the files, before role resolution.
struct redis_place {
  std::string host;
  uint16_t port = 5556;
  bool set = false;
};

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

void read_atlas_file(sink& sk, const std::string& home, const std::string& user_home,
                     node_config& c, redis_place& redis, std::optional<bool>& managed) {
  auto f = open_yaml(sk, home + "/config/atlas.config.yaml", user_home);
  if (!f)
    return;
  f->known({"runner", "python", "ports", "redis", "directories", "limits", "cluster", "log_level",
            "auth", "docker", "bench"});
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
              "actor_threads"});
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
    l->whole("idle_timeout_s", c.idle_timeout_s, 1, INT32_MAX, " of seconds");
    l->whole("max_retries", c.max_retries, 0, INT32_MAX, "");
    l->whole("drain_timeout_s", c.drain_timeout_s, 0, INT32_MAX, " of seconds");
    l->whole("gpu_reserve_after_s", c.gpu_reserve_after_s, 0, INT32_MAX, " of seconds");
    l->whole("actor_threads", c.actor_threads, 0, 256, " of threads (0: one per core)");
  }
  if (auto b = f->sub("bench")) { // only read by `runner: bench-sleep`
    b->known({"sleep_ms"});
    b->whole("sleep_ms", c.bench_sleep_ms, 0, 3600000, " of milliseconds");
  }
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
  if (!sk.failed() && c.runner == "docker" && c.docker_image.empty())
    sk.fail(f->file() + ": docker.image: required with runner: docker (the image for jobs whose spec names none)");
}

std::optional<std::string> env_value(const std::map<std::string, std::string>& env, const char* name) {
  auto it = env.find(name);
  if (it == env.end() || it->second.empty())
    return std::nullopt;
  return it->second;
}

std::string user_home_of(const std::map<std::string, std::string>& env) {
  if (auto h = env_value(env, "HOME"))
    return *h;
  if (passwd* pw = getpwuid(getuid()); pw && pw->pw_dir)
    return pw->pw_dir;
  return "/";
}

void read_environment(sink& sk, const std::map<std::string, std::string>& env, node_config& c,
                      std::optional<address>& redis_env) {
  if (auto v = env_value(env, "NUM_WORKERS")) {
    auto n = parse_whole(*v);
    if (!n || *n > 4096)
      return sk.fail("NUM_WORKERS: expected a whole number >= 0, got '" + *v + "'");
    c.num_workers = static_cast<int>(*n);
  }
  std::pair<const char*, uint16_t*> ports[] = {{"ATLAS_GATEWAY_PORT", &c.gateway_port},
                                               {"ATLAS_CAF_PORT", &c.caf_port},
                                               {"ATLAS_DASHBOARD_PORT", &c.dashboard_port}};
  for (auto [name, field] : ports) {
    if (auto v = env_value(env, name)) {
      auto n = parse_whole(*v);
      if (!n || *n > 65535)
        return sk.fail(std::string{name} + ": expected a port number 0..65535, got '" + *v + "'");
      *field = static_cast<uint16_t>(*n);
    }
  }
  std::string host_address = env_value(env, "HOST_ADDRESS").value_or("http://127.0.0.1:5000/");
  auto a = split_address(host_address);
  if (!a || (a->scheme != "" && a->scheme != "http" && a->scheme != "https") ||
      (!a->rest.empty() && a->rest != "/"))
    return sk.fail("HOST_ADDRESS: expected http://<host>:<port>/, got '" + host_address + "'");
  c.http_port = a->port.value_or(5000);
  std::string host = a->host.find(':') != std::string::npos ? "[" + a->host + "]" : a->host;
  c.host_address = (a->scheme.empty() ? "http" : a->scheme) + "://" + host + ":" +
                   std::to_string(c.http_port) + "/";
  c.node_id = safe_segment(a->host + "-" + std::to_string(c.http_port));
  if (auto v = env_value(env, "REDIS_SENTINELS")) {
    std::string bad;
    if (!parse_sentinels({*v}, c.redis_sentinels, bad) || c.redis_sentinels.empty())
      return sk.fail("REDIS_SENTINELS: expected host:port,host:port, got '" + *v + "'");
  }
  if (auto v = env_value(env, "REDIS_ADDRESS")) {
    redis_env = split_address(*v);
    if (!redis_env || (!redis_env->scheme.empty() && redis_env->scheme != "redis"))
      return sk.fail("REDIS_ADDRESS: expected <host> or <host>:<port>, got '" + *v + "'");
  }
}

} // namespace

bool is_loopback_host(const std::string& host) {
  auto h = lower(host);
  return h == "localhost" || h.rfind("127.", 0) == 0 || h == "::1" || h == "[::1]";
}

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv{*e};
    auto eq = kv.find('=');
    if (eq != std::string_view::npos)
      env.emplace(std::string{kv.substr(0, eq)}, std::string{kv.substr(eq + 1)});
  }
  return env;
}

std::string foundations_home(const std::map<std::string, std::string>& env) {
  std::string home = env_value(env, "FOUNDATIONS_HOME").value_or(user_home_of(env) + "/.foundations");
  home = expand_home(home, user_home_of(env));
  while (home.size() > 1 && home.back() == '/')
    home.pop_back();
  return home;
}

loaded<node_config> load_node_config(const std::map<std::string, std::string>& env,
                                     const start_flags& flags) {
  loaded<node_config> out;
  sink sk{out.warnings, out.error};
  try {
    node_config& c = out.config;
    const std::string user_home = user_home_of(env);
    c.foundations_home = foundations_home(env);
    c.auth = flags.auth;
    c.gpu = flags.gpu;
    c.role = lower(flags.role);
    if (c.role != "auto" && c.role != "master" && c.role != "worker")
      return sk.fail("--role: expected auto, master or worker, got '" + flags.role + "'"), out;
    c.working_dir_root = c.foundations_home + "/job_data/working_dir";
    c.job_store_dir_root = c.foundations_home + "/job_data/job_store";
    c.job_results_root = c.foundations_home + "/job_data";

    redis_place redis{c.redis_host, c.redis_port, false};
    std::optional<bool> managed;
    read_original_files(sk, c.foundations_home, user_home, c, redis);
    if (!sk.failed())
      read_atlas_file(sk, c.foundations_home, user_home, c, redis, managed);
    std::optional<address> redis_env;
    if (!sk.failed())
      read_environment(sk, env, c, redis_env);
    if (sk.failed())
      return out;

    const std::string own_host = split_address(c.host_address)->host;
    if (redis_env) {
      c.redis_host = redis_env->host;
      c.redis_port = redis_env->port.value_or(5556);
    } else {
      c.redis_host = is_original_alias(redis.host) ? "127.0.0.1" : redis.host;
      c.redis_port = redis.port;
    }
    if (c.role == "master")
      c.is_master = true;
    else if (c.role == "worker")
      c.is_master = false;
    else // the guide: REDIS_ADDRESS names the master's own address
      c.is_master = !redis_env || same_host(redis_env->host, own_host)
                    || (!is_loopback_host(own_host) && names_this_host(redis_env->host, own_host));
    if (c.role == "worker" && !redis_env && c.redis_sentinels.empty())
      return sk.fail("REDIS_ADDRESS: required for --role worker (the master's host, or host:port)"), out;
    // The master runs the Redis that is on its machine, as in the original,
    // whether REDIS_ADDRESS names it or not; sentinels' Redis is run by others.
    c.manage_redis = c.is_master && managed.value_or(true) && c.redis_sentinels.empty() &&
                     (redis_env ? names_this_host(redis_env->host, own_host)
                                : is_original_alias(redis.host) || names_this_host(redis.host, own_host));
    c.node_dir = c.foundations_home + "/nodes/" + c.node_id;
    finish_auth_config(c, redis_env && !c.is_master ? redis_env->host : own_host);
  } catch (const std::exception& e) {
    sk.fail(std::string{"cannot load the configuration: "} + e.what());
  }
  return out;
}

loaded<submission_config> load_submission_config(const std::string& home,
                                                 const std::string& env_name) {
  loaded<submission_config> out;
  sink sk{out.warnings, out.error};
  try {
    submission_config& c = out.config;
    c.env_name = env_name;
    if (env_name.empty() || env_name[0] == '.' ||
        env_name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
          std::string::npos)
      return sk.fail("environment name '" + env_name + "': expected letters, digits, '.', '_' or '-'"), out;
    c.file = home + "/config/submission/" + env_name + ".config.yaml";
    std::error_code ec;
    if (!fs::exists(c.file, ec))
      return sk.fail("no submission config for environment '" + env_name + "': expected " + c.file), out;
    auto f = open_yaml(sk, c.file, user_home_of(current_environment()));
    if (!f)
      return out;
    f->known({"scheduler_url", "working_dir_root", "job_results_root", "job_store_dir_root",
              "container_config_root", "cache_config", "job_deployment_env", "results_config",
              "obfuscate_foundations", "ssh_config", "worker", "log_level"});
    std::string url;
    if (!f->str("scheduler_url", url)) {
      if (!sk.failed())
        sk.fail(c.file + ": scheduler_url: required (the scheduler's URL, e.g. http://<master>:5558)");
      return out;
    }
    std::string l = lower(url);
    if ((l.rfind("http://", 0) != 0 && l.rfind("https://", 0) != 0) || !split_address(url))
      return f->bad("scheduler_url", "a URL starting with http:// or https://", f->get("scheduler_url")), out;
    while (url.back() == '/')
      url.pop_back();
    c.scheduler_url = url;
    f->str("working_dir_root", c.working_dir_root);
    f->str("job_results_root", c.job_results_root);
    f->str("job_store_dir_root", c.job_store_dir_root);
    f->str("container_config_root", c.container_config_root);
  } catch (const std::exception& e) {
    sk.fail(std::string{"cannot load the submission configuration: "} + e.what());
  }
  return out;
}

} // namespace atlas
