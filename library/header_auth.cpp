// The -p token check at the HTTP server's header stage (see header_auth.hpp).

#include "library/header_auth.hpp"

#include <ctime>
#include <map>
#include <mutex>
#include <tuple>

#include <spdlog/spdlog.h>

#include "adapters/event_loop.hpp"
#include "adapters/oidc.hpp"
#include "library/auth_rules.hpp"
#include "library/http_answers.hpp"

namespace atlas {

namespace {

oidc_settings settings_of(const node_config& cfg) {
  oidc_settings s;
  s.issuer = cfg.auth_issuer;
  s.client_id = cfg.auth_client_id;
  s.ca_file = cfg.auth_ca_file;
  s.leeway_s = cfg.auth_leeway_s;
  s.refresh_interval_s = cfg.auth_jwks_refresh_s;
  return s;
}

/// Fetches the keys on the thread pool unless a fetch ran lately; true when
/// it started one.
bool refresh_keys(const std::shared_ptr<oidc_client>& oidc, event_loop& loop, int64_t now) {
  if (!oidc->claim_refresh(now))
    return false;
  loop.post_work([oidc] {
    if (auto st = oidc->fetch_keys(); !st)
      spdlog::warn("auth: {}", st.error());
  });
  return true;
}

/// Whether the request announces a body (which a refusal must come before).
bool has_body(const http_request& req) {
  if (req.headers.count("transfer-encoding"))
    return true;
  auto n = req.headers.find("content-length");
  return n != req.headers.end() && n->second.find_first_not_of("0 ") != std::string::npos;
}

http_response unauthorized(std::string_view why) {
  auto r = error_answer(401, why);
  r.headers["WWW-Authenticate"] = "Bearer realm=\"Atlas\", error=\"invalid_token\"";
  return r;
}

} // namespace

std::shared_ptr<oidc_client> node_oidc_client(const node_config& cfg) {
  using key = std::tuple<std::string, std::string, std::string, int, int>;
  static std::mutex mutex;
  static std::map<key, std::weak_ptr<oidc_client>> clients;
  const key k{cfg.auth_issuer, cfg.auth_client_id, cfg.auth_ca_file, cfg.auth_leeway_s,
              cfg.auth_jwks_refresh_s};
  std::lock_guard<std::mutex> guard{mutex};
  auto& slot = clients[k];
  if (auto c = slot.lock())
    return c;
  auto c = std::make_shared<oidc_client>(settings_of(cfg));
  slot = c;
  return c;
}

http_header_check header_auth_check(std::shared_ptr<const node_config> cfg,
                                    std::string listener, event_loop& loop) {
  if (!cfg->auth)
    return {};
  auto oidc = node_oidc_client(*cfg);
  // Keys loaded at start-up: a first request with a body must not find none.
  refresh_keys(oidc, loop, static_cast<int64_t>(std::time(nullptr)));
  return [cfg, listener, oidc, &loop](const http_request& req) -> std::optional<http_response> {
    auto parts = split_path(req.path);
    http_request where; // exempt() reads the listener and the path only
    where.listener = listener;
    if (auth::exempt(where, parts))
      return std::nullopt;
    if (auth::is_scrape(parts, auth::bearer_token(req.headers), cfg->metrics_token))
      return std::nullopt; // Prometheus with the scrape token
    auto now = static_cast<int64_t>(std::time(nullptr));
    auto v = oidc->verify(auth::bearer_token(req.headers), now);
    if (v.ok())
      return std::nullopt;
    if (v.why == jwt::refusal::unknown_key) {
      if (!has_body(req))
        return std::nullopt; // nothing to spool: the gateway fetches the keys and decides
      // A key rotated lately, or a forged kid: either way the body waits.
      bool claimed = refresh_keys(oidc, loop, now);
      if (claimed || !oidc->keys()) {
        auto r = error_answer(503, oidc->keys() ? "the identity provider's signing keys are "
                                                  "being refreshed; retry shortly"
                                                : "the identity provider's signing keys are "
                                                  "not loaded yet; retry shortly");
        r.headers["Retry-After"] = "1";
        return r;
      }
    }
    spdlog::info("auth: 401 route=\"{} {}\" listener={} reason=\"{}\" node={} stage=headers",
                 req.method, req.path, listener, jwt::to_string(v.why), cfg->node_id);
    return unauthorized(jwt::to_string(v.why));
  };
}

} // namespace atlas
