#include "library/config.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
#include <string_view>

#include "adapters/byte_size.hpp"
#include "library/auth_config.hpp"
#include "library/notify_config.hpp"
#include "library/config_files.hpp"
#include "library/config_hosts.hpp"
#include "library/yaml_section.hpp"

extern char** environ;

namespace atlas {
namespace {

namespace fs = std::filesystem;
using namespace config_parts;
using yaml::open_yaml;
using yaml::expand_home;
using yaml::lower;
using yaml::parse_whole;
using yaml::sink;

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
  if (auto v = env_value(env, "ATLAS_NODE_CPUS")) {
    char* end = nullptr;
    double n = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end != '\0' || !(n > 0) || n > 1e6)
      return sk.fail("ATLAS_NODE_CPUS: expected a number of CPUs > 0, got '" + *v + "'");
    c.node_cpus = n;
  }
  if (auto v = env_value(env, "ATLAS_NODE_MEMORY")) {
    std::string why;
    auto bytes = parse_memory(*v, why);
    if (!bytes || *bytes == 0)
      return sk.fail("ATLAS_NODE_MEMORY: expected a size such as 64g or 512m, got '" + *v + "'");
    c.node_memory_bytes = *bytes;
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
    if (auto why = finish_notify_config(c, env); !why.empty())
      return sk.fail(why), out;
    if (auto why = c.validate(); !why.empty())
      sk.fail(why);
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
