// The request-level rules of -p mode and the CLI's stored login.

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <yaml-cpp/yaml.h>

#include "adapters/json.hpp"
#include "adapters/jwt.hpp"
#include "adapters/oidc.hpp"
#include "library/auth_rules.hpp"
#include "runtime/credentials.hpp"

using namespace atlas;

namespace {

http_request req(std::string path, std::string listener = "api") {
  http_request r;
  r.method = "GET";
  r.path = std::move(path);
  r.listener = std::move(listener);
  return r;
}

bool exempt(const http_request& r) {
  std::vector<std::string> parts;
  std::string p = r.path;
  size_t i = 0;
  while (i < p.size()) {
    auto j = p.find('/', i);
    if (j == std::string::npos)
      j = p.size();
    if (j > i)
      parts.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return auth::exempt(r, parts);
}

} // namespace

TEST_CASE("only login, health, static dashboard files and tracking skip the token",
          "[auth]") {
  CHECK(exempt(req("/healthz")));
  CHECK(exempt(req("/api/v1/healthz", "gateway")));
  CHECK(exempt(req("/api/v2beta/auth/login")));
  CHECK(exempt(req("/api/v2beta/auth/cli_login", "gateway")));
  CHECK(exempt(req("/index.html", "dashboard")));
  CHECK(exempt(req("/", "dashboard")));
  CHECK(exempt(req("/api/v1/jobs/j1/tracking", "api")));
  CHECK_FALSE(exempt(req("/")));
  CHECK_FALSE(exempt(req("/index.html", "gateway")));
  CHECK_FALSE(exempt(req("/api/v2beta/projects", "dashboard")));
  CHECK_FALSE(exempt(req("/api/v2beta/auth/verify")));
  CHECK_FALSE(exempt(req("/api/v2beta/auth/logout")));
  CHECK_FALSE(exempt(req("/api/v1/jobs/j1/logs")));
  CHECK_FALSE(exempt(req("/api/v1/jobs/j1/bundle")));
  CHECK_FALSE(exempt(req("/api/v1/jobs/j1/logs", ""))); // untagged: no port lets it skip
  CHECK_FALSE(exempt(req("/queued_jobs", "gateway")));
  CHECK_FALSE(exempt(req("/healthz/x")));
}

TEST_CASE("bearer and basic credentials are read case-insensitively and strictly", "[auth]") {
  CHECK(auth::bearer_token({{"authorization", "Bearer abc.def.ghi"}}) == "abc.def.ghi");
  CHECK(auth::bearer_token({{"authorization", "bearer  abc "}}) == "abc");
  CHECK(auth::bearer_token({{"authorization", "Basic abc"}}).empty());
  CHECK(auth::bearer_token({{"authorization", "Bearerabc"}}).empty());
  CHECK(auth::bearer_token({}).empty());
  auto c = auth::basic_credentials({{"authorization", "Basic " + base64_encode("alice:p:w d")}});
  REQUIRE(c);
  CHECK(c->first == "alice");
  CHECK(c->second == "p:w d");
  CHECK_FALSE(auth::basic_credentials({{"authorization", "Basic !!!"}}));
  CHECK_FALSE(auth::basic_credentials({{"authorization", "Basic " + base64_encode(":pw")}}));
  CHECK_FALSE(auth::basic_credentials({{"authorization", "Bearer x"}}));
}

TEST_CASE("a submission belongs to the verified user and carries no token", "[auth]") {
  std::string body = R"({"job_id":"j1","spec":{"command":["main.py"],"environment":)"
                     R"({"FOUNDATIONS_TOKEN":"eyJ.x.y","A":"1"}},"metadata":{"project_name":"p",)"
                     R"("username":"mallory"},"gpu_spec":{"num_gpus":0}})";
  std::string err;
  auto v = json::parse(auth::owned_submission(body, "alice"), err);
  REQUIRE(v);
  CHECK(v->find("metadata")->get_string("username") == "alice");
  CHECK(v->find("metadata")->get_string("project_name") == "p");
  auto env = v->find("spec")->find("environment");
  CHECK(env->find("FOUNDATIONS_TOKEN") == nullptr);
  CHECK(env->get_string("A") == "1");

  auto listed = json::parse(auth::owned_submission(
    R"({"job_id":"j","spec":{"environment":["FOUNDATIONS_TOKEN=t","B=2"]}})", "bob"), err);
  REQUIRE(listed);
  CHECK(listed->find("metadata")->get_string("username") == "bob");
  REQUIRE(listed->find("spec")->find("environment")->array.size() == 1);
  CHECK(listed->find("spec")->find("environment")->array[0].string == "B=2");

  CHECK(auth::owned_submission("not json", "alice") == "not json");
  CHECK(auth::owned_submission(R"({"metadata":[1]})", "alice") == R"({"metadata":[1]})");
}

TEST_CASE("users act on their own jobs; the admin role on all", "[auth]") {
  CHECK(auth::may_act_on("alice", "alice", false));
  CHECK_FALSE(auth::may_act_on("alice", "bob", false));
  CHECK(auth::may_act_on("alice", "bob", true));
  CHECK_FALSE(auth::may_act_on("", "", false));
}

TEST_CASE("the stored login is private and FOUNDATIONS_TOKEN overrides it", "[auth]") {
  std::string tmpl = (std::filesystem::temp_directory_path() / "atlas-creds-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  std::string home = tmpl;
  CHECK(bearer_for_cli({}, home) == "None");
  CHECK_FALSE(load_credentials(home));
  credentials c{"http://h:5558", "alice", "a.b.c", "r1", 1234};
  REQUIRE(save_credentials(home, c));
  struct stat st{};
  REQUIRE(::stat(credentials_file(home).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto back = load_credentials(home);
  REQUIRE(back);
  CHECK(back->username == "alice");
  CHECK(back->refresh_token == "r1");
  CHECK(back->expires_at == 1234);
  CHECK(bearer_for_cli({}, home) == "a.b.c");
  CHECK(bearer_for_cli({{"FOUNDATIONS_TOKEN", "x.y.z"}}, home) == "x.y.z");
  forget_credentials(home);
  CHECK(bearer_for_cli({}, home) == "None");
  std::filesystem::remove_all(home);
}

TEST_CASE("the original CLI's credentials.yaml layout is read and written too", "[auth]") {
  std::string tmpl = (std::filesystem::temp_directory_path() / "atlas-creds-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  std::string home = tmpl;
  // As the original `foundations login` wrote it (yaml.dump of
  // {"default": {"token": ...}}): a JWT whose payload is {"exp": 1900000000}.
  std::string token = "eyJhbGciOiJSUzI1NiJ9." + jwt::base64url_encode("{\"exp\":1900000000}") + ".c2ln";
  {
    std::ofstream f(credentials_file(home));
    f << "default:\n  token: " << token << "\n";
  }
  auto c = load_credentials(home);
  REQUIRE(c);
  CHECK(c->access_token == token);
  CHECK(c->expires_at == 1900000000);
  CHECK(c->scheduler_url.empty());
  CHECK(c->refresh_token.empty());
  CHECK(bearer_for_cli({}, home) == token);
  {
    std::ofstream f(credentials_file(home));
    f << "default:\n  other: 1\n";
  }
  CHECK_FALSE(load_credentials(home));
  // Ours carries the original's key as well, with the same token; ours wins.
  REQUIRE(save_credentials(home, credentials{"http://h:5558", "alice", "a.b.c", "r1", 1234}));
  auto doc = YAML::LoadFile(credentials_file(home));
  CHECK(doc["default"]["token"].as<std::string>() == "a.b.c");
  CHECK(doc["access_token"].as<std::string>() == "a.b.c");
  CHECK(load_credentials(home)->refresh_token == "r1");
  std::filesystem::remove_all(home);
}

TEST_CASE("base64 encodes as HTTP Basic expects", "[auth]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("a") == "YQ==");
  CHECK(base64_encode("ab") == "YWI=");
  CHECK(base64_encode("abc") == "YWJj");
  CHECK(base64_encode("alice:pw?>") == "YWxpY2U6cHc/Pg==");
}

TEST_CASE("JWKS fetches are rate-limited and a dead provider is a clear error", "[auth][oidc]") {
  oidc_settings s;
  s.issuer = "https://127.0.0.1:1/realms/Atlas/"; // nothing listens on port 1
  s.refresh_interval_s = 10;
  s.timeout_s = 2;
  oidc_client c{s};
  CHECK(c.settings().issuer == "https://127.0.0.1:1/realms/Atlas");
  CHECK(c.keys() == nullptr);
  CHECK(c.verify("a.b.c", 100).why == jwt::refusal::malformed);
  CHECK(c.claim_refresh(100));
  CHECK_FALSE(c.claim_refresh(105)); // one fetch per interval, whatever the tokens say
  CHECK(c.claim_refresh(110));
  auto st = c.fetch_keys();
  REQUIRE_FALSE(st);
  CHECK(st.error().find("OIDC discovery at https://127.0.0.1:1/realms/Atlas failed") == 0);
  auto r = c.password_grant("alice", "pw");
  CHECK_FALSE(r.ok());
  CHECK_FALSE(r.error.empty());
}

TEST_CASE("form values are percent-encoded", "[auth][oidc]") {
  CHECK(form_encode("a b&c=d/é~") == "a%20b%26c%3Dd%2F%C3%A9~");
}
