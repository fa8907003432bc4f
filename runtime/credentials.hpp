#pragma once

// The CLI's stored login: $FOUNDATIONS_HOME/credentials.yaml (mode 0600),
// written by `foundations login`, read by every command. The file also
// carries the original CLI's layout, `default: {token: <access token>}`,
// and a file in that layout alone (written by the original `foundations
// login`) is read too.
// FOUNDATIONS_TOKEN in the environment overrides it.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "adapters/status.hpp"

namespace atlas {

struct credentials {
  std::string scheduler_url;
  std::string username;
  std::string access_token;
  std::string refresh_token;
  int64_t expires_at = 0; // unix time; 0 when unknown
};

/// <home>/credentials.yaml
std::string credentials_file(const std::string& home);

/// Reads the stored login (ours, or the original's `default.token` with
/// only the access token and its expiry); nullopt when there is none or it
/// is unreadable.
std::optional<credentials> load_credentials(const std::string& home);

/// Writes the login (created with mode 0600, replaced atomically).
status save_credentials(const std::string& home, const credentials& c);

/// Removes the stored login (absent is fine).
void forget_credentials(const std::string& home);

/// The bearer token every command sends: FOUNDATIONS_TOKEN, else the stored
/// login's access token, else "None" (what the original client sent).
std::string bearer_for_cli(const std::map<std::string, std::string>& env, const std::string& home);

/// Standard base64 with padding (HTTP Basic).
std::string base64_encode(std::string_view in);

} // namespace atlas
