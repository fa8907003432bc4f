// The /api/v2beta/auth/* routes of -p mode: login and cli_login (a
// password grant at Keycloak), logout (revokes the refresh token). verify
// is answered by the token check (auth_check.cpp). Keycloak is asked on the
// libuv thread pool through offload(): those calls block.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "actors/gateway/gateway_state.hpp"
#include "adapters/json.hpp"
#include "adapters/oidc.hpp"
#include "library/auth_rules.hpp"
#include "library/http_answers.hpp"

namespace atlas::gateway {

namespace {

/// The provider's answer passed on as is (a transport failure becomes 502).
http_response provider_answer(const http_result& r) {
  if (!r.error.empty())
    return error_answer(502, r.error);
  auto out = json_answer(static_cast<uint16_t>(r.status), r.body);
  // Keycloak answers a bad password with 401 (invalid_grant is 400 in the
  // standard): say 401 either way so clients see "not logged in".
  if (r.status == 400 && r.body.find("invalid_grant") != std::string::npos)
    out.status = 401;
  return out;
}

} // namespace

void login(gateway_ptr self, answer rp, const http_request& req, bool basic) {
  std::string user, password;
  if (basic) {
    auto c = auth::basic_credentials(req.headers);
    if (!c)
      return give(rp, unauthorized("HTTP Basic credentials (user and password) are required"));
    user = c->first;
    password = c->second;
  } else {
    std::string err;
    auto v = json::parse(req.body, err);
    if (!v || !v->is_object() || !v->get_string("username") || !v->get_string("password"))
      return give(rp, error_answer(400, "expected JSON {\"username\": ..., \"password\": ...}"));
    user = *v->get_string("username");
    password = *v->get_string("password");
  }
  auto oidc = client_of(self);
  offload(
    self, [oidc, user, password] { return provider_answer(oidc->password_grant(user, password)); },
    [rp, user](http_response&& r) mutable {
      if (r.status == 200)
        spdlog::info("auth: login user={}", user);
      else
        spdlog::info("auth: login refused user={} status={}", user, r.status);
      rp.deliver(std::move(r));
    });
}

void logout(gateway_ptr self, answer rp, const http_request& req) {
  std::string refresh = parse_query(req.query)["refresh_token"];
  if (refresh.empty()) {
    std::string err;
    if (auto v = json::parse(req.body, err); v && v->is_object())
      refresh = v->get_string("refresh_token").value_or("");
  }
  if (refresh.empty())
    return give(rp, error_answer(400, "expected JSON {\"refresh_token\": ...}"));
  auto oidc = client_of(self);
  offload(
    self,
    [oidc, refresh] {
      auto r = oidc->revoke(refresh);
      if (r.ok())
        return json_answer(200, R"({"logged_out":true})");
      return provider_answer(r);
    },
    [rp](http_response&& r) mutable { rp.deliver(std::move(r)); });
}

} // namespace atlas::gateway
