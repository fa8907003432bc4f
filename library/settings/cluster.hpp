#pragma once

// How nodes find and trust each other (actors/cluster_*, runtime/cluster_*,
// runtime/master_lease).

#include <cstdint>
#include <string>

namespace atlas {

struct cluster_settings {
  uint16_t caf_port = 5559;          // ports.caf: the CAF network port
  std::string cluster_secret;        // cluster.secret, else ATLAS_CLUSTER_SECRET, else config/cluster.secret
  int heartbeat_ms = 500;            // cluster.heartbeat_ms: CAF heartbeats between nodes
  int connection_timeout_ms = 3000;  // cluster.connection_timeout_ms: a silent peer is dead after this
  std::string shared_fs = "auto";    // cluster.shared_fs: auto | yes | no: does this node see the master's job store?
  bool cluster_tls = true;           // cluster.tls: mutual TLS between nodes; false: loopback peers only
  int rejoin_grace_s = 10;           // cluster.rejoin_grace_s: after a master restart, slots have this long to report their jobs
  bool standby = true;               // cluster.standby: a second master waits as a hot standby; false: it refuses to start
  int lease_ttl_ms = 5000;           // cluster.lease_ttl_ms: the active master's lease in Redis; a standby takes over once it lapses
  uint64_t lease_epoch = 0;          // not configured: the epoch of the lease this master holds, set before its actors start

  /// "" or what is wrong, naming the setting.
  std::string validate() const;
};

} // namespace atlas
