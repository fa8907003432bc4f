#pragma once

// The `auth:` section of atlas.config.yaml (Keycloak settings of -p mode).
// Kept apart from config.cpp so the auth issue owns its keys.

#include "library/config.hpp"

namespace atlas {

namespace yaml {
class section;
}

/// Reads `auth:` into `c`: enabled, issuer, client_id, ca_file, admin_role,
/// leeway_s, jwks_refresh_s. Unknown keys warn; bad values name the key.
void read_auth_section(const yaml::section& s, node_config& c);

/// After the node's addresses are known: the default issuer
/// https://<master host>:8443/auth/realms/Atlas when none is configured.
/// `master_host` is REDIS_ADDRESS's host on a worker, this node's host on
/// the master.
void finish_auth_config(node_config& c, const std::string& master_host);

} // namespace atlas
