#pragma once

// Verification of Keycloak access tokens (JWS compact form) with OpenSSL 3.
// Only RS256 is accepted; the key is chosen by the header's `kid` from a
// key set read from a JWKS document. No CAF, no network: pure functions over
// strings, so every refusal can be unit-tested.
//
// Thread safety: a key_set is immutable once built and may be shared by any
// number of threads (verification only reads the keys).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::jwt {

/// Why a token was refused. `none` means accepted.
enum class refusal : uint8_t {
  none,
  missing,       // no bearer token at all
  malformed,     // not three base64url parts of JSON objects
  algorithm,     // alg other than RS256 (none, HS*, ES*, ...), or `crit` present
  unknown_key,   // no key with the header's kid
  signature,     // the signature does not match
  expired,       // exp in the past (beyond the leeway), or exp missing
  not_yet_valid, // nbf in the future (beyond the leeway)
  issuer,        // iss is not the configured issuer
  audience,      // neither aud nor azp names the configured client
};

/// A short reason in general terms, fit for a 401 body.
const char* to_string(refusal r);

/// RSA public keys by `kid`, from a JWKS document. Keys that are not RSA
/// signing keys (kty != RSA, use != sig, alg other than RS256) are skipped.
class key_set {
public:
  /// Parses a JWKS document; nullopt (and `error`) when it is not one or
  /// holds no usable RSA key.
  static std::optional<key_set> from_jwks(std::string_view json, std::string& error);

  bool has(const std::string& kid) const { return keys_.count(kid) > 0; }
  size_t size() const { return keys_.size(); }
  std::vector<std::string> kids() const;

  /// The key (an EVP_PKEY*), or nullptr. Owned by the set.
  const void* find(const std::string& kid) const;

private:
  std::map<std::string, std::shared_ptr<void>> keys_;
};

/// What a token must satisfy besides its signature.
struct policy {
  std::string issuer;                 // iss must equal this exactly
  std::string audience = "foundations"; // aud (string or array) or azp must name it
  int64_t leeway_s = 30;              // clock skew allowed on exp and nbf
};

/// The verified identity of a token.
struct claims {
  std::string subject;            // sub
  std::string username;           // preferred_username (sub when absent)
  std::vector<std::string> roles; // realm_access.roles
  std::vector<std::string> groups; // groups (Keycloak's group mapper; "/ml" reads as "ml")
  int64_t expires_at = 0;         // exp
  std::string json;               // the payload as sent (compact JSON)

  bool has_role(std::string_view role) const;
};

/// The outcome of one verification.
struct verdict {
  refusal why = refusal::none;
  std::string kid;    // the header's kid (set as soon as the header parsed)
  claims who;         // filled only when accepted
  bool ok() const { return why == refusal::none; }
};

/// Verifies `token` against `keys` and `p` at unix time `now`.
verdict verify(std::string_view token, const key_set& keys, const policy& p, int64_t now);

/// Decodes base64url (padding optional); nullopt when it is not base64url.
std::optional<std::string> base64url_decode(std::string_view in);
/// Decodes standard base64 (+ and /, as in HTTP Basic); nullopt when invalid.
std::optional<std::string> base64_decode(std::string_view in);
/// Encodes base64url without padding.
std::string base64url_encode(std::string_view in);

/// The `exp` of a token, read WITHOUT verification (the CLI uses it to say
/// that a stored login has expired). nullopt when unreadable.
std::optional<int64_t> unverified_expiry(std::string_view token);

} // namespace atlas::jwt
