#pragma once

// Where the cluster's certificates live, and how a node gets its own
// (DESIGN.md §8). The cluster CA is in the shared home's config/tls/ (key
// 0600, made by the master on its first start, like config/cluster.secret).
// Each node issues itself a certificate from it (CN: its node id, OU: its
// role) into its own node directory when it has none, when the name or role
// changed, or when it has under 30 days left. The shared home is already the
// root of trust of the on-premise guide (the secret, the configuration and
// every job's files are there), so this needs no enrolment protocol and no
// endpoint that answers before a peer is authenticated. A node that does
// not share the home gets the CA certificate and a certificate issued with
// `atlas-server issue-cert` copied into the same places.

#include <memory>
#include <string>

#include "adapters/status.hpp"
#include "adapters/tls.hpp"
#include "library/config.hpp"

namespace atlas {

struct cluster_ca_paths {
  std::string key;  // <home>/config/tls/ca.key
  std::string cert; // <home>/config/tls/ca.crt
};

cluster_ca_paths cluster_ca(const std::string& foundations_home);

/// The master: creates the cluster CA unless it exists.
status ensure_cluster_ca(const node_config& cfg);

/// This node's TLS files, issuing its certificate first when needed.
status ensure_node_certificate(const node_config& cfg, tls_files& out);

/// The context for this node's cluster links (ensure_node_certificate first).
std::shared_ptr<tls_context> node_tls_context(const node_config& cfg, std::string& error);

/// Issues a certificate for `name` in `role`, valid `seconds`, into `dir`
/// (name.crt, name.key and a copy of ca.crt): for a node or an operator
/// without the shared home, and for atlas-ctl's short-lived one.
status issue_certificate_into(const std::string& foundations_home, const std::string& name,
                              const std::string& role, long seconds, const std::string& dir);

} // namespace atlas
