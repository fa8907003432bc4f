#pragma once

// The cluster secret every node (and atlas-ctl) shows at the master's door.

#include <string>

#include "library/config.hpp"

namespace atlas {

/// cluster.secret from atlas.config.yaml, else ATLAS_CLUSTER_SECRET, else
/// the file config/cluster.secret in the shared FOUNDATIONS_HOME; empty when
/// there is none.
std::string read_cluster_secret(const node_config& cfg);

/// As read_cluster_secret, but a master without any secret writes a new
/// random one to config/cluster.secret (readable by its owner only).
std::string ensure_cluster_secret(const node_config& cfg);

/// -p mode: the token /metrics accepts from a scraper besides a user's
/// (config/metrics.token in the shared FOUNDATIONS_HOME, made by the master,
/// readable by its owner only); empty on a worker that cannot read it.
std::string ensure_metrics_token(const node_config& cfg);

} // namespace atlas
