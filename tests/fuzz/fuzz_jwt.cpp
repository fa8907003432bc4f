// Bearer tokens and key sets (adapters/jwt, auth mode -p): a JWKS document
// and a token from the input, each verified against the key set parsed from
// the input and against a fixed real RSA key set; the base64 helpers. A
// token is only ever accepted when its signature checks out, so a fuzzed
// token against the fixed keys must always be refused.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "adapters/jwt.hpp"
#include "fuzz_util.hpp"

using namespace atlas;

namespace {

// A 2048-bit RSA public key (its private half was thrown away).
constexpr const char* fixed_jwks = R"({"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256",)"
  R"("n":"r2445-xMXH8I2m7mU0AGq33PR47QlHSicLYLX-WGsjSVMypE0hD6rtUgmJqCVmPoqPM8vtSED7poVmNCJJI5uxACdycBhVPqu4CaHwptDmL_AYcM1IdKh0t6A0MDNi2Ay4lwVLGEmt2ErxDU8kf94ex-FvnMVBl3jXhbPXwe6CVKa18-d9OCDQpr5dVwEVnuFrNSPeGZJcH7fNqxF9nBAqbFFXwps4VFBfJdgZIO9Ye5rSd9oFjmhmltuk0Nlu1nRKMIQ9ZwDHjV3oKaSTCMuH0U0cQ4d-dQq16YXFcaTBNdAnFcf9RtOeGKo6TQJbgmcgnMklMkk_awmmNP-jN2VQ",)"
  R"("e":"AQAB"}]})";

const jwt::key_set& fixed_keys() {
  static const jwt::key_set keys = [] {
    std::string error;
    auto k = jwt::key_set::from_jwks(fixed_jwks, error);
    if (!k)
      std::abort();
    return *k;
  }();
  return keys;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::input in{data, size};
  const int64_t now = 1700000000 + in.byte() * 1000000;
  const std::string jwks{in.take(in.byte() * 16u)};
  const std::string token{in.rest()};

  jwt::policy p;
  p.issuer = "http://127.0.0.1/realms/atlas";
  if (fixed_keys().size() != 1)
    std::abort();
  auto fixed = jwt::verify(token, fixed_keys(), p, now);
  if (fixed.ok())
    std::abort(); // a forged token was accepted
  (void)jwt::to_string(fixed.why);

  std::string error;
  if (auto keys = jwt::key_set::from_jwks(jwks, error)) {
    for (const auto& kid : keys->kids())
      if (!keys->has(kid) || keys->find(kid) == nullptr)
        std::abort();
    auto v = jwt::verify(token, *keys, p, now);
    if (v.ok() && v.who.username.empty() && v.who.subject.empty())
      std::abort();
  } else if (error.empty()) {
    std::abort();
  }

  (void)jwt::unverified_expiry(token);
  if (auto raw = jwt::base64url_decode(token)) {
    if (jwt::base64url_decode(jwt::base64url_encode(*raw)) != raw)
      std::abort();
  }
  (void)jwt::base64_decode(token);
  return 0;
}
