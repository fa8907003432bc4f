// Each component's settings check themselves (library/settings/), and the
// assembled node configuration refuses what spans components.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <stdlib.h>

#include "library/config.hpp"

using namespace atlas;

namespace {

/// A complete, valid configuration as load_node_config makes it.
node_config valid() {
  node_config c;
  c.foundations_home = "/home/u/.foundations";
  c.node_id = "127.0.0.1-5000";
  c.working_dir_root = c.foundations_home + "/job_data/working_dir";
  c.job_store_dir_root = c.foundations_home + "/job_data/job_store";
  c.job_results_root = c.foundations_home + "/job_data";
  return c;
}

bool names(const std::string& why, const std::string& setting) {
  return why.find(setting) != std::string::npos;
}

} // namespace

TEST_CASE("the defaults of every component are valid", "[settings]") {
  CHECK(valid().validate().empty());
  CHECK(gateway_settings{}.validate().empty());
  CHECK(redis_settings{}.validate().empty());
  CHECK(cluster_settings{}.validate().empty());
  CHECK(master_settings{}.validate().empty());
  CHECK(container_settings{}.validate("process").empty());
  CHECK(auth_settings{}.validate(false).empty());
}

TEST_CASE("each component names the setting it refuses", "[settings]") {
  gateway_settings g;
  g.idle_timeout_s = 0;
  CHECK(names(g.validate(), "limits.idle_timeout_s"));

  redis_settings r;
  r.redis_min_replica_acks = 17;
  CHECK(names(r.validate(), "redis.min_replica_acks"));

  cluster_settings cl;
  cl.shared_fs = "maybe";
  CHECK(names(cl.validate(), "cluster.shared_fs"));
  cl = {};
  cl.heartbeat_ms = 5000; // longer than the 3 s after which a silent peer is dead
  auto why = cl.validate();
  CHECK(names(why, "cluster.connection_timeout_ms"));
  CHECK(names(why, "cluster.heartbeat_ms"));

  master_settings m;
  m.placement = "random";
  CHECK(names(m.validate(), "cluster.placement"));

  auto s = valid();
  s.runner = "slurm";
  CHECK(names(s.slot_settings::validate(), "runner"));
  s = valid();
  s.job_store_dir_root.clear();
  CHECK(names(s.slot_settings::validate(), "directories.job_store_dir_root"));

  container_settings d;
  CHECK(d.validate("process").empty()); // the image matters only to the Docker runner
  CHECK(names(d.validate("docker"), "docker.image"));

  auth_settings a;
  CHECK(names(a.validate(true), "auth.issuer")); // -p needs an issuer
  a.auth_issuer = "https://kc:8443/auth/realms/Atlas";
  CHECK(a.validate(true).empty());
  a.auth_leeway_s = 601;
  CHECK(names(a.validate(true), "auth.leeway_s"));
}

TEST_CASE("a node listens on each port once", "[settings]") {
  auto c = valid();
  c.dashboard_port = c.gateway_port;
  CHECK(names(c.validate(), "ports.gateway and ports.dashboard"));
  c = valid();
  c.caf_port = 5000; // HOST_ADDRESS's port
  CHECK(names(c.validate(), "HOST_ADDRESS and ports.caf"));
  c.is_master = false; // a worker listens on HOST_ADDRESS only
  CHECK(c.validate().empty());
  c = valid();
  c.gateway_port = 0;
  c.dashboard_port = 0; // both off: no clash
  CHECK(c.validate().empty());
}

TEST_CASE("loading refuses settings that do not fit together, wherever they came from",
          "[settings]") {
  std::string tmpl = (std::filesystem::temp_directory_path() / "atlas-settings-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  std::filesystem::create_directories(tmpl + "/config");
  std::ofstream(tmpl + "/config/atlas.config.yaml") << "cluster:\n  heartbeat_ms: 4000\n";
  std::map<std::string, std::string> env{{"FOUNDATIONS_HOME", tmpl}, {"HOME", tmpl}};
  auto r = load_node_config(env, start_flags{});
  CHECK_FALSE(r.ok());
  CHECK(names(r.error, "cluster.connection_timeout_ms"));
  env["ATLAS_GATEWAY_PORT"] = "5000"; // the environment too
  std::ofstream(tmpl + "/config/atlas.config.yaml") << ""; // empty: no settings, not an error
  r = load_node_config(env, start_flags{});
  CHECK_FALSE(r.ok());
  CHECK(names(r.error, "HOST_ADDRESS and ports.gateway"));
  std::filesystem::remove_all(tmpl);
}
