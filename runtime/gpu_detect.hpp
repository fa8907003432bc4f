#pragma once

// GPU mode (`atlas-server start -g`): the node's GPUs as nvidia-smi lists
// them, narrowed by CUDA_VISIBLE_DEVICES, and how they are shared out among
// the node's slots. Parsing and sharing are pure and unit-tested; only
// detect_gpus() runs a program.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/status.hpp"

namespace atlas {

struct node_config;

/// One GPU as `nvidia-smi --query-gpu=index,uuid,name,memory.total
/// --format=csv,noheader` prints it.
struct gpu_device {
  std::string index; ///< the id handed to jobs (CUDA_VISIBLE_DEVICES, DeviceIDs)
  std::string uuid;
  std::string name;
  uint64_t memory_mib = 0;

  /// "0 NVIDIA H200 (143771 MiB, GPU-bbcc...)"
  std::string describe() const;
};

/// Parses nvidia-smi's CSV lines; fails on a line it cannot read.
result<std::vector<gpu_device>> parse_nvidia_smi(std::string_view csv);

/// The GPUs a CUDA_VISIBLE_DEVICES value leaves (in its order): entries are
/// indices or UUIDs (a unique UUID prefix is enough); unset (`nullopt`)
/// leaves all, an empty value none. Fails for an entry that names no listed
/// GPU, or one GPU twice.
result<std::vector<gpu_device>> visible_gpus(const std::vector<gpu_device>& all,
                                             const std::optional<std::string>& cuda_visible);

/// Shares `gpus` out among `slots` slots, round robin: with as many slots as
/// GPUs each slot has one; with fewer, some have several; with more, some
/// have none. Every GPU goes to exactly one slot.
std::vector<std::vector<std::string>> gpus_per_slot(const std::vector<std::string>& gpus, int slots);

/// Runs nvidia-smi (found on PATH) and applies CUDA_VISIBLE_DEVICES from
/// `env`. Blocking: call at start-up, before any actor runs.
result<std::vector<gpu_device>> detect_gpus(const std::map<std::string, std::string>& env);

/// GPU mode for a node: detects the GPUs into cfg.gpus / cfg.gpu_details and
/// makes one slot per GPU unless NUM_WORKERS is set in `env`. Fails when no
/// GPU can be found.
status apply_gpu_mode(node_config& cfg, const std::map<std::string, std::string>& env);

} // namespace atlas
