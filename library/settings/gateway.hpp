#pragma once

// The HTTP side of a node (actors/gateway/): where it listens and what a
// request may carry.

#include <cstdint>
#include <string>

namespace atlas {

struct gateway_settings {
  std::string http_host = "0.0.0.0"; // where the node API listens
  uint16_t http_port = 5000;         // from HOST_ADDRESS
  uint16_t gateway_port = 5558;      // ports.gateway: client gateway on the master; 0 = off
  uint16_t dashboard_port = 5555;    // ports.dashboard: dashboard on the master; 0 = off
  uint64_t max_upload_bytes = 1ull << 30; // limits.max_upload_mb
  uint64_t max_body_bytes = 1ull << 20;   // limits.max_body_kb
  uint64_t max_header_bytes = 64 << 10;   // limits.max_header_kb
  int idle_timeout_s = 60;                // limits.idle_timeout_s: idle keep-alive connections
  std::string web_dir; // ATLAS_WEB_DIR, else directories.web_dir, else found next to the program (library/dashboard_static.hpp)

  /// "" or what is wrong, naming the setting.
  std::string validate() const;
};

} // namespace atlas
