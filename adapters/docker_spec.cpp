#include "adapters/docker_spec.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "adapters/job_argv.hpp"
#include "adapters/json.hpp"

namespace atlas::docker {

namespace {

constexpr uint64_t mib = 1ull << 20;

std::optional<json::value> parse_spec(const std::string& spec_json, std::string& error) {
  auto spec = json::parse(spec_json.empty() ? "{}" : spec_json, error);
  if (!spec || !spec->is_object()) {
    error = "spec is not a JSON object";
    return std::nullopt;
  }
  return spec;
}

bool is_under(const std::string& path, const std::string& root) {
  if (root.empty())
    return false;
  auto r = root;
  while (r.size() > 1 && r.back() == '/')
    r.pop_back();
  return path == r || (path.size() > r.size() && path.compare(0, r.size(), r) == 0
                       && (r == "/" || path[r.size()] == '/'));
}

bool valid_mode(const std::string& mode) {
  if (mode.empty())
    return false;
  std::istringstream in(mode);
  for (std::string part; std::getline(in, part, ',');)
    if (part != "rw" && part != "ro" && part != "z" && part != "Z")
      return false;
  return true;
}

struct bind {
  std::string host, container, mode;
};

/// Checks one of the spec's volumes and adds it.
bool add_volume(const container_options& o, std::string host, std::string container,
                std::string mode, std::vector<bind>& binds, std::string& error) {
  namespace fs = std::filesystem;
  if (host.empty() || host[0] != '/' || container.empty() || container[0] != '/') {
    error = "spec.volumes: '" + host + "' -> '" + container
            + "': both paths must be absolute";
    return false;
  }
  host = fs::path(host).lexically_normal().string();
  while (host.size() > 1 && host.back() == '/')
    host.pop_back();
  if (mode.empty())
    mode = "rw";
  if (!valid_mode(mode)) {
    error = "spec.volumes: mode of '" + host + "' must be rw or ro, got '" + mode + "'";
    return false;
  }
  bool allowed = false;
  for (auto& root : o.volume_roots)
    allowed = allowed || is_under(host, root);
  if (!allowed) {
    std::string roots;
    for (auto& root : o.volume_roots)
      roots += (roots.empty() ? "" : ", ") + root;
    error = "spec.volumes: '" + host + "' is outside the directories containers may bind on this node ("
            + roots + ")";
    return false;
  }
  for (auto& b : binds)
    if (b.container == container) {
      b = bind{host, container, mode}; // the spec's wins over a default
      return true;
    }
  binds.push_back(bind{host, container, mode});
  return true;
}

bool spec_volumes(const json::value* v, const container_options& o, std::vector<bind>& binds,
                  std::string& error) {
  if (v == nullptr || v->is_null())
    return true;
  if (v->is_object()) {
    for (auto& [host, target] : v->object) {
      std::string container, mode;
      if (target.is_string()) {
        container = target.string;
      } else if (target.is_object()) {
        container = target.get_string("bind").value_or("");
        mode = target.get_string("mode").value_or("");
      } else {
        error = "spec.volumes['" + host + "'] must be {bind, mode}";
        return false;
      }
      if (!add_volume(o, host, container, mode, binds, error))
        return false;
    }
    return true;
  }
  if (v->is_array()) {
    for (auto& item : v->array) {
      if (!item.is_string()) {
        error = "spec.volumes must hold \"host:container[:mode]\" strings";
        return false;
      }
      std::vector<std::string> parts;
      std::istringstream in(item.string);
      for (std::string p; std::getline(in, p, ':');)
        parts.push_back(p);
      if (parts.size() < 2 || parts.size() > 3) {
        error = "spec.volumes: '" + item.string + "' is not host:container[:mode]";
        return false;
      }
      if (!add_volume(o, parts[0], parts[1], parts.size() == 3 ? parts[2] : "", binds, error))
        return false;
    }
    return true;
  }
  error = "spec.volumes must be an object or a list";
  return false;
}

} // namespace

std::string spec_image(const std::string& spec_json) {
  std::string err;
  auto spec = json::parse(spec_json.empty() ? "{}" : spec_json, err);
  if (!spec || !spec->is_object())
    return {};
  return spec->get_string("image").value_or("");
}

std::set<std::string> spec_env_names(const std::string& spec_json) {
  std::set<std::string> out;
  std::string err;
  auto spec = json::parse(spec_json.empty() ? "{}" : spec_json, err);
  const json::value* vars = spec && spec->is_object() ? spec->find("environment") : nullptr;
  if (vars == nullptr)
    return out;
  if (vars->is_object())
    for (auto& [k, v] : vars->object)
      out.insert(k);
  if (vars->is_array())
    for (auto& item : vars->array)
      if (item.is_string())
        out.insert(item.string.substr(0, item.string.find('=')));
  return out;
}

std::string container_cwd(const container_options& o, const std::string& spec_json) {
  std::string err;
  auto spec = json::parse(spec_json.empty() ? "{}" : spec_json, err);
  if (spec && spec->is_object())
    if (auto wd = spec->get_string("working_dir"); wd && !wd->empty() && (*wd)[0] == '/')
      return *wd;
  if (o.cwd.size() > o.work_dir.size() && o.cwd.compare(0, o.work_dir.size(), o.work_dir) == 0)
    return "/job" + o.cwd.substr(o.work_dir.size());
  return "/job";
}

std::optional<std::string> create_body(const std::string& spec_json, const container_options& o,
                                       std::string& error) {
  auto spec = parse_spec(spec_json, error);
  if (!spec)
    return std::nullopt;
  auto image = spec->get_string("image").value_or("");
  if (image.empty())
    image = o.default_image;
  if (image.empty()) {
    error = "the spec names no image and docker.image is not set in atlas.config.yaml";
    return std::nullopt;
  }
  auto run = spec_argv(*spec, o.python, error);
  if (!run)
    return std::nullopt;
  if (auto wd = spec->find("working_dir"); wd && !wd->is_null()
      && (!wd->is_string() || wd->string.empty() || wd->string[0] != '/')) {
    error = "spec.working_dir must be an absolute path";
    return std::nullopt;
  }
  uint64_t memory = 0;
  if (auto m = spec->find("mem_limit"); m && !m->is_null()) {
    std::string text = m->is_string() ? m->string : m->is_number() ? m->dump() : std::string{"?"};
    auto bytes = parse_memory(text, error);
    if (!bytes)
      return std::nullopt;
    if (*bytes > 0 && *bytes < 6 * mib) {
      error = "spec.mem_limit: " + text + " is below Docker's minimum of 6 MB";
      return std::nullopt;
    }
    memory = *bytes;
  }
  std::vector<bind> binds{{o.work_dir, "/job", "rw"}};
  if (!o.results_root.empty())
    binds.push_back({o.results_root, o.results_root, "rw"});
  if (!o.config_dir.empty())
    binds.push_back({o.config_dir, "/root/.foundations/config", "ro"});
  if (!spec_volumes(spec->find("volumes"), o, binds, error))
    return std::nullopt;
  auto cwd = container_cwd(o, spec_json);

  json::writer w;
  w.begin_object().kv("Image", image);
  w.key("Entrypoint").begin_array();
  for (auto& e : run->entrypoint)
    w.value(e);
  w.end_array().key("Cmd").begin_array();
  for (auto& c : run->command)
    w.value(c);
  w.end_array().key("Env").begin_array();
  for (auto& kv : o.env)
    if (kv.rfind("FOUNDATIONS_WORKING_DIR=", 0) != 0)
      w.value(kv);
  w.value("FOUNDATIONS_WORKING_DIR=" + cwd);
  w.end_array();
  w.kv("WorkingDir", cwd);
  if (!o.user.empty())
    w.kv("User", o.user);
  w.kv("AttachStdout", true).kv("AttachStderr", true).kv("Tty", false).kv("OpenStdin", false);
  w.key("Labels").begin_object().kv("atlas.job_id", o.job_id).kv("atlas.node", o.node_id).end_object();
  w.key("HostConfig").begin_object();
  w.key("Binds").begin_array();
  for (auto& b : binds)
    w.value(b.host + ":" + b.container + ":" + b.mode);
  w.end_array();
  w.kv("NetworkMode", o.network_mode.empty() ? std::string{"none"} : o.network_mode);
  if (memory > 0)
    w.kv("Memory", memory).kv("MemorySwap", memory);
  if (o.cpus > 0)
    w.kv("NanoCpus", static_cast<int64_t>(std::llround(o.cpus * 1e9)));
  if (!o.gpus.empty()) {
    w.key("DeviceRequests").begin_array().begin_object().kv("Driver", "nvidia");
    w.key("DeviceIDs").begin_array();
    for (auto& g : o.gpus)
      w.value(g);
    w.end_array();
    w.key("Capabilities").begin_array().begin_array().value("gpu").end_array().end_array();
    w.end_object().end_array();
  }
  w.end_object().end_object();
  return w.take();
}

std::vector<std::string> container_env(const std::vector<std::string>& job_env,
                                       const std::map<std::string, std::string>& node_env,
                                       const std::set<std::string>& keep) {
  std::vector<std::string> out;
  for (auto& kv : job_env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos)
      continue;
    auto name = kv.substr(0, eq);
    if (name == "CUDA_VISIBLE_DEVICES" || name == "NVIDIA_VISIBLE_DEVICES")
      continue;
    auto inherited = node_env.find(name);
    bool own = keep.count(name) > 0 || inherited == node_env.end()
               || inherited->second != kv.substr(eq + 1);
    if (own)
      out.push_back(kv);
  }
  return out;
}

void log_demux::feed(std::string_view chunk, const sink& out) {
  while (!chunk.empty()) {
    if (payload_left_ > 0) {
      auto n = std::min<size_t>(payload_left_, chunk.size());
      out(stream_, chunk.substr(0, n));
      payload_left_ -= n;
      chunk.remove_prefix(n);
      continue;
    }
    auto need = 8 - buf_.size();
    auto n = std::min(need, chunk.size());
    buf_.append(chunk.data(), n);
    chunk.remove_prefix(n);
    if (buf_.size() < 8)
      return;
    auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(buf_[i])); };
    stream_ = static_cast<int>(byte(0));
    payload_left_ = (byte(4) << 24) | (byte(5) << 16) | (byte(6) << 8) | byte(7);
    buf_.clear();
  }
}

} // namespace atlas::docker
