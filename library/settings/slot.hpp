#pragma once

// What a worker slot needs to run a job (actors/worker_slot*.cpp): where its
// files go, how it runs and how it is stopped.

#include <cstdint>
#include <string>
#include <vector>

namespace atlas {

struct slot_settings {
  // directories (worker_config/submission/scheduler.config.yaml and defaults)
  std::string working_dir_root;   // default <home>/job_data/working_dir (must be the same on all nodes)
  std::string job_store_dir_root; // default <home>/job_data/job_store: uploaded bundles
  std::string job_results_root;   // default <home>/job_data: archives under archive/<job_id>/artifacts
  std::string runner = "process"; // runner: process | docker
  std::string python = "python3"; // interpreter for `python3 <command...>`
  uint64_t log_cap_bytes = 64ull << 20; // limits.log_cap_mb
  int stop_grace_s = 10;          // limits.stop_grace_s: SIGTERM, then SIGKILL
  int warning_signal = 10;        // limits.warning_signal: SIGUSR1 before a time limit or a preemption (name or number)
  int time_warning_s = 30;        // limits.time_warning_s: the warning signal this long before a time limit
  int drain_timeout_s = 30;       // limits.drain_timeout_s: `stop` lets jobs finish this long
  std::string sdk_dir; // ATLAS_SDK_DIR, else directories.sdk_dir, else found next to the program: put on jobs' PYTHONPATH
  std::vector<std::string> gpus;        // -g: this node's GPU ids, as detected at start
  std::vector<std::string> gpu_details; // -g: "<index> <name> (<memory>, <uuid>)" each
  std::string gpu_model;                // -g: their model name ("mixed" when they differ)

  /// "" or what is wrong, naming the setting.
  std::string validate() const;
};

} // namespace atlas
