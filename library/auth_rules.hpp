#pragma once

// The rules of -p mode that need no actor: which requests skip the token
// check, how credentials and tokens are read from headers, and how a
// submission is made to belong to the verified user. Used by the gateway's
// auth gate (actors/gateway/auth_check.cpp).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/http.hpp"

namespace atlas::auth {

/// Headers the gateway sets after verification; never trusted from clients.
constexpr const char* user_header = "x-atlas-user";
constexpr const char* admin_header = "x-atlas-admin";
/// The token's groups and realm roles, comma-separated: quota groups.
constexpr const char* groups_header = "x-atlas-groups";

/// Requests that need no bearer token even in -p mode: logging in, health,
/// the dashboard's static files, the in-job tracking routes (they check the
/// per-job secret). A request no port tagged (`listener` empty) gets no
/// exemption.
bool exempt(const http_request& req, const std::vector<std::string>& parts);

/// Whether a request for /metrics (or /api/v1/metrics) shows the scrape
/// token (compared in constant time; an empty token matches nothing).
bool is_scrape(const std::vector<std::string>& parts, const std::string& bearer,
               const std::string& metrics_token);

/// Whether the path is one of /api/v2beta/auth/<what>; sets `what`.
bool is_auth_route(const std::vector<std::string>& parts, std::string& what);

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive);
/// empty when absent or another scheme.
std::string bearer_token(const std::map<std::string, std::string>& headers);

/// The user and password of `Authorization: Basic ...`.
std::optional<std::pair<std::string, std::string>>
basic_credentials(const std::map<std::string, std::string>& headers);

/// The submission body with metadata.username set to `user` (whatever the
/// client sent) and FOUNDATIONS_TOKEN removed from spec.environment, so a
/// token never reaches the job. A body that is not a JSON object is
/// returned unchanged (the submit route rejects it).
std::string owned_submission(std::string_view body, const std::string& user);

/// Whether `user` may stop, delete or move a job owned by `owner`.
inline bool may_act_on(const std::string& owner, const std::string& user, bool admin) {
  return admin || (!user.empty() && owner == user);
}

} // namespace atlas::auth
