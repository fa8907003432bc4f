// RS256 verification: every way a token can be bad is refused with its own
// reason. Keys are generated at test time with OpenSSL; tokens are signed
// here (RS256 with EVP_DigestSign, HS256 with HMAC) so each field can be
// varied alone.

#include <catch2/catch.hpp>

#include <chrono>
#include <limits>
#include <memory>
#include <string>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "adapters/json.hpp"
#include "adapters/jwt.hpp"

using namespace atlas;
using namespace atlas::jwt;

namespace {

constexpr int64_t now = 1'800'000'000;
const std::string issuer = "https://127.0.0.1:8443/realms/Atlas";

struct rsa_key {
  std::shared_ptr<EVP_PKEY> key;
  explicit rsa_key(unsigned bits = 2048)
    : key(EVP_RSA_gen(bits), EVP_PKEY_free) {
    REQUIRE(key);
  }
  std::string bn(const char* name) const {
    BIGNUM* b = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(key.get(), name, &b) == 1);
    std::string out(static_cast<size_t>(BN_num_bytes(b)), '\0');
    BN_bn2bin(b, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(b);
    return out;
  }
  std::string jwk(const std::string& kid) const {
    json::writer w;
    w.begin_object().kv("kty", "RSA").kv("use", "sig").kv("alg", "RS256").kv("kid", kid)
      .kv("n", base64url_encode(bn(OSSL_PKEY_PARAM_RSA_N)))
      .kv("e", base64url_encode(bn(OSSL_PKEY_PARAM_RSA_E))).end_object();
    return w.take();
  }
  std::string public_pem() const {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, key.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(b);
    return out;
  }
  std::string sign(std::string_view data) const {
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    size_t len = 0;
    REQUIRE(EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key.get()) == 1);
    REQUIRE(EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                           data.size()) == 1);
    std::string sig(len, '\0');
    REQUIRE(EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
    EVP_MD_CTX_free(md);
    sig.resize(len);
    return sig;
  }
};

const rsa_key& main_key() {
  static rsa_key k;
  return k;
}

key_set keys_of(const std::string& jwks_json) {
  std::string err;
  auto ks = key_set::from_jwks(jwks_json, err);
  INFO(err);
  REQUIRE(ks);
  return *ks;
}

key_set main_keys() {
  return keys_of("{\"keys\":[" + main_key().jwk("k1") + "]}");
}

std::string payload(int64_t exp = now + 300, const std::string& iss = issuer,
                    const std::string& aud_json = "\"foundations\"", const std::string& extra = "") {
  return "{\"iss\":\"" + iss + "\",\"sub\":\"u-1\",\"aud\":" + aud_json + ",\"exp\":"
         + std::to_string(exp) + ",\"iat\":" + std::to_string(now - 10)
         + ",\"preferred_username\":\"alice\",\"realm_access\":{\"roles\":[\"atlas-admin\",\"user\"]}"
         + extra + "}";
}

std::string rs256(const std::string& body, const std::string& kid = "k1",
                  const rsa_key& key = main_key(), const std::string& alg = "RS256") {
  std::string head = "{\"alg\":\"" + alg + "\",\"typ\":\"JWT\",\"kid\":\"" + kid + "\"}";
  std::string signing = base64url_encode(head) + "." + base64url_encode(body);
  return signing + "." + base64url_encode(key.sign(signing));
}

std::string hs256(const std::string& body, const std::string& secret) {
  std::string head = R"({"alg":"HS256","typ":"JWT","kid":"k1"})";
  std::string signing = base64url_encode(head) + "." + base64url_encode(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &len);
  return signing + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

refusal check(const std::string& token, int64_t at = now) {
  return verify(token, main_keys(), policy{issuer, "foundations", 30}, at).why;
}

} // namespace

TEST_CASE("base64url round-trips every byte and refuses foreign characters", "[jwt]") {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  for (size_t n = 0; n < 8; ++n)
    CHECK(base64url_decode(base64url_encode(all.substr(0, n))) == all.substr(0, n));
  CHECK(base64url_decode(base64url_encode(all)) == all);
  CHECK_FALSE(base64url_decode("ab+c"));
  CHECK_FALSE(base64url_decode("a"));
  CHECK(base64url_decode("YQ==") == "a");
}

TEST_CASE("a well-signed token gives its owner, roles and payload", "[jwt]") {
  auto v = verify(rs256(payload()), main_keys(), policy{issuer, "foundations", 30}, now);
  REQUIRE(v.ok());
  CHECK(v.kid == "k1");
  CHECK(v.who.username == "alice");
  CHECK(v.who.subject == "u-1");
  CHECK(v.who.has_role("atlas-admin"));
  CHECK_FALSE(v.who.has_role("root"));
  CHECK(v.who.expires_at == now + 300);
  CHECK(v.who.json.find("\"preferred_username\":\"alice\"") != std::string::npos);
}

TEST_CASE("a token's groups are its quota groups, Keycloak's /path form read as a name", "[jwt]") {
  auto v = verify(rs256(payload(now + 300, issuer, "\"foundations\"",
                                ",\"groups\":[\"/ml\",\"vision\",\"\",7]")),
                  main_keys(), policy{issuer, "foundations", 30}, now);
  REQUIRE(v.ok());
  CHECK(v.who.groups == std::vector<std::string>{"ml", "vision"});
  CHECK(v.who.roles == std::vector<std::string>{"atlas-admin", "user"});
}

TEST_CASE("the audience may be named by aud (string or array) or by azp", "[jwt]") {
  CHECK(check(rs256(payload(now + 60, issuer, "[\"account\",\"foundations\"]"))) == refusal::none);
  CHECK(check(rs256(payload(now + 60, issuer, "\"account\"", ",\"azp\":\"foundations\""))) == refusal::none);
  CHECK(check(rs256(payload(now + 60, issuer, "\"account\""))) == refusal::audience);
  CHECK(check(rs256(payload(now + 60, issuer, "[\"account\",\"other\"]", ",\"azp\":\"other\""))) == refusal::audience);
}

TEST_CASE("no token and malformed tokens are refused", "[jwt]") {
  CHECK(check("") == refusal::missing);
  CHECK(check("None") == refusal::malformed);
  CHECK(check("a.b") == refusal::malformed);
  CHECK(check("a.b.c.d") == refusal::malformed);
  CHECK(check("!!.??.**") == refusal::malformed);
  auto good = rs256(payload());
  CHECK(check(base64url_encode("[1]") + good.substr(good.find('.'))) == refusal::malformed);
  CHECK(check(std::string(20000, 'a') + "." + "b.c") == refusal::malformed);
  // A payload that is not JSON.
  auto head = good.substr(0, good.find('.'));
  CHECK(check(head + "." + base64url_encode("not json") + ".AAAA") == refusal::malformed);
}

TEST_CASE("alg none, HS256 keyed with the public key and other algorithms are refused", "[jwt]") {
  std::string none_head = base64url_encode(R"({"alg":"none","typ":"JWT","kid":"k1"})");
  CHECK(check(none_head + "." + base64url_encode(payload()) + ".") == refusal::algorithm);
  CHECK(check(hs256(payload(), main_key().public_pem())) == refusal::algorithm);
  CHECK(check(hs256(payload(), main_key().bn(OSSL_PKEY_PARAM_RSA_N))) == refusal::algorithm);
  CHECK(check(rs256(payload(), "k1", main_key(), "RS512")) == refusal::algorithm);
  CHECK(check(rs256(payload(), "k1", main_key(), "PS256")) == refusal::algorithm);
  CHECK(check(rs256(payload(), "k1", main_key(), "rs256")) == refusal::algorithm);
  std::string crit = R"({"alg":"RS256","kid":"k1","crit":["exp"]})";
  std::string signing = base64url_encode(crit) + "." + base64url_encode(payload());
  CHECK(check(signing + "." + base64url_encode(main_key().sign(signing))) == refusal::algorithm);
}

TEST_CASE("an unknown kid, another key and a tampered token are refused", "[jwt]") {
  rsa_key other;
  CHECK(check(rs256(payload(), "k2")) == refusal::unknown_key);
  CHECK(check(rs256(payload(), "")) == refusal::unknown_key);
  CHECK(check(rs256(payload(), "k1", other)) == refusal::signature);
  auto good = rs256(payload());
  auto d1 = good.find('.'), d2 = good.rfind('.');
  auto forged = payload(now + 300, issuer, "\"foundations\"", ",\"x\":1");
  CHECK(check(good.substr(0, d1 + 1) + base64url_encode(forged) + good.substr(d2)) == refusal::signature);
  std::string flipped = good;
  flipped[d2 + 5] = flipped[d2 + 5] == 'A' ? 'B' : 'A';
  CHECK(check(flipped) == refusal::signature);
  CHECK(check(good.substr(0, d2 + 1)) == refusal::signature); // empty signature
}

TEST_CASE("exp and nbf are checked with the configured leeway", "[jwt]") {
  CHECK(check(rs256(payload(now - 31))) == refusal::expired);
  CHECK(check(rs256(payload(now - 29))) == refusal::none);
  std::string no_exp = R"({"iss":")" + issuer + R"(","aud":"foundations","preferred_username":"a"})";
  CHECK(check(rs256(no_exp)) == refusal::expired);
  std::string bad_exp = R"({"iss":")" + issuer + R"(","aud":"foundations","exp":"soon"})";
  CHECK(check(rs256(bad_exp)) == refusal::malformed);
  CHECK(check(rs256(payload(now + 300, issuer, "\"foundations\"", ",\"nbf\":" + std::to_string(now + 60))))
        == refusal::not_yet_valid);
  CHECK(check(rs256(payload(now + 300, issuer, "\"foundations\"", ",\"nbf\":" + std::to_string(now + 20))))
        == refusal::none);
}

TEST_CASE("another issuer is refused, even one that differs only by a slash", "[jwt]") {
  CHECK(check(rs256(payload(now + 60, "https://evil.example/realms/Atlas"))) == refusal::issuer);
  CHECK(check(rs256(payload(now + 60, issuer + "/"))) == refusal::issuer);
}

TEST_CASE("a token naming nobody is refused", "[jwt]") {
  std::string nobody = R"({"iss":")" + issuer + R"(","aud":"foundations","exp":)"
                       + std::to_string(now + 60) + "}";
  CHECK(check(rs256(nobody)) == refusal::malformed);
}

TEST_CASE("a JWKS keeps only RSA signing keys of 2048 bits or more", "[jwt]") {
  rsa_key small(1024);
  std::string err;
  CHECK_FALSE(key_set::from_jwks("{\"keys\":[" + small.jwk("s") + "]}", err));
  CHECK(err.find("no RSA signing key") != std::string::npos);
  CHECK_FALSE(key_set::from_jwks("not json", err));
  CHECK_FALSE(key_set::from_jwks("{\"keys\":{}}", err));
  auto ks = keys_of("{\"keys\":[" + main_key().jwk("k1") + R"(,{"kty":"EC","kid":"e"},)"
                    + R"({"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},)"
                    + small.jwk("s") + "]}");
  CHECK(ks.size() == 1);
  CHECK(ks.has("k1"));
  CHECK_FALSE(ks.has("s"));
}

TEST_CASE("the CLI can read a token's expiry without verifying it", "[jwt]") {
  CHECK(unverified_expiry(rs256(payload(now + 42))) == now + 42);
  CHECK_FALSE(unverified_expiry("None"));
}

TEST_CASE("a date past int64 reads as the furthest date, not as undefined behaviour", "[jwt]") {
  // Found by fuzz_jwt (UBSan: 1.7e+19 cast to a 64-bit integer).
  auto body = [](const std::string& exp) {
    return "{\"iss\":\"" + std::string(issuer) + "\",\"exp\":" + exp + "}";
  };
  CHECK(unverified_expiry(rs256(body("1.7e19"))) == std::numeric_limits<int64_t>::max());
  CHECK(unverified_expiry(rs256(body("-1.7e19"))) == std::numeric_limits<int64_t>::min());
  CHECK(unverified_expiry(rs256(body("1700000000.9"))) == 1700000000);
}

TEST_CASE("verifying a token takes well under a millisecond", "[jwt][perf]") {
  auto keys = main_keys();
  auto token = rs256(payload());
  policy p{issuer, "foundations", 30};
  constexpr int n = 2000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
    REQUIRE(verify(token, keys, p, now).ok());
  auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
  WARN("RS256 verification: " << us << " us per token");
  CHECK(us < 1000);
}
