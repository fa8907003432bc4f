#include "runtime/gpu_detect.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <sstream>

#include <sys/wait.h>

#include "library/config.hpp"

namespace atlas {

namespace {

std::string trimmed(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    auto pos = s.find(sep, start);
    out.push_back(trimmed(s.substr(start, pos == std::string_view::npos ? s.npos : pos - start)));
    if (pos == std::string_view::npos)
      return out;
    start = pos + 1;
  }
}

} // namespace

std::string gpu_device::describe() const {
  return index + " " + name + " (" + std::to_string(memory_mib) + " MiB, " + uuid + ")";
}

result<std::vector<gpu_device>> parse_nvidia_smi(std::string_view csv) {
  std::vector<gpu_device> out;
  std::istringstream in{std::string(csv)};
  for (std::string line; std::getline(in, line);) {
    if (trimmed(line).empty())
      continue;
    auto f = split(line, ',');
    if (f.size() != 4 || f[0].empty() || f[0].find_first_not_of("0123456789") != std::string::npos) {
      return status::fail("cannot read nvidia-smi's line '" + trimmed(line)
                          + "' (expected: index, uuid, name, memory.total)");
    }
    gpu_device d{f[0], f[1], f[2], 0};
    auto digits = f[3].substr(0, f[3].find_first_not_of("0123456789"));
    std::from_chars(digits.data(), digits.data() + digits.size(), d.memory_mib); // 0 when unreadable
    out.push_back(std::move(d));
  }
  return out;
}

result<std::vector<gpu_device>> visible_gpus(const std::vector<gpu_device>& all,
                                             const std::optional<std::string>& cuda_visible) {
  if (!cuda_visible)
    return all;
  std::vector<gpu_device> out;
  if (trimmed(*cuda_visible).empty())
    return out;
  for (auto& entry : split(*cuda_visible, ',')) {
    const gpu_device* found = nullptr;
    int matches = 0;
    for (auto& d : all) {
      bool hit = entry == d.index
                 || (!entry.empty() && !d.uuid.empty() && d.uuid.rfind(entry, 0) == 0
                     && entry.rfind("GPU-", 0) == 0);
      if (hit) {
        found = &d;
        ++matches;
      }
    }
    if (matches != 1) {
      return status::fail("CUDA_VISIBLE_DEVICES names GPU '" + entry + "', "
                          + (matches == 0 ? "which nvidia-smi does not list"
                                          : "which matches several GPUs"));
    }
    for (auto& d : out)
      if (d.index == found->index)
        return status::fail("CUDA_VISIBLE_DEVICES names GPU '" + entry + "' twice");
    out.push_back(*found);
  }
  return out;
}

std::vector<std::vector<std::string>> gpus_per_slot(const std::vector<std::string>& gpus,
                                                    int slots) {
  std::vector<std::vector<std::string>> out(static_cast<size_t>(std::max(slots, 0)));
  if (out.empty())
    return out;
  for (size_t i = 0; i < gpus.size(); ++i)
    out[i % out.size()].push_back(gpus[i]);
  return out;
}

result<std::vector<gpu_device>> detect_gpus(const std::map<std::string, std::string>& env) {
  const char* cmd = "nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader 2>&1";
  FILE* p = ::popen(cmd, "r");
  if (p == nullptr)
    return status::fail("-g: cannot run nvidia-smi");
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;)
    text.append(buf, n);
  int rc = ::pclose(p);
  if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
    int code = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
    return status::fail(code == 127 ? "-g: nvidia-smi not found on PATH (GPU mode needs the NVIDIA driver)"
                                    : "-g: nvidia-smi failed: " + trimmed(text));
  }
  auto all = parse_nvidia_smi(text);
  if (!all)
    return status::fail("-g: " + all.error());
  std::optional<std::string> cuda_visible;
  if (auto it = env.find("CUDA_VISIBLE_DEVICES"); it != env.end())
    cuda_visible = it->second;
  auto visible = visible_gpus(all.value(), cuda_visible);
  if (!visible)
    return status::fail("-g: " + visible.error());
  return visible;
}

status apply_gpu_mode(node_config& cfg, const std::map<std::string, std::string>& env) {
  auto gpus = detect_gpus(env);
  if (!gpus)
    return status::fail(gpus.error());
  if (gpus->empty())
    return status::fail("-g: no GPU found (nvidia-smi lists none, or CUDA_VISIBLE_DEVICES hides them all)");
  cfg.gpus.clear();
  cfg.gpu_details.clear();
  cfg.gpu_model.clear();
  for (auto& d : gpus.value()) {
    cfg.gpus.push_back(d.index);
    cfg.gpu_details.push_back(d.describe());
    // Usage is accounted per model: one name, or "mixed" for a node with several.
    cfg.gpu_model = cfg.gpu_model.empty() || cfg.gpu_model == d.name ? d.name : "mixed";
  }
  auto workers = env.find("NUM_WORKERS");
  if (workers == env.end() || workers->second.empty())
    cfg.num_workers = static_cast<int>(gpus->size());
  return status::success();
}

} // namespace atlas
