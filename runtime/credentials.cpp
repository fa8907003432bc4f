// The CLI's stored login (see credentials.hpp).

#include "runtime/credentials.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "adapters/jwt.hpp"

namespace atlas {

std::string credentials_file(const std::string& home) {
  return home + "/credentials.yaml";
}

std::optional<credentials> load_credentials(const std::string& home) {
  try {
    auto doc = YAML::LoadFile(credentials_file(home));
    if (!doc.IsMap())
      return std::nullopt;
    credentials c;
    auto text = [&](const char* k) { return doc[k] && doc[k].IsScalar() ? doc[k].Scalar() : ""; };
    c.scheduler_url = text("scheduler_url");
    c.username = text("username");
    c.access_token = text("access_token");
    c.refresh_token = text("refresh_token");
    if (doc["expires_at"] && doc["expires_at"].IsScalar())
      c.expires_at = doc["expires_at"].as<int64_t>(0);
    // The original CLI's layout, `default: {token: <access token>}` (what
    // foundations_authentication's user_token() reads): no URL, user or
    // refresh token; the expiry is the token's own.
    const YAML::Node& original = doc["default"];
    if (c.access_token.empty() && original && original.IsMap() && original["token"]
        && original["token"].IsScalar()) {
      c.access_token = original["token"].Scalar();
      c.expires_at = jwt::unverified_expiry(c.access_token).value_or(0);
    }
    if (c.access_token.empty())
      return std::nullopt;
    return c;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

status save_credentials(const std::string& home, const credentials& c) {
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "scheduler_url" << YAML::Value << c.scheduler_url
    << YAML::Key << "username" << YAML::Value << c.username << YAML::Key << "access_token"
    << YAML::Value << c.access_token << YAML::Key << "refresh_token" << YAML::Value
    << c.refresh_token << YAML::Key << "expires_at" << YAML::Value << c.expires_at
    // Also the original's layout, so its SDK and CLI find the same login.
    << YAML::Key << "default" << YAML::Value << YAML::BeginMap << YAML::Key << "token"
    << YAML::Value << c.access_token << YAML::EndMap << YAML::EndMap;
  std::string text = "# written by `foundations login`; keep it private (mode 0600)\n"
                     + std::string(e.c_str()) + "\n";
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  std::string file = credentials_file(home), temp = file + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return status::fail("cannot write " + temp);
  ::fchmod(fd, 0600); // also when the file existed with wider rights
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(temp.c_str(), file.c_str()) != 0) {
    ::unlink(temp.c_str());
    return status::fail("cannot write " + file);
  }
  return status::success();
}

void forget_credentials(const std::string& home) {
  ::unlink(credentials_file(home).c_str());
}

std::string bearer_for_cli(const std::map<std::string, std::string>& env, const std::string& home) {
  if (auto t = env.find("FOUNDATIONS_TOKEN"); t != env.end() && !t->second.empty())
    return t->second;
  if (auto c = load_credentials(home))
    return c->access_token;
  return "None";
}

std::string base64_encode(std::string_view in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8)
                 | uint8_t(in[i + 2]);
    out += {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += {abc[v >> 18], abc[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], '='};
  }
  return out;
}

} // namespace atlas
