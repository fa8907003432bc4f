// `atlas-server start`'s command line (runtime/start_options.hpp): ours and
// the original installer's options.

#include <catch2/catch.hpp>

#include "runtime/start_options.hpp"

using namespace atlas;

namespace {
start_options parse(std::vector<std::string> words, std::map<std::string, std::string> env = {}) {
  return parse_start_options(words, env);
}
} // namespace

TEST_CASE("our options and the original's long names mean the same", "[start_options]") {
  auto o = parse({"-p", "-g", "--role", "worker", "--foreground"});
  REQUIRE(o.error.empty());
  CHECK(o.flags.auth);
  CHECK(o.flags.gpu);
  CHECK(o.flags.role == "worker");
  CHECK(o.foreground);
  auto l = parse({"--authentication", "--enable-gpu", "--logs", "--role=master"});
  REQUIRE(l.error.empty());
  CHECK(l.flags.auth);
  CHECK(l.flags.gpu);
  CHECK(l.foreground);
  CHECK(l.flags.role == "master");
  CHECK(parse({}).flags.role == "auto");
}

TEST_CASE("-d and -s become the settings they stand for", "[start_options]") {
  auto d = parse({"-d", "6555"});
  REQUIRE(d.error.empty());
  CHECK(d.env.at("ATLAS_DASHBOARD_PORT") == "6555");
  CHECK(parse({"--dashboard-port=0"}).env.at("ATLAS_DASHBOARD_PORT") == "0");
  CHECK(parse({"-s", "gpu-box-1"}).env.at("HOST_ADDRESS") == "http://gpu-box-1:5000/");
  // An explicit HOST_ADDRESS keeps its scheme, port and path.
  auto s = parse({"--scheduler-host", "10.0.0.7"}, {{"HOST_ADDRESS", "https://old:7000/atlas"}});
  CHECK(s.env.at("HOST_ADDRESS") == "https://10.0.0.7:7000/atlas");
  CHECK(parse({"-d", "70000"}).error.find("port number") != std::string::npos);
  CHECK(parse({"-d"}).error == "-d needs a value");
  CHECK(parse({"-s", "http://x"}).error.find("host name") != std::string::npos);
}

TEST_CASE("options for services that do not exist here name what replaces them",
          "[start_options]") {
  CHECK(parse({"-t"}).error.find("foundations tensorboard") != std::string::npos);
  CHECK(parse({"--tensorboard-port", "5959"}).error.find("foundations tensorboard") != std::string::npos);
  CHECK(parse({"-a", "5557"}).error.find("foundations get job") != std::string::npos);
  CHECK(parse({"--auth-server-port=8080"}).error.find("auth.config.yaml") != std::string::npos);
  CHECK(parse({"--bogus"}).error == "unknown option '--bogus'");
  CHECK(parse({"--role", "boss"}).error.find("auto, master or worker") != std::string::npos);
}
