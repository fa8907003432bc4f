// RS256 verification of access tokens with OpenSSL 3 (EVP_PKEY_fromdata from
// the JWKS modulus and exponent, EVP_DigestVerify with SHA-256). Nothing else
// is accepted: the algorithm is fixed here, never taken from the token.

#include "adapters/jwt.hpp"

#include <array>
#include <limits>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "adapters/json.hpp"

namespace atlas::jwt {

namespace {

/// Smallest RSA modulus accepted, in bits.
constexpr int min_rsa_bits = 2048;

/// Longest token looked at; Keycloak's are a few kilobytes.
constexpr size_t max_token_bytes = 16 << 10;

constexpr std::string_view b64url_alphabet =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::array<int8_t, 256> decode_table() {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (size_t i = 0; i < b64url_alphabet.size(); ++i)
    t[static_cast<unsigned char>(b64url_alphabet[i])] = static_cast<int8_t>(i);
  return t;
}

std::shared_ptr<void> rsa_public_key(const std::string& n, const std::string& e) {
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                           static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                           static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY_CTX* ctx = nullptr;
  EVP_PKEY* key = nullptr;
  if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1
      && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1
      && (params = OSSL_PARAM_BLD_to_param(bld)) != nullptr
      && (ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr)) != nullptr
      && EVP_PKEY_fromdata_init(ctx) == 1) {
    if (EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
      key = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  if (key != nullptr && EVP_PKEY_get_bits(key) < min_rsa_bits) {
    EVP_PKEY_free(key);
    key = nullptr;
  }
  if (key == nullptr)
    return nullptr;
  return std::shared_ptr<void>(key, [](void* k) { EVP_PKEY_free(static_cast<EVP_PKEY*>(k)); });
}

bool rs256_matches(const void* key, std::string_view signed_part, const std::string& sig) {
  auto* pkey = const_cast<EVP_PKEY*>(static_cast<const EVP_PKEY*>(key));
  if (static_cast<int>(sig.size()) != EVP_PKEY_get_size(pkey))
    return false;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok = md != nullptr && EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, pkey) == 1
            && EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                reinterpret_cast<const unsigned char*>(signed_part.data()),
                                signed_part.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

/// A base64url part that must decode to a JSON object.
std::optional<json::value> json_part(std::string_view part) {
  auto text = base64url_decode(part);
  if (!text)
    return std::nullopt;
  std::string err;
  auto v = json::parse(*text, err);
  if (!v || !v->is_object())
    return std::nullopt;
  return v;
}

/// A NumericDate member: nullopt when absent, a bad value makes `bad` true.
std::optional<int64_t> numeric_date(const json::value& obj, std::string_view key, bool& bad) {
  auto m = obj.find(key);
  if (m == nullptr)
    return std::nullopt;
  if (!m->is_number()) {
    bad = true;
    return std::nullopt;
  }
  if (m->type == json::value::kind::integer)
    return m->integer;
  // A fraction is cut off; a date past int64 (casting it would be undefined
  // behaviour) is the furthest one there is.
  constexpr double limit = 9.2e18;
  if (m->number >= limit)
    return std::numeric_limits<int64_t>::max();
  if (m->number <= -limit)
    return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(m->number);
}

bool names_audience(const json::value& payload, const std::string& client) {
  if (auto aud = payload.find("aud")) {
    if (aud->is_string() && aud->string == client)
      return true;
    if (aud->is_array())
      for (auto& a : aud->array)
        if (a.is_string() && a.string == client)
          return true;
  }
  auto azp = payload.get_string("azp");
  return azp && *azp == client;
}

} // namespace

const char* to_string(refusal r) {
  switch (r) {
    case refusal::none: return "accepted";
    case refusal::missing: return "a bearer token is required";
    case refusal::malformed: return "the token is malformed";
    case refusal::algorithm: return "the token's signing algorithm is not accepted (RS256 only)";
    case refusal::unknown_key: return "the token is signed by an unknown key";
    case refusal::signature: return "the token's signature is invalid";
    case refusal::expired: return "the token has expired";
    case refusal::not_yet_valid: return "the token is not valid yet";
    case refusal::issuer: return "the token was issued by another issuer";
    case refusal::audience: return "the token is not meant for this client";
  }
  return "the token was refused";
}

std::optional<std::string> base64url_decode(std::string_view in) {
  static const auto table = decode_table();
  while (!in.empty() && in.back() == '=')
    in.remove_suffix(1);
  if (in.size() % 4 == 1)
    return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = table[static_cast<unsigned char>(c)];
    if (v < 0)
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string url{in};
  for (auto& c : url) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
    else if (c == '-' || c == '_')
      return std::nullopt;
  }
  return base64url_decode(url);
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(b64url_alphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0)
    out.push_back(b64url_alphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::optional<key_set> key_set::from_jwks(std::string_view json, std::string& error) {
  std::string perr;
  auto doc = json::parse(json, perr);
  if (!doc || !doc->is_object() || doc->find("keys") == nullptr || !doc->find("keys")->is_array()) {
    error = "not a JWKS document (expected {\"keys\": [...]})";
    return std::nullopt;
  }
  key_set out;
  for (auto& k : doc->find("keys")->array) {
    if (!k.is_object() || k.get_string("kty").value_or("") != "RSA")
      continue;
    if (auto use = k.get_string("use"); use && *use != "sig")
      continue;
    if (auto alg = k.get_string("alg"); alg && *alg != "RS256")
      continue;
    auto kid = k.get_string("kid");
    auto n = base64url_decode(k.get_string("n").value_or(""));
    auto e = base64url_decode(k.get_string("e").value_or(""));
    if (!kid || !n || !e || n->empty() || e->empty())
      continue;
    if (auto key = rsa_public_key(*n, *e))
      out.keys_[*kid] = std::move(key);
  }
  if (out.keys_.empty()) {
    error = "the JWKS holds no RSA signing key of 2048 bits or more";
    return std::nullopt;
  }
  return out;
}

std::vector<std::string> key_set::kids() const {
  std::vector<std::string> out;
  for (auto& [kid, key] : keys_)
    out.push_back(kid);
  return out;
}

const void* key_set::find(const std::string& kid) const {
  auto i = keys_.find(kid);
  return i == keys_.end() ? nullptr : i->second.get();
}

bool claims::has_role(std::string_view role) const {
  for (auto& r : roles)
    if (r == role)
      return true;
  return false;
}

verdict verify(std::string_view token, const key_set& keys, const policy& p, int64_t now) {
  verdict v;
  if (token.empty())
    return v.why = refusal::missing, v;
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (token.size() > max_token_bytes || dot2 == std::string_view::npos
      || token.find('.', dot2 + 1) != std::string_view::npos)
    return v.why = refusal::malformed, v;
  auto header = json_part(token.substr(0, dot1));
  auto payload = json_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto sig = base64url_decode(token.substr(dot2 + 1));
  if (!header || !payload || !sig)
    return v.why = refusal::malformed, v;
  // The algorithm is ours to choose: anything but RS256 (none, HS256 keyed
  // with the public key, ...) is refused before any key is looked at.
  if (header->get_string("alg").value_or("") != "RS256" || header->find("crit") != nullptr)
    return v.why = refusal::algorithm, v;
  v.kid = header->get_string("kid").value_or("");
  const void* key = keys.find(v.kid);
  if (key == nullptr)
    return v.why = refusal::unknown_key, v;
  if (!rs256_matches(key, token.substr(0, dot2), *sig))
    return v.why = refusal::signature, v;

  bool bad = false;
  auto exp = numeric_date(*payload, "exp", bad);
  auto nbf = numeric_date(*payload, "nbf", bad);
  if (bad)
    return v.why = refusal::malformed, v;
  if (!exp || now > *exp + p.leeway_s)
    return v.why = refusal::expired, v;
  if (nbf && now + p.leeway_s < *nbf)
    return v.why = refusal::not_yet_valid, v;
  if (payload->get_string("iss").value_or("") != p.issuer)
    return v.why = refusal::issuer, v;
  if (!names_audience(*payload, p.audience))
    return v.why = refusal::audience, v;

  v.who.subject = payload->get_string("sub").value_or("");
  v.who.username = payload->get_string("preferred_username").value_or(v.who.subject);
  if (v.who.username.empty())
    return v.why = refusal::malformed, v; // nobody to own jobs
  v.who.expires_at = *exp;
  if (auto ra = payload->find("realm_access"); ra && ra->is_object())
    if (auto roles = ra->find("roles"); roles && roles->is_array())
      for (auto& r : roles->array)
        if (r.is_string())
          v.who.roles.push_back(r.string);
  if (auto groups = payload->find("groups"); groups && groups->is_array())
    for (auto& g : groups->array)
      if (g.is_string() && !g.string.empty())
        v.who.groups.push_back(g.string[0] == '/' ? g.string.substr(1) : g.string);
  v.who.json = payload->dump();
  return v;
}

std::optional<int64_t> unverified_expiry(std::string_view token) {
  auto dot1 = token.find('.');
  if (dot1 == std::string_view::npos)
    return std::nullopt;
  auto dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos)
    return std::nullopt;
  auto payload = json_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload)
    return std::nullopt;
  bool bad = false;
  auto exp = numeric_date(*payload, "exp", bad);
  return bad ? std::nullopt : exp;
}

} // namespace atlas::jwt
