#include "library/config.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using atlas::load_node_config;
using atlas::load_submission_config;
using atlas::start_flags;

namespace {

/// A fresh FOUNDATIONS_HOME under the temp directory, removed afterwards.
struct temp_home {
  std::string path;
  temp_home() {
    std::string tmpl = (fs::temp_directory_path() / "atlas-config-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_home() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& rel) const { return path + "/config/" + rel; }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories(fs::path(file(rel)).parent_path());
    std::ofstream(file(rel)) << text;
  }
  std::string read(const std::string& rel) const {
    std::ifstream in(file(rel));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::map<std::string, std::string> env(std::map<std::string, std::string> extra = {}) const {
    extra.emplace("FOUNDATIONS_HOME", path);
    extra.emplace("HOME", path);
    return extra;
  }
};

const std::string lds = "local_docker_scheduler/";
const std::string atlas_file = "atlas.config.yaml";

} // namespace

TEST_CASE("an empty home gives the documented defaults", "[config]") {
  temp_home h;
  auto r = load_node_config(h.env(), start_flags{});
  REQUIRE(r.ok());
  CHECK(r.warnings.empty());
  const auto& c = r.config;
  CHECK(c.foundations_home == h.path);
  CHECK(c.host_address == "http://127.0.0.1:5000/");
  CHECK(c.http_port == 5000);
  CHECK(c.node_id == "127.0.0.1-5000");
  CHECK(c.node_dir == h.path + "/nodes/127.0.0.1-5000");
  CHECK(c.is_master);
  CHECK(c.manage_redis);
  CHECK(c.redis_host == "127.0.0.1");
  CHECK(c.redis_port == 5556);
  CHECK(c.num_workers == 1);
  CHECK(c.gateway_port == 5558);
  CHECK(c.dashboard_port == 5555);
  CHECK(c.caf_port == 5559);
  CHECK(c.working_dir_root == h.path + "/job_data/working_dir");
  CHECK(c.job_store_dir_root == h.path + "/job_data/job_store");
  CHECK(c.job_results_root == h.path + "/job_data");
  CHECK(c.runner == "process");
  CHECK(c.log_level == "info");
}

TEST_CASE("FOUNDATIONS_HOME defaults to .foundations in the user's home", "[config]") {
  CHECK(atlas::foundations_home({{"HOME", "/home/someone"}}) == "/home/someone/.foundations");
  CHECK(atlas::foundations_home({{"HOME", "/h"}, {"FOUNDATIONS_HOME", "/shared/f/"}}) == "/shared/f");
}

TEST_CASE("HOST_ADDRESS is normalised and names the node", "[config]") {
  temp_home h;
  auto r = load_node_config(h.env({{"HOST_ADDRESS", "http://10.0.0.5:5001"}}), {});
  REQUIRE(r.ok());
  CHECK(r.config.host_address == "http://10.0.0.5:5001/");
  CHECK(r.config.http_port == 5001);
  CHECK(r.config.node_id == "10.0.0.5-5001");

  r = load_node_config(h.env({{"HOST_ADDRESS", "http://gpu-box.lab/"}}), {});
  REQUIRE(r.ok());
  CHECK(r.config.host_address == "http://gpu-box.lab:5000/");
  CHECK(r.config.node_id == "gpu-box.lab-5000");

  r = load_node_config(h.env({{"HOST_ADDRESS", "http://[fd00::5]:5000/"}}), {});
  REQUIRE(r.ok());
  CHECK(r.config.node_id == "fd00__5-5000");

  r = load_node_config(h.env({{"HOST_ADDRESS", "http://10.0.0.5:99999/"}}), {});
  CHECK(r.error == "HOST_ADDRESS: expected http://<host>:<port>/, got 'http://10.0.0.5:99999/'");
}

TEST_CASE("environment variables override atlas.config.yaml", "[config]") {
  temp_home h;
  h.write(atlas_file, "ports:\n  gateway: 6000\n  caf: 6001\n");
  auto r = load_node_config(h.env({{"ATLAS_GATEWAY_PORT", "7000"}, {"NUM_WORKERS", "3"}}), {});
  REQUIRE(r.ok());
  CHECK(r.config.gateway_port == 7000);
  CHECK(r.config.caf_port == 6001);
  CHECK(r.config.num_workers == 3);
}

TEST_CASE("atlas.config.yaml overrides the original installer's files", "[config]") {
  temp_home h;
  h.write(lds + "worker_config/submission/scheduler.config.yaml",
          "working_dir_root: /nfs/work\njob_store_dir_root: /nfs/store\n");
  h.write(atlas_file, "directories:\n  working_dir_root: /nfs/atlas-work\n");
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.working_dir_root == "/nfs/atlas-work");
  CHECK(r.config.job_store_dir_root == "/nfs/store");
}

TEST_CASE("every atlas.config.yaml section is read", "[config]") {
  temp_home h;
  h.write(atlas_file, "runner: docker\npython: /usr/bin/python3.11\nlog_level: DEBUG\n"
                      "redis: {host: 127.0.0.1, port: 6400, managed: false, binary: /opt/redis-server}\n"
                      "limits: {max_upload_mb: 2, max_body_kb: 3, max_header_kb: 4, log_cap_mb: 5,\n"
                      "         stop_grace_s: 0, idle_timeout_s: 7, max_retries: 8}\n"
                      "cluster: {placement: pack, secret: s3cret}\nauth: {issuer: 'https://kc:8443/realms/Atlas'}\n"
                      "docker: {socket: /run/d.sock, image: python:3.11, network_mode: host,\n"
                      "         user: '1000:1000', python: python3.12}\n");
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.warnings.empty());
  const auto& c = r.config;
  CHECK(c.runner == "docker");
  CHECK(c.python == "/usr/bin/python3.11");
  CHECK(c.log_level == "debug");
  CHECK(c.redis_port == 6400);
  CHECK_FALSE(c.manage_redis);
  CHECK(c.redis_binary == "/opt/redis-server");
  CHECK(c.max_upload_bytes == 2u << 20);
  CHECK(c.max_body_bytes == 3u << 10);
  CHECK(c.max_header_bytes == 4u << 10);
  CHECK(c.log_cap_bytes == 5u << 20);
  CHECK(c.stop_grace_s == 0);
  CHECK(c.idle_timeout_s == 7);
  CHECK(c.max_retries == 8);
  CHECK(c.placement == "pack");
  CHECK(c.cluster_secret == "s3cret");
  CHECK(c.docker_socket == "/run/d.sock");
  CHECK(c.docker_image == "python:3.11");
  CHECK(c.docker_network == "host");
  CHECK(c.docker_user == "1000:1000");
  CHECK(c.docker_python == "python3.12");
}

TEST_CASE("the docker section is validated, and runner docker needs an image", "[config]") {
  temp_home h;
  const std::string f = h.file(atlas_file);
  h.write(atlas_file, "runner: docker\n");
  CHECK(load_node_config(h.env(), {}).error.find(f + ": docker.image: required with runner: docker")
        == 0);
  h.write(atlas_file, "docker: {socket: relative.sock}\n");
  CHECK(load_node_config(h.env(), {}).error ==
        f + ": docker.socket: expected an absolute path, got 'relative.sock'");
  h.write(atlas_file, "docker: {image: 'two words'}\n");
  CHECK(load_node_config(h.env(), {}).error.find(f + ": docker.image: expected an image name") == 0);
  h.write(atlas_file, "docker: {imag: x}\nlimits: {gpu_reserve_after_s: 30}\n");
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("docker.imag") != std::string::npos);
  CHECK(r.config.gpu_reserve_after_s == 30);
  CHECK(r.config.docker_socket == "/var/run/docker.sock");
  CHECK(r.config.docker_network == "none");
}

TEST_CASE("REDIS_ADDRESS decides between master and worker in auto role", "[config]") {
  temp_home h;
  auto r = load_node_config(h.env({{"REDIS_ADDRESS", "10.1.2.3"}}), {});
  REQUIRE(r.ok());
  CHECK_FALSE(r.config.is_master);
  CHECK_FALSE(r.config.manage_redis);
  CHECK(r.config.redis_host == "10.1.2.3");
  CHECK(r.config.redis_port == 5556);

  r = load_node_config(h.env({{"REDIS_ADDRESS", "10.1.2.3:7000"}}), {});
  REQUIRE(r.ok());
  CHECK(r.config.redis_port == 7000);

  // The guide's master: REDIS_ADDRESS is its own address, and it runs that Redis.
  r = load_node_config(h.env({{"REDIS_ADDRESS", "10.9.9.9"}, {"HOST_ADDRESS", "http://10.9.9.9:5000/"}}), {});
  REQUIRE(r.ok());
  CHECK(r.config.is_master);
  CHECK(r.config.manage_redis);

  r = load_node_config(h.env({{"REDIS_ADDRESS", "127.0.0.1:5556"}}), {});
  REQUIRE(r.ok());
  CHECK(r.config.is_master);
  CHECK(r.config.manage_redis);

  r = load_node_config(h.env({{"REDIS_ADDRESS", "localhost:7001"}}), {});
  REQUIRE(r.ok());
  CHECK(r.config.is_master);
  CHECK(r.config.manage_redis);
  CHECK(r.config.redis_port == 7001);

  // On one machine, loopback addresses tell the nodes apart.
  r = load_node_config(h.env({{"REDIS_ADDRESS", "127.0.0.1:7001"},
                              {"HOST_ADDRESS", "http://127.0.0.2:5001/"}}), {});
  REQUIRE(r.ok());
  CHECK_FALSE(r.config.is_master);
  CHECK_FALSE(r.config.manage_redis);

  r = load_node_config(h.env({{"REDIS_ADDRESS", "10.1.2.3"}}), start_flags{false, false, "master"});
  REQUIRE(r.ok());
  CHECK(r.config.is_master);
}

TEST_CASE("a worker role without REDIS_ADDRESS is refused", "[config]") {
  temp_home h;
  auto r = load_node_config(h.env(), start_flags{false, false, "worker"});
  CHECK(r.error.find("REDIS_ADDRESS: required for --role worker") == 0);
  r = load_node_config(h.env(), start_flags{false, false, "boss"});
  CHECK(r.error == "--role: expected auto, master or worker, got 'boss'");
}

TEST_CASE("bad environment values name the variable and what was expected", "[config]") {
  temp_home h;
  auto r = load_node_config(h.env({{"NUM_WORKERS", "x"}}), {});
  CHECK(r.error == "NUM_WORKERS: expected a whole number >= 0, got 'x'");
  r = load_node_config(h.env({{"NUM_WORKERS", "-1"}}), {});
  CHECK(r.error == "NUM_WORKERS: expected a whole number >= 0, got '-1'");
  r = load_node_config(h.env({{"NUM_WORKERS", "0"}}), {});
  REQUIRE(r.ok());
  CHECK(r.config.num_workers == 0);
  r = load_node_config(h.env({{"ATLAS_CAF_PORT", "70000"}}), {});
  CHECK(r.error == "ATLAS_CAF_PORT: expected a port number 0..65535, got '70000'");
  r = load_node_config(h.env({{"ATLAS_DASHBOARD_PORT", "web"}}), {});
  CHECK(r.error == "ATLAS_DASHBOARD_PORT: expected a port number 0..65535, got 'web'");
  r = load_node_config(h.env({{"REDIS_ADDRESS", "host:port"}}), {});
  CHECK(r.error == "REDIS_ADDRESS: expected <host> or <host>:<port>, got 'host:port'");
}

TEST_CASE("a bad value in a file names the file, the key and what was expected", "[config]") {
  temp_home h;
  const std::string f = h.file(atlas_file);
  h.write(atlas_file, "limits:\n  stop_grace_s: soon\n");
  auto r = load_node_config(h.env(), {});
  CHECK(r.error == f + ": limits.stop_grace_s: expected a whole number of seconds >= 0, got 'soon'");

  h.write(atlas_file, "ports: {gateway: abc}\n");
  CHECK(load_node_config(h.env(), {}).error ==
        f + ": ports.gateway: expected a port number 0..65535, got 'abc'");

  h.write(atlas_file, "python: {a: 1}\n");
  CHECK(load_node_config(h.env(), {}).error == f + ": python: expected a string, got a map");

  h.write(atlas_file, "limits: 5\n");
  CHECK(load_node_config(h.env(), {}).error == f + ": limits: expected a map, got '5'");

  h.write(atlas_file, "runner: kubernetes\n");
  CHECK(load_node_config(h.env(), {}).error == f + ": runner: expected process or docker, got 'kubernetes'");

  h.write(atlas_file, "redis: {managed: maybe}\n");
  CHECK(load_node_config(h.env(), {}).error == f + ": redis.managed: expected true or false, got 'maybe'");

  h.write(atlas_file, "directories: {working_dir_root: relative/dir}\n");
  CHECK(load_node_config(h.env(), {}).error ==
        f + ": directories.working_dir_root: expected an absolute path, got 'relative/dir'");

  h.write(atlas_file, "- a\n- b\n");
  CHECK(load_node_config(h.env(), {}).error ==
        f + ": expected a map of settings at the top level, got a list");
}

TEST_CASE("the warning signal is a name or a number, and the warning's lead is read",
          "[config]") {
  temp_home h;
  const std::string f = h.file(atlas_file);
  CHECK(load_node_config(h.env(), {}).config.warning_signal == SIGUSR1);
  CHECK(load_node_config(h.env(), {}).config.time_warning_s == 30);
  for (const char* v : {"SIGUSR2", "usr2", "12"}) {
    h.write(atlas_file, std::string("limits: {warning_signal: ") + v + ", time_warning_s: 5}\n");
    auto r = load_node_config(h.env(), {});
    CHECK(r.error.empty());
    CHECK(r.config.warning_signal == SIGUSR2);
    CHECK(r.config.time_warning_s == 5);
  }
  h.write(atlas_file, "limits: {warning_signal: SIGKILL}\n");
  CHECK(load_node_config(h.env(), {}).error
        == f + ": limits.warning_signal: expected a signal such as SIGUSR1, USR1 or 10, got 'SIGKILL'");
  h.write(atlas_file, "limits: {time_warning_s: -1}\n");
  CHECK(load_node_config(h.env(), {}).error.find("limits.time_warning_s: expected") != std::string::npos);
}

TEST_CASE("a bad value in an original file names that file", "[config]") {
  temp_home h;
  h.write(lds + "database.config.yaml", "queue:\n  args:\n    host: 10.0.0.5\n    port: lots\n");
  auto r = load_node_config(h.env(), {});
  CHECK(r.error == h.file(lds + "database.config.yaml") +
                     ": queue.args.port: expected a port number 1..65535, got 'lots'");

  temp_home h2;
  h2.write(lds + "worker_config/execution/default.config.yaml", "log_level: LOUD\n");
  r = load_node_config(h2.env(), {});
  CHECK(r.error.find(h2.file(lds + "worker_config/execution/default.config.yaml") + ": log_level: expected one of") == 0);
}

TEST_CASE("malformed YAML names the file and the line", "[config]") {
  temp_home h;
  h.write(atlas_file, "ports:\n  gateway: 5558\nlimits: [1, 2\n");
  auto r = load_node_config(h.env(), {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.find(h.file(atlas_file) + ": not valid YAML (line ") == 0);
}

TEST_CASE("errors and warnings quoting a file's control characters stay one line", "[config]") {
  // Found by tests/fuzz (config): yaml-cpp's message ended with the raw
  // character it could not escape, a newline.
  temp_home h;
  h.write(atlas_file, std::string("\x03queue:  \0\ntyre", 15));
  auto r = load_node_config(h.env(), {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.find('\n') == std::string::npos);
  CHECK(r.error.find(h.file(atlas_file) + ": not valid YAML (line ") == 0);
  temp_home h2;
  h2.write(atlas_file, "\"a\\nb\": 1\n");
  r = load_node_config(h2.env(), {});
  REQUIRE(r.ok());
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0] == "unknown key 'a\\nb' in " + h2.file(atlas_file) + " (ignored)");
}

TEST_CASE("unknown keys are warned about, naming file and key", "[config]") {
  temp_home h;
  h.write(atlas_file, "limts: {}\nlimits: {stop_grace: 3}\n");
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  REQUIRE(r.warnings.size() == 2);
  CHECK(r.warnings[0] == "unknown key 'limts' in " + h.file(atlas_file) + " (ignored)");
  CHECK(r.warnings[1] == "unknown key 'limits.stop_grace' in " + h.file(atlas_file) + " (ignored)");
}

TEST_CASE("unknown files in the config directories are not an error", "[config]") {
  temp_home h;
  h.write(lds + "something_else.yaml", "this: [is, ignored\n");
  h.write("notes.txt", "hello");
  CHECK(load_node_config(h.env(), {}).ok());
}

TEST_CASE("an original-installer database.config.yaml pointing at host:port is honoured", "[config]") {
  temp_home h;
  std::string entry = "  type: redis_connection.RedisDict\n  args:\n    key: k\n    host: 10.0.0.5\n    port: 6390\n";
  h.write(lds + "database.config.yaml", "queue:\n" + entry + "running_jobs:\n" + entry +
                                          "completed_jobs:\n" + entry + "failed_jobs:\n" + entry);
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.warnings.empty());
  CHECK(r.config.redis_host == "10.0.0.5");
  CHECK(r.config.redis_port == 6390);
  CHECK(r.config.is_master);
  CHECK_FALSE(r.config.manage_redis); // someone else's Redis

  h.write(lds + "database.config.yaml", "queue:\n  args:\n    host: atlas-ce-tracker\n    port: 5556\n");
  r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.redis_host == "127.0.0.1");
  CHECK(r.config.manage_redis);
}

TEST_CASE("the tracker and execution files locate Redis when the database file does not", "[config]") {
  temp_home h;
  h.write(lds + "tracker_client_plugins.yaml", "redis_tracker_client:\n  host: 10.0.0.7\n  port: 6391\n");
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.redis_host == "10.0.0.7");
  CHECK(r.config.redis_port == 6391);

  h.write(lds + "worker_config/execution/default.config.yaml",
          "log_level: WARN\nresults_config:\n  redis_end_point: redis://10.0.0.8:6392\n"
          "  archive_end_point: /nfs/archive\n");
  r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.redis_host == "10.0.0.8");
  CHECK(r.config.redis_port == 6392);
  CHECK(r.config.job_results_root == "/nfs/archive");
  CHECK(r.config.log_level == "warning");
}

TEST_CASE("write_default_config creates the installer's files and never overwrites", "[config]") {
  temp_home h;
  REQUIRE(atlas::write_default_config(h.path).ok());
  for (const char* f : {"local_docker_scheduler/database.config.yaml",
                        "local_docker_scheduler/tracker_client_plugins.yaml",
                        "local_docker_scheduler/worker_config/execution/default.config.yaml",
                        "local_docker_scheduler/worker_config/submission/scheduler.config.yaml",
                        "submission/scheduler.config.yaml", "submission/remote.config.yaml",
                        "atlas.config.yaml"})
    CHECK(fs::is_regular_file(h.file(f)));

  // What it writes loads cleanly and means the defaults.
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.warnings.empty());
  CHECK(r.config.redis_host == "127.0.0.1");
  CHECK(r.config.redis_port == 5556);
  CHECK(r.config.manage_redis);
  CHECK(r.config.working_dir_root == h.path + "/job_data/working_dir");
  CHECK(r.config.job_results_root == h.path + "/job_data");

  h.write("submission/remote.config.yaml", "scheduler_url: http://10.0.0.5:5558\n");
  REQUIRE(atlas::write_default_config(h.path).ok());
  CHECK(h.read("submission/remote.config.yaml") == "scheduler_url: http://10.0.0.5:5558\n");
}

TEST_CASE("the default submission configs point at the local gateway", "[config]") {
  temp_home h;
  REQUIRE(atlas::write_default_config(h.path).ok());
  for (const char* env : {"remote", "scheduler"}) {
    auto r = load_submission_config(h.path, env);
    REQUIRE(r.ok());
    CHECK(r.warnings.empty());
    CHECK(r.config.scheduler_url == "http://127.0.0.1:5558");
    CHECK(r.config.working_dir_root == h.path + "/job_data/working_dir");
    CHECK(r.config.file == h.file(std::string{"submission/"} + env + ".config.yaml"));
  }
}

TEST_CASE("a submission config keeps the URL as given, without trailing slash", "[config]") {
  temp_home h;
  h.write("submission/remote.config.yaml",
          "scheduler_url: http://atlas-ce-tracker:5558/\njob_deployment_env: x\nextra: 1\n");
  auto r = load_submission_config(h.path, "remote");
  REQUIRE(r.ok());
  CHECK(r.config.scheduler_url == "http://atlas-ce-tracker:5558");
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0] == "unknown key 'extra' in " + h.file("submission/remote.config.yaml") + " (ignored)");
}

TEST_CASE("submission config errors name the file and key", "[config]") {
  temp_home h;
  const std::string f = h.file("submission/remote.config.yaml");
  auto r = load_submission_config(h.path, "remote");
  CHECK(r.error == "no submission config for environment 'remote': expected " + f);

  h.write("submission/remote.config.yaml", "working_dir_root: /x\n");
  r = load_submission_config(h.path, "remote");
  CHECK(r.error.find(f + ": scheduler_url: required") == 0);

  h.write("submission/remote.config.yaml", "scheduler_url: ftp://x\n");
  r = load_submission_config(h.path, "remote");
  CHECK(r.error == f + ": scheduler_url: expected a URL starting with http:// or https://, got 'ftp://x'");

  h.write("submission/remote.config.yaml", "scheduler_url: [http://x]\n");
  r = load_submission_config(h.path, "remote");
  CHECK(r.error == f + ": scheduler_url: expected a string, got a list");

  h.write("submission/remote.config.yaml", "scheduler_url: [http://x\n");
  r = load_submission_config(h.path, "remote");
  CHECK(r.error.find(f + ": not valid YAML") == 0);

  r = load_submission_config(h.path, "../etc/passwd");
  CHECK(r.error.find("environment name '../etc/passwd': expected") == 0);
}

TEST_CASE("limits.actor_threads sets the actor scheduler's threads, 0 by default", "[config]") {
  temp_home h;
  const std::string f = h.file(atlas_file);
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.actor_threads == 0);
  h.write(atlas_file, "limits: {actor_threads: 1}\n");
  r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.actor_threads == 1);
  h.write(atlas_file, "limits: {actor_threads: 1000}\n");
  CHECK(load_node_config(h.env(), {}).error.find(f + ": limits.actor_threads") == 0);
}

TEST_CASE("cluster.tls is on unless turned off", "[config]") {
  temp_home h;
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.cluster_tls);
  h.write(atlas_file, "cluster: {tls: false}\n");
  r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK_FALSE(r.config.cluster_tls);
  h.write(atlas_file, "cluster: {tls: maybe}\n");
  CHECK(load_node_config(h.env(), {}).error.find("cluster.tls") != std::string::npos);
}

TEST_CASE("cluster.standby and the lease TTL are read", "[config]") {
  temp_home h;
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.standby);
  CHECK(r.config.lease_ttl_ms == 5000);
  h.write(atlas_file, "cluster: {standby: false, lease_ttl_ms: 2000}\n");
  r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK_FALSE(r.config.standby);
  CHECK(r.config.lease_ttl_ms == 2000);
  h.write(atlas_file, "cluster: {lease_ttl_ms: 10}\n");
  CHECK(load_node_config(h.env(), {}).error.find("cluster.lease_ttl_ms") != std::string::npos);
}

TEST_CASE("Redis Sentinels come from the file or REDIS_SENTINELS", "[config]") {
  temp_home h;
  h.write(atlas_file, "redis:\n  sentinels: [127.0.0.1:26379, 'h2:26380']\n  master_name: prod\n"
                      "  min_replica_acks: 1\n  wait_timeout_ms: 250\n");
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.redis_sentinels == std::vector<std::string>{"127.0.0.1:26379", "h2:26380"});
  CHECK(r.config.redis_master_name == "prod");
  CHECK(r.config.redis_min_replica_acks == 1);
  CHECK(r.config.redis_wait_timeout_ms == 250);
  CHECK_FALSE(r.config.manage_redis); // the sentinels' Redis is run by others

  r = load_node_config(h.env({{"REDIS_SENTINELS", "s1:1, s2:2,s3:3"}}), start_flags{false, false, "worker"});
  REQUIRE(r.ok()); // a worker needs no REDIS_ADDRESS then
  CHECK(r.config.redis_sentinels == std::vector<std::string>{"s1:1", "s2:2", "s3:3"});

  CHECK(load_node_config(h.env({{"REDIS_SENTINELS", "s1"}}), {}).error
        == "REDIS_SENTINELS: expected host:port,host:port, got 's1'");
  h.write(atlas_file, "redis: {sentinels: [nope]}\n");
  CHECK(load_node_config(h.env(), {}).error.find("redis.sentinels") != std::string::npos);
}

TEST_CASE("time limits, projects, quotas, scheduling and node capacity are read", "[config]") {
  temp_home h;
  h.write(atlas_file, "limits:\n  time_limit_s: 600\n  max_time_limit_s: 3600\n"
                      "projects:\n  quick: {time_limit_s: 60}\n"
                      "quotas:\n  users:\n    alice: {running_jobs: 2, gpus: 4}\n    \"*\": {slots: 8}\n"
                      "  groups:\n    ml: {gpus: 8}\n  members:\n    ml: [alice, bob]\n"
                      "scheduling:\n  preemption: true\n  min_runtime_s: 30\n");
  auto r = load_node_config(h.env({{"ATLAS_NODE_CPUS", "2.5"}, {"ATLAS_NODE_MEMORY", "16g"}}), {});
  REQUIRE(r.ok());
  auto& c = r.config;
  CHECK(r.warnings.empty());
  CHECK(c.time_limit_s == 600);
  CHECK(c.max_time_limit_s == 3600);
  CHECK(c.projects.at("quick").time_limit_s == 60);
  CHECK(c.projects.at("quick").max_time_limit_s == -1);
  CHECK(c.user_quotas.at("alice").running_jobs == 2);
  CHECK(c.user_quotas.at("alice").gpus == 4);
  CHECK(c.user_quotas.at("alice").slots == -1);
  CHECK(c.user_quotas.at("*").slots == 8);
  CHECK(c.group_quotas.at("ml").gpus == 8);
  CHECK(c.group_members.at("ml") == std::vector<std::string>{"alice", "bob"});
  CHECK(c.preemption);
  CHECK(c.min_runtime_s == 30);
  CHECK(c.node_cpus == 2.5);
  CHECK(c.node_memory_bytes == 16ull << 30);
}

TEST_CASE("bad scheduling settings name the key", "[config]") {
  temp_home h;
  h.write(atlas_file, "quotas:\n  users:\n    alice: {running_jobs: lots}\n");
  auto r = load_node_config(h.env(), {});
  CHECK(r.error.find("quotas.users.alice.running_jobs") != std::string::npos);
  h.write(atlas_file, "limits:\n  time_limit_s: 90\n  max_time_limit_s: 60\n");
  r = load_node_config(h.env(), {});
  CHECK(r.error.find("limits.max_time_limit_s") != std::string::npos);
  h.write(atlas_file, "quotas:\n  members:\n    ml: {alice: 1}\n");
  r = load_node_config(h.env(), {});
  CHECK(r.error.find("quotas.members.ml") != std::string::npos);
  h.write(atlas_file, "quotas:\n  userz: {}\n");
  r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.warnings.size() == 1);
  r = load_node_config(h.env({{"ATLAS_NODE_CPUS", "many"}}), {});
  CHECK(r.error.find("ATLAS_NODE_CPUS") != std::string::npos);
}

TEST_CASE("retention's rules and its unused-bundle age are read", "[config]") {
  temp_home h;
  auto r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK_FALSE(r.config.removes_any()); // finished jobs are kept unless asked
  CHECK(r.config.unused_bundles_s == 7 * 86400.0);
  h.write(atlas_file, "retention:\n  max_age: 90d\n  unused_bundles: 12h\n"
                      "  projects:\n    scratch: {max_jobs: 5}\n");
  r = load_node_config(h.env(), {});
  REQUIRE(r.ok());
  CHECK(r.config.retention.max_age_s == 90 * 86400.0);
  CHECK(r.config.unused_bundles_s == 12 * 3600.0);
  CHECK(r.config.retention_of("scratch").max_jobs == 5);
  CHECK(r.config.retention_of("scratch").max_age_s == 90 * 86400.0);
  h.write(atlas_file, "retention: {unused_bundles: soon}\n");
  CHECK(load_node_config(h.env(), {}).error.find("retention.unused_bundles") != std::string::npos);
}
