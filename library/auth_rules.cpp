// The request-level rules of -p mode (see auth_rules.hpp).

#include "library/auth_rules.hpp"

#include <algorithm>
#include <cctype>

#include "adapters/json.hpp"
#include "adapters/jwt.hpp"

namespace atlas::auth {

namespace {

/// The credentials after `scheme ` in the Authorization header, or empty.
std::string credentials_of(const std::map<std::string, std::string>& headers,
                           std::string_view scheme) {
  auto h = headers.find("authorization");
  if (h == headers.end() || h->second.size() <= scheme.size())
    return {};
  std::string_view v = h->second;
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(v[i])) != scheme[i])
      return {};
  if (v[scheme.size()] != ' ')
    return {};
  v.remove_prefix(scheme.size() + 1);
  while (!v.empty() && v.front() == ' ')
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  return std::string{v};
}

void drop_token_from_environment(json::value& spec) {
  auto* env = const_cast<json::value*>(spec.find("environment"));
  if (env == nullptr)
    return;
  if (env->is_object()) {
    auto& o = env->object;
    o.erase(std::remove_if(o.begin(), o.end(),
                           [](auto& kv) { return kv.first == "FOUNDATIONS_TOKEN"; }),
            o.end());
  } else if (env->is_array()) {
    auto& a = env->array;
    a.erase(std::remove_if(a.begin(), a.end(),
                           [](auto& item) {
                             return item.is_string()
                                    && item.string.rfind("FOUNDATIONS_TOKEN=", 0) == 0;
                           }),
            a.end());
  }
}

} // namespace

bool exempt(const http_request& req, const std::vector<std::string>& parts) {
  auto n = parts.size();
  auto is = [&](size_t i, std::string_view s) { return n > i && parts[i] == s; };
  if (is(0, "healthz") && n == 1)
    return true;
  if (is(0, "api") && is(1, "v1") && is(2, "healthz") && n == 3)
    return true;
  if (is(0, "api") && is(1, "v2beta") && is(2, "auth") && n == 4
      && (parts[3] == "cli_login" || parts[3] == "login"))
    return true;
  if (req.listener == "dashboard" && !is(0, "api"))
    return true;
  // A job's own credential (its tracking secret) guards these.
  if (is(0, "api") && is(1, "v1") && is(2, "local_runs") && n == 5 && parts[4] == "end")
    return true;
  return is(0, "api") && is(1, "v1") && is(2, "jobs") && n >= 5
         && parts[4].rfind("tracking", 0) == 0;
}

bool is_scrape(const std::vector<std::string>& parts, const std::string& bearer,
               const std::string& metrics_token) {
  auto n = parts.size();
  bool metrics = (n == 1 && parts[0] == "metrics")
                 || (n == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "metrics");
  if (!metrics || metrics_token.empty() || bearer.size() != metrics_token.size())
    return false;
  unsigned char diff = 0;
  for (size_t k = 0; k < bearer.size(); ++k)
    diff |= static_cast<unsigned char>(bearer[k] ^ metrics_token[k]);
  return diff == 0;
}

bool is_auth_route(const std::vector<std::string>& parts, std::string& what) {
  if (parts.size() == 4 && parts[0] == "api" && parts[1] == "v2beta" && parts[2] == "auth") {
    what = parts[3];
    return true;
  }
  return false;
}

std::string bearer_token(const std::map<std::string, std::string>& headers) {
  return credentials_of(headers, "bearer");
}

std::optional<std::pair<std::string, std::string>>
basic_credentials(const std::map<std::string, std::string>& headers) {
  auto encoded = credentials_of(headers, "basic");
  if (encoded.empty())
    return std::nullopt;
  auto plain = jwt::base64_decode(encoded);
  if (!plain)
    return std::nullopt;
  auto colon = plain->find(':');
  if (colon == std::string::npos || colon == 0)
    return std::nullopt;
  return std::make_pair(plain->substr(0, colon), plain->substr(colon + 1));
}

std::string owned_submission(std::string_view body, const std::string& user) {
  std::string err;
  auto v = json::parse(body, err);
  if (!v || !v->is_object())
    return std::string{body};
  auto* meta = const_cast<json::value*>(v->find("metadata"));
  if (meta == nullptr) {
    v->object.emplace_back("metadata", json::value{});
    meta = &v->object.back().second;
    meta->type = json::value::kind::object;
  } else if (meta->is_null()) {
    meta->type = json::value::kind::object;
  }
  if (!meta->is_object())
    return std::string{body}; // the submit route explains what is wrong
  json::value name;
  name.type = json::value::kind::string;
  name.string = user;
  auto* old = const_cast<json::value*>(meta->find("username"));
  if (old != nullptr)
    *old = std::move(name);
  else
    meta->object.emplace_back("username", std::move(name));
  if (auto* spec = const_cast<json::value*>(v->find("spec")); spec && spec->is_object())
    drop_token_from_environment(*spec);
  return v->dump();
}

} // namespace atlas::auth
