#pragma once

// Who this node is: its address, role, home and how many jobs it runs.

#include <string>

namespace atlas {

struct node_settings {
  std::string foundations_home;  // $FOUNDATIONS_HOME, default ~/.foundations
  std::string host_address = "http://127.0.0.1:5000/"; // HOST_ADDRESS, normalised with trailing '/'
  std::string role = "auto";     // --role: auto | master | worker
  bool is_master = true;         // resolved from role and REDIS_ADDRESS
  std::string node_id;           // "<host>-<port>" of HOST_ADDRESS, safe as a path segment
  std::string node_dir;          // <home>/nodes/<node_id>: pid file, log, redis data
  int num_workers = 1;           // NUM_WORKERS; 0 = runs no jobs
  bool auth = false;             // -p
  bool gpu = false;              // -g
  std::string log_level = "info"; // worker_config/execution/default.config.yaml log_level
  int actor_threads = 0;         // limits.actor_threads: CAF scheduler threads; 0: one per core

  /// "" or what is wrong, naming the setting.
  std::string validate() const;
};

} // namespace atlas
