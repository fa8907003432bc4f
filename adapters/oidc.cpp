// Discovery, JWKS cache, password grant and revocation against Keycloak's
// OpenID Connect endpoints, over the blocking libcurl client.

#include "adapters/oidc.hpp"

#include <cctype>

#include <spdlog/spdlog.h>

#include "adapters/json.hpp"

namespace atlas {

namespace {

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/')
    s.pop_back();
  return s;
}

} // namespace

std::string form_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

oidc_client::oidc_client(oidc_settings s) : settings_(std::move(s)) {
  settings_.issuer = trim_slash(settings_.issuer);
}

http_options oidc_client::options() const {
  http_options o;
  o.token = ""; // the provider gets no bearer token
  o.peer = "the identity provider";
  o.ca_file = settings_.ca_file;
  o.connect_timeout_s = settings_.timeout_s;
  o.request_timeout_s = settings_.timeout_s;
  return o;
}

std::shared_ptr<const jwt::key_set> oidc_client::keys() const {
  std::lock_guard<std::mutex> g{mutex_};
  return keys_;
}

jwt::verdict oidc_client::verify(std::string_view token, int64_t now) const {
  static const jwt::key_set empty_set = [] {
    // A set that knows no kid: everything is unknown_key until keys arrive.
    return jwt::key_set{};
  }();
  auto ks = keys();
  jwt::policy p{settings_.issuer, settings_.client_id, settings_.leeway_s};
  return jwt::verify(token, ks ? *ks : empty_set, p, now);
}

bool oidc_client::claim_refresh(int64_t now) {
  std::lock_guard<std::mutex> g{mutex_};
  if (now - last_fetch_ < settings_.refresh_interval_s)
    return false;
  last_fetch_ = now;
  return true;
}

status oidc_client::discover_locked() {
  auto r = http_client::get(settings_.issuer + "/.well-known/openid-configuration", options());
  if (!r.ok())
    return status::fail("OIDC discovery at " + settings_.issuer + " failed: "
                        + (r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error));
  std::string err;
  auto doc = json::parse(r.body, err);
  if (!doc || !doc->is_object())
    return status::fail("OIDC discovery at " + settings_.issuer + ": not a JSON object");
  if (trim_slash(doc->get_string("issuer").value_or("")) != settings_.issuer)
    return status::fail("OIDC discovery: the provider names itself '"
                        + doc->get_string("issuer").value_or("") + "', expected '"
                        + settings_.issuer + "' (auth.issuer)");
  oidc_endpoints e;
  e.token = doc->get_string("token_endpoint").value_or("");
  e.jwks = doc->get_string("jwks_uri").value_or("");
  e.revocation = doc->get_string("revocation_endpoint").value_or("");
  e.logout = doc->get_string("end_session_endpoint").value_or("");
  if (e.token.empty() || e.jwks.empty())
    return status::fail("OIDC discovery: token_endpoint or jwks_uri missing");
  std::lock_guard<std::mutex> g{mutex_};
  endpoints_ = std::move(e);
  return status::success();
}

status oidc_client::fetch_keys() {
  std::lock_guard<std::mutex> one{fetching_};
  oidc_endpoints e;
  {
    std::lock_guard<std::mutex> g{mutex_};
    e = endpoints_;
  }
  if (e.jwks.empty()) {
    if (auto st = discover_locked(); !st)
      return st;
    std::lock_guard<std::mutex> g{mutex_};
    e = endpoints_;
  }
  auto r = http_client::get(e.jwks, options());
  if (!r.ok())
    return status::fail("JWKS fetch from " + e.jwks + " failed: "
                        + (r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error));
  std::string err;
  auto ks = jwt::key_set::from_jwks(r.body, err);
  if (!ks)
    return status::fail("JWKS from " + e.jwks + ": " + err);
  auto kids = ks->kids();
  std::string names;
  for (auto& k : kids)
    names += (names.empty() ? "" : ",") + k;
  spdlog::info("auth: JWKS fetched from {} keys={}", e.jwks, names);
  std::lock_guard<std::mutex> g{mutex_};
  keys_ = std::make_shared<const jwt::key_set>(std::move(*ks));
  return status::success();
}

http_result oidc_client::password_grant(const std::string& username, const std::string& password) {
  std::string token_url;
  {
    std::lock_guard<std::mutex> one{fetching_};
    {
      std::lock_guard<std::mutex> g{mutex_};
      token_url = endpoints_.token;
    }
    if (token_url.empty()) {
      if (auto st = discover_locked(); !st) {
        http_result r;
        r.error = st.error();
        return r;
      }
      std::lock_guard<std::mutex> g{mutex_};
      token_url = endpoints_.token;
    }
  }
  std::string body = "grant_type=password&client_id=" + form_encode(settings_.client_id)
                     + "&username=" + form_encode(username) + "&password=" + form_encode(password)
                     + "&scope=openid";
  return http_client::request("POST", token_url, body, "application/x-www-form-urlencoded",
                              options());
}

http_result oidc_client::revoke(const std::string& refresh_token) {
  oidc_endpoints e;
  {
    std::lock_guard<std::mutex> one{fetching_};
    {
      std::lock_guard<std::mutex> g{mutex_};
      e = endpoints_;
    }
    if (e.token.empty()) {
      if (auto st = discover_locked(); !st) {
        http_result r;
        r.error = st.error();
        return r;
      }
      std::lock_guard<std::mutex> g{mutex_};
      e = endpoints_;
    }
  }
  std::string body = "client_id=" + form_encode(settings_.client_id);
  if (!e.revocation.empty()) {
    body += "&token=" + form_encode(refresh_token) + "&token_type_hint=refresh_token";
    return http_client::request("POST", e.revocation, body, "application/x-www-form-urlencoded",
                                options());
  }
  // Keycloak's logout endpoint ends the session of a refresh token.
  std::string url = e.logout.empty() ? settings_.issuer + "/protocol/openid-connect/logout" : e.logout;
  body += "&refresh_token=" + form_encode(refresh_token);
  return http_client::request("POST", url, body, "application/x-www-form-urlencoded", options());
}

} // namespace atlas
