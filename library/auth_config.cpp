// Reads the `auth:` section of atlas.config.yaml.

#include "library/auth_config.hpp"

#include "library/yaml_section.hpp"

namespace atlas {

void read_auth_section(const yaml::section& s, node_config& c) {
  s.known({"enabled", "issuer", "client_id", "ca_file", "admin_role", "leeway_s", "jwks_refresh_s"});
  bool on = false;
  if (s.flag("enabled", on) && on)
    c.auth = true; // -p turns it on too; the file cannot turn -p off
  if (s.str("issuer", c.auth_issuer)) {
    auto& i = c.auth_issuer;
    if (i.rfind("https://", 0) != 0 && i.rfind("http://", 0) != 0)
      return s.bad("issuer", "a URL starting with https:// (e.g. https://<master>:8443/auth/realms/Atlas)",
                   s.get("issuer"));
    while (!i.empty() && i.back() == '/')
      i.pop_back();
  }
  if (s.str("client_id", c.auth_client_id) && c.auth_client_id.empty())
    s.bad("client_id", "a non-empty client id", s.get("client_id"));
  s.path("ca_file", c.auth_ca_file);
  if (s.str("admin_role", c.auth_admin_role) && c.auth_admin_role.empty())
    s.bad("admin_role", "a non-empty realm role name", s.get("admin_role"));
  s.whole("leeway_s", c.auth_leeway_s, 0, 600, " of seconds");
  s.whole("jwks_refresh_s", c.auth_jwks_refresh_s, 0, 3600, " of seconds");
}

void finish_auth_config(node_config& c, const std::string& master_host) {
  if (!c.auth_issuer.empty())
    return;
  std::string host = master_host;
  if (host.empty() || host == "0.0.0.0")
    host = "127.0.0.1";
  if (host.find(':') != std::string::npos && host.front() != '[')
    host = "[" + host + "]";
  c.auth_issuer = "https://" + host + ":8443/auth/realms/Atlas";
}

} // namespace atlas
