#pragma once

// Keycloak (any OpenID Connect provider) as seen by a node: discovery, the
// JWKS cache, the password grant behind `foundations login`, and refresh
// token revocation. No CAF.
//
// Thread safety: every member may be called from any thread. The fetching
// calls BLOCK (libcurl, bounded by `timeout_s`): call them from the libuv
// thread pool or a detached actor, never from a CAF scheduler thread.
// `keys()` and `verify()` never block and may be called anywhere.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "adapters/http_client.hpp"
#include "adapters/jwt.hpp"
#include "adapters/status.hpp"

namespace atlas {

struct oidc_settings {
  std::string issuer;                   // e.g. https://<master>:8443/auth/realms/Atlas, taken as given
  std::string client_id = "foundations";
  std::string ca_file;                  // CA bundle for a self-signed provider; empty: the system's
  int64_t leeway_s = 30;                // clock skew allowed on exp/nbf
  int64_t refresh_interval_s = 10;      // at most one JWKS fetch per this many seconds
  long timeout_s = 5;                   // per HTTP exchange with the provider
};

/// Endpoints from `<issuer>/.well-known/openid-configuration`.
struct oidc_endpoints {
  std::string token;      // token_endpoint
  std::string jwks;       // jwks_uri
  std::string revocation; // revocation_endpoint (may be empty)
  std::string logout;     // end_session_endpoint (Keycloak: refresh tokens are revoked there too)
};

class oidc_client {
public:
  explicit oidc_client(oidc_settings s);
  oidc_client(const oidc_client&) = delete;
  oidc_client& operator=(const oidc_client&) = delete;

  const oidc_settings& settings() const { return settings_; }

  /// The cached keys; nullptr until the first successful fetch.
  std::shared_ptr<const jwt::key_set> keys() const;

  /// Verifies against the cached keys (refusal::unknown_key when none yet).
  jwt::verdict verify(std::string_view token, int64_t now) const;

  /// Claims the next fetch: true (and the fetch is the caller's to run with
  /// fetch_keys) when none ran in the last refresh_interval_s. Never blocks,
  /// so a burst of tokens with unknown kids starts one fetch, not many.
  bool claim_refresh(int64_t now);

  /// BLOCKS. Fetches discovery (once) and the JWKS and replaces the cache.
  /// Call after claim_refresh returned true.
  status fetch_keys();

  /// BLOCKS. The password grant; the provider's answer as is.
  http_result password_grant(const std::string& username, const std::string& password);

  /// BLOCKS. Revokes a refresh token (revocation endpoint, else Keycloak's
  /// logout endpoint).
  http_result revoke(const std::string& refresh_token);

private:
  status discover_locked();
  http_options options() const;

  oidc_settings settings_;
  mutable std::mutex mutex_;
  oidc_endpoints endpoints_;                  // guarded by mutex_
  std::shared_ptr<const jwt::key_set> keys_;  // guarded by mutex_
  int64_t last_fetch_ = INT64_MIN / 2;        // guarded by mutex_
  std::mutex fetching_;                       // one fetch at a time
};

/// `application/x-www-form-urlencoded` encoding of one value.
std::string form_encode(std::string_view s);

} // namespace atlas
