#pragma once

// <dir>/job.config.yaml, the original's per-project submission settings,
// parsed with no I/O so it can be unit-tested. The original client read
// project_name, entrypoint, num_gpus, ram, params, log_level and worker:
// (the container's image, command/args, entrypoint, working_dir,
// environment, volumes); Atlas adds time_limit. Flags given to
// `foundations submit` win over the file.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "adapters/status.hpp"

namespace atlas::cli {

struct job_config {
  std::string project_name;
  std::string time_limit;              // as written: the forms of --time
  std::optional<long long> num_gpus;   // whole, >= 0
  std::string mem_limit;               // from ram (GB), as --ram sends it ("1.5g")
  std::string params;                  // a JSON object, for load_parameters()
  std::string log_level;               // DEBUG, INFO, WARNING, ERROR or CRITICAL
  // The job's spec, each a JSON value or empty when not set:
  std::string entrypoint;              // entrypoint, else worker.entrypoint (what --entrypoint sets)
  std::string command;                 // worker.args, else worker.command (the words after the entrypoint)
  std::string image;                   // worker.image (a Docker runner's image)
  std::string working_dir;             // worker.working_dir
  std::vector<std::pair<std::string, std::string>> environment; // worker.environment, and
                                       // FOUNDATIONS_LOG_LEVEL from log_level
  std::string volumes;                 // worker.volumes: host path -> {bind, mode}
  std::vector<std::string> ignored;    // keys nothing here reads, for a warning
};

/// Parses a job.config.yaml's text; an error names `file` and the key.
result<job_config> parse_job_config(const std::string& yaml_text, const std::string& file);

} // namespace atlas::cli
