#include "runtime/cli/job_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "adapters/json.hpp"
#include "runtime/cli/submit_flags.hpp"
#include "runtime/cli/yaml_json.hpp"

namespace atlas::cli {

namespace {

bool set(const YAML::Node& n) {
  return n && !n.IsNull();
}

/// A command line as the spec takes it: a string (split on spaces by the
/// node) or a list of strings.
std::optional<std::string> words(const YAML::Node& n) {
  if (n.IsScalar())
    return json::quote(n.Scalar());
  if (!n.IsSequence())
    return std::nullopt;
  json::writer w;
  w.begin_array();
  for (const auto& item : n) {
    if (!item.IsScalar())
      return std::nullopt;
    w.value(item.Scalar());
  }
  w.end_array();
  return w.take();
}

/// worker: what the original let a project change of the job's container.
status read_worker(const YAML::Node& worker, const std::string& at, job_config& out) {
  if (!worker.IsMap())
    return status::fail(at + ": expected a mapping (image, command, entrypoint, working_dir, "
                             "environment, volumes)");
  static const std::set<std::string> known{"image", "command", "args", "entrypoint",
                                           "working_dir", "environment", "volumes"};
  for (const auto& kv : worker)
    if (!known.count(kv.first.Scalar()))
      out.ignored.push_back("worker." + kv.first.Scalar());
  auto scalar = [&](const char* key, std::string& field) -> status {
    auto n = worker[key];
    if (!set(n))
      return status::success();
    if (!n.IsScalar() || n.Scalar().empty())
      return status::fail(at + "." + key + ": expected a string");
    field = json::quote(n.Scalar());
    return status::success();
  };
  if (auto st = scalar("image", out.image); !st)
    return st;
  if (auto st = scalar("working_dir", out.working_dir); !st)
    return st;
  // The original: args (the submitted command) over command.
  for (const char* key : {"command", "args", "entrypoint"}) {
    auto n = worker[key];
    if (!set(n))
      continue;
    auto w = words(n);
    if (!w)
      return status::fail(at + "." + key + ": expected a string or a list of strings");
    (std::string_view(key) == "entrypoint" ? out.entrypoint : out.command) = *w;
  }
  if (auto env = worker["environment"]; set(env)) {
    if (!env.IsMap())
      return status::fail(at + ".environment: expected a mapping of variable names to values");
    for (const auto& kv : env) {
      if (!kv.second.IsScalar() && !kv.second.IsNull())
        return status::fail(at + ".environment." + kv.first.Scalar() + ": expected a value, not a "
                            + (kv.second.IsMap() ? "mapping" : "list"));
      out.environment.emplace_back(kv.first.Scalar(), kv.second.IsNull() ? std::string{} : kv.second.Scalar());
    }
  }
  if (auto vols = worker["volumes"]; set(vols)) {
    if (!vols.IsMap())
      return status::fail(at + ".volumes: expected a mapping of host paths to {bind, mode}");
    for (const auto& kv : vols)
      if (!kv.second.IsMap() || !kv.second["bind"] || !kv.second["bind"].IsScalar())
        return status::fail(at + ".volumes." + kv.first.Scalar()
                            + ": expected {bind: <path in the container>, mode: rw|ro}");
    out.volumes = yaml_json(vols);
  }
  return status::success();
}

} // namespace

result<job_config> parse_job_config(const std::string& yaml_text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return status::fail(file + ": not valid YAML (line " + std::to_string(e.mark.line + 1) + "): " + e.msg);
  }
  job_config out;
  if (!set(root))
    return out;
  if (!root.IsMap())
    return status::fail(file + ": expected a mapping of settings (project_name: ..., ...)");
  static const std::set<std::string> known{"project_name", "time_limit", "num_gpus", "ram", "params",
                                           "log_level", "entrypoint", "worker"};
  for (const auto& kv : root)
    if (!known.count(kv.first.Scalar()))
      out.ignored.push_back(kv.first.Scalar());
  auto at = [&](const char* key) { return file + ": " + key; };
  for (auto [key, field] : {std::pair{"project_name", &out.project_name},
                            std::pair{"time_limit", &out.time_limit},
                            std::pair{"log_level", &out.log_level}}) {
    auto n = root[key];
    if (!set(n))
      continue;
    if (!n.IsScalar())
      return status::fail(at(key) + ": expected a string");
    *field = n.Scalar();
  }
  if (!out.log_level.empty()) {
    std::transform(out.log_level.begin(), out.log_level.end(), out.log_level.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    static const std::set<std::string> levels{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};
    if (!levels.count(out.log_level))
      return status::fail(at("log_level") + ": expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got '"
                          + root["log_level"].Scalar() + "'");
  }
  if (auto n = root["num_gpus"]; set(n)) {
    auto v = n.IsScalar() ? yaml_number(n.Scalar()) : std::nullopt;
    if (!v || *v < 0 || *v != std::floor(*v) || *v > 1024)
      return status::fail(at("num_gpus") + ": expected a whole number >= 0");
    out.num_gpus = static_cast<long long>(*v);
  }
  if (auto n = root["ram"]; set(n)) {
    auto gb = n.IsScalar() ? parse_ram_gb(n.Scalar()) : std::nullopt;
    if (!gb)
      return status::fail(at("ram") + ": expected a number of GB > 0 (e.g. 4 or 1.5)");
    out.mem_limit = *gb;
  }
  if (auto n = root["params"]; set(n)) {
    if (!n.IsMap())
      return status::fail(at("params") + ": expected a mapping of names to values (what load_parameters() returns)");
    out.params = yaml_json(n);
  }
  if (auto w = root["worker"]; set(w))
    if (auto st = read_worker(w, at("worker"), out); !st)
      return st;
  // The job's SDK reads the level from its environment; the worker's own setting wins.
  bool own_level = std::any_of(out.environment.begin(), out.environment.end(),
                               [](auto& kv) { return kv.first == "FOUNDATIONS_LOG_LEVEL"; });
  if (!out.log_level.empty() && !own_level)
    out.environment.emplace_back("FOUNDATIONS_LOG_LEVEL", out.log_level);
  // The top-level entrypoint was the original's script_to_run: it wins over worker's.
  if (auto n = root["entrypoint"]; set(n)) {
    auto w = words(n);
    if (!w)
      return status::fail(at("entrypoint") + ": expected a string or a list of strings");
    out.entrypoint = *w;
  }
  return out;
}

} // namespace atlas::cli
