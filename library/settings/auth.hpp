#pragma once

// -p mode (atlas.config.yaml `auth:`, library/auth_config.cpp): which
// Keycloak tokens the gateway accepts (actors/gateway/auth_check.cpp).

#include <string>

namespace atlas {

struct auth_settings {
  std::string auth_issuer;    // auth.issuer; default https://<master host>:8443/auth/realms/Atlas
  std::string auth_client_id = "foundations";  // auth.client_id: aud or azp of accepted tokens
  std::string auth_ca_file;   // auth.ca_file: CA of a self-signed Keycloak
  std::string auth_admin_role = "atlas-admin"; // auth.admin_role: realm role that may act on every job
  int auth_leeway_s = 30;     // auth.leeway_s: clock skew on exp/nbf
  int auth_jwks_refresh_s = 10; // auth.jwks_refresh_s: at most one JWKS fetch per this long
  std::string metrics_token;  // -p: the scrape token /metrics accepts (config/metrics.token)

  /// "" or what is wrong, naming the setting. `on`: -p or auth.enabled.
  std::string validate(bool on) const;
};

} // namespace atlas
