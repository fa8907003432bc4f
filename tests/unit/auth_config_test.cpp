// The `auth:` section of atlas.config.yaml: defaults, values, bad values
// named by key, unknown keys warned about.

#include "library/config.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace atlas;

namespace {

struct auth_home {
  std::string path;
  auth_home() {
    std::string tmpl = (fs::temp_directory_path() / "atlas-auth-config-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~auth_home() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void atlas_file(const std::string& text) const {
    fs::create_directories(path + "/config");
    std::ofstream(path + "/config/atlas.config.yaml") << text;
  }
  loaded<node_config> load(std::map<std::string, std::string> env = {}, bool p = false) const {
    env.emplace("FOUNDATIONS_HOME", path);
    env.emplace("HOME", path);
    start_flags f;
    f.auth = p;
    return load_node_config(env, f);
  }
};

} // namespace

TEST_CASE("auth is off by default and its issuer defaults to the master's Keycloak", "[config][auth]") {
  auth_home h;
  auto r = h.load({{"HOST_ADDRESS", "http://10.1.2.3:5000/"}});
  REQUIRE(r.ok());
  CHECK_FALSE(r.config.auth);
  CHECK(r.config.auth_issuer == "https://10.1.2.3:8443/auth/realms/Atlas");
  CHECK(r.config.auth_client_id == "foundations");
  CHECK(r.config.auth_admin_role == "atlas-admin");
  auto w = h.load({{"HOST_ADDRESS", "http://10.1.2.4:5000/"}, {"REDIS_ADDRESS", "10.1.2.3"}});
  REQUIRE(w.ok());
  CHECK_FALSE(w.config.is_master);
  CHECK(w.config.auth_issuer == "https://10.1.2.3:8443/auth/realms/Atlas");
  CHECK(h.load({}, true).config.auth);
}

TEST_CASE("the auth section sets every key, the issuer taken as given", "[config][auth]") {
  auth_home h;
  h.atlas_file("auth:\n  enabled: true\n  issuer: https://kc.example:8443/realms/Atlas/\n"
               "  client_id: cli\n  ca_file: /etc/kc/ca.pem\n  admin_role: ops\n"
               "  leeway_s: 5\n  jwks_refresh_s: 0\n  colour: blue\n");
  auto r = h.load();
  REQUIRE(r.ok());
  auto& c = r.config;
  CHECK(c.auth);
  CHECK(c.auth_issuer == "https://kc.example:8443/realms/Atlas");
  CHECK(c.auth_client_id == "cli");
  CHECK(c.auth_ca_file == "/etc/kc/ca.pem");
  CHECK(c.auth_admin_role == "ops");
  CHECK(c.auth_leeway_s == 5);
  CHECK(c.auth_jwks_refresh_s == 0);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("auth.colour") != std::string::npos);
}

TEST_CASE("bad auth values stop loading and name the key", "[config][auth]") {
  auth_home h;
  h.atlas_file("auth:\n  issuer: kc.example/realms/Atlas\n");
  auto r = h.load();
  CHECK(r.error.find("auth.issuer") != std::string::npos);
  h.atlas_file("auth:\n  leeway_s: -3\n");
  CHECK(h.load().error.find("auth.leeway_s") != std::string::npos);
  h.atlas_file("auth:\n  ca_file: relative.pem\n");
  CHECK(h.load().error.find("auth.ca_file") != std::string::npos);
  h.atlas_file("auth:\n  enabled: maybe\n");
  CHECK(h.load().error.find("auth.enabled") != std::string::npos);
  h.atlas_file("auth:\n  client_id: ''\n");
  CHECK(h.load().error.find("auth.client_id") != std::string::npos);
}
