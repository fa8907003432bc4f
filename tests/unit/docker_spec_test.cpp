#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "adapters/docker_client.hpp"
#include "adapters/docker_spec.hpp"
#include "adapters/job_argv.hpp"
#include "adapters/json.hpp"

using namespace atlas;
using namespace atlas::docker;

namespace {

container_options options() {
  container_options o;
  o.job_id = "j1";
  o.node_id = "host-5000";
  o.default_image = "atlas-test/busybox";
  o.work_dir = "/data/wd/j1";
  o.cwd = "/data/wd/j1/job_source";
  o.results_root = "/data/results";
  o.config_dir = "/home/u/.foundations/config";
  o.volume_roots = {"/data/wd", "/data/results"};
  o.env = {"FOUNDATIONS_JOB_ID=j1", "FOUNDATIONS_WORKING_DIR=/data/wd/j1/job_source", "A=1"};
  return o;
}

json::value body_of(const std::string& spec, const container_options& o = options()) {
  std::string err;
  auto body = create_body(spec, o, err);
  INFO(err);
  REQUIRE(body);
  auto v = json::parse(*body, err);
  REQUIRE(v);
  return *v;
}

std::vector<std::string> strings(const json::value* v) {
  std::vector<std::string> out;
  if (v != nullptr)
    for (auto& x : v->array)
      out.push_back(x.string);
  return out;
}

bool has(const std::vector<std::string>& xs, const std::string& x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

std::string refused(const std::string& spec, const container_options& o = options()) {
  std::string err;
  CHECK_FALSE(create_body(spec, o, err));
  return err;
}

} // namespace

TEST_CASE("memory sizes read as docker-py reads mem_limit, in bytes", "[docker]") {
  std::string err;
  CHECK(parse_memory("4g", err) == 4ull << 30);
  CHECK(parse_memory("4G", err) == 4ull << 30);
  CHECK(parse_memory("4gb", err) == 4ull << 30);
  CHECK(parse_memory("512m", err) == 512ull << 20);
  CHECK(parse_memory("32m", err) == 32ull << 20);
  CHECK(parse_memory("1.5g", err) == (3ull << 30) / 2);
  CHECK(parse_memory("64k", err) == 64ull << 10);
  CHECK(parse_memory("100b", err) == 100u);
  CHECK(parse_memory("4", err) == 4ull << 30);          // a bare small number: GB (`--ram 4`)
  CHECK(parse_memory("33554432", err) == 33554432u);    // a bare large number: bytes
  for (auto bad : {"", "g", "abc", "-1", "1.2.3g", "4x", "4 gigs"}) {
    err.clear();
    CHECK_FALSE(parse_memory(bad, err));
    CHECK(err.find("mem_limit") != std::string::npos);
  }
}

TEST_CASE("a spec becomes the create call with the job's mounts, labels and no network", "[docker]") {
  auto v = body_of(R"({"command":["main.py","--lr","0.1"],"environment":{"A":"1"}})");
  CHECK(v.get_string("Image") == "atlas-test/busybox");
  CHECK(strings(v.find("Entrypoint")) == std::vector<std::string>{"python3"});
  CHECK(strings(v.find("Cmd")) == std::vector<std::string>{"main.py", "--lr", "0.1"});
  CHECK(v.get_string("WorkingDir") == "/job/job_source");
  auto env = strings(v.find("Env"));
  CHECK(has(env, "FOUNDATIONS_JOB_ID=j1"));
  CHECK(has(env, "A=1"));
  CHECK(has(env, "FOUNDATIONS_WORKING_DIR=/job/job_source")); // the container's path, not the host's
  CHECK_FALSE(has(env, "FOUNDATIONS_WORKING_DIR=/data/wd/j1/job_source"));
  auto labels = v.find("Labels");
  REQUIRE(labels);
  CHECK(labels->get_string("atlas.job_id") == "j1");
  CHECK(labels->get_string("atlas.node") == "host-5000");
  auto host = v.find("HostConfig");
  REQUIRE(host);
  CHECK(host->get_string("NetworkMode") == "none");
  CHECK(host->find("Memory") == nullptr);
  CHECK(host->find("DeviceRequests") == nullptr);
  auto binds = strings(host->find("Binds"));
  CHECK(has(binds, "/data/wd/j1:/job:rw"));
  CHECK(has(binds, "/data/results:/data/results:rw"));
  CHECK(has(binds, "/home/u/.foundations/config:/root/.foundations/config:ro"));
}

TEST_CASE("the job's CPUs become NanoCpus, and no CPUs no limit", "[docker]") {
  auto o = options();
  CHECK(body_of(R"({"command":["a.py"]})", o).find("HostConfig")->find("NanoCpus") == nullptr);
  o.cpus = 1.5;
  CHECK(body_of(R"({"command":["a.py"]})", o).find("HostConfig")->get_int("NanoCpus")
        == 1500000000);
}

TEST_CASE("the spec's own image, entrypoint, working_dir, memory and volumes are honoured",
          "[docker]") {
  auto v = body_of(R"({"image":"python:3.11","entrypoint":["/bin/sh","-c"],"command":"echo hi",
                       "working_dir":"/job","mem_limit":"32m",
                       "volumes":{"/data/wd/shared":{"bind":"/shared","mode":"ro"},
                                  "/data/results/x":{"bind":"/job","mode":"rw"}}})");
  CHECK(v.get_string("Image") == "python:3.11");
  CHECK(strings(v.find("Entrypoint")) == std::vector<std::string>{"/bin/sh", "-c"});
  CHECK(strings(v.find("Cmd")) == std::vector<std::string>{"echo", "hi"});
  CHECK(v.get_string("WorkingDir") == "/job");
  auto host = v.find("HostConfig");
  CHECK(host->get_int("Memory") == 32 << 20);
  CHECK(host->get_int("MemorySwap") == 32 << 20); // no swap beyond the limit
  auto binds = strings(host->find("Binds"));
  CHECK(has(binds, "/data/wd/shared:/shared:ro"));
  CHECK(has(binds, "/data/results/x:/job:rw")); // replaces the default /job
  CHECK_FALSE(has(binds, "/data/wd/j1:/job:rw"));

  auto list = body_of(R"({"command":["a.py"],"volumes":["/data/wd/shared:/s","/data/results:/r:ro"],
                          "mem_limit":4})");
  auto lb = strings(list.find("HostConfig")->find("Binds"));
  CHECK(has(lb, "/data/wd/shared:/s:rw"));
  CHECK(has(lb, "/data/results:/r:ro"));
  CHECK(list.find("HostConfig")->get_int("Memory") == int64_t{4} << 30);
}

TEST_CASE("a container gets exactly the job's GPUs through a device request", "[docker]") {
  auto o = options();
  o.gpus = {"1", "3"};
  auto v = body_of(R"({"command":["a.py"]})", o);
  auto req = v.find("HostConfig")->find("DeviceRequests");
  REQUIRE(req);
  REQUIRE(req->array.size() == 1);
  CHECK(req->array[0].get_string("Driver") == "nvidia");
  CHECK(strings(req->array[0].find("DeviceIDs")) == std::vector<std::string>{"1", "3"});
  REQUIRE(req->array[0].find("Capabilities"));
  CHECK(strings(&req->array[0].find("Capabilities")->array.at(0)) == std::vector<std::string>{"gpu"});
}

TEST_CASE("network mode and user come from the node's docker settings", "[docker]") {
  auto o = options();
  o.network_mode = "host";
  o.user = "1000:1000";
  auto v = body_of(R"({"command":["a.py"]})", o);
  CHECK(v.find("HostConfig")->get_string("NetworkMode") == "host");
  CHECK(v.get_string("User") == "1000:1000");
}

TEST_CASE("a job runs its entrypoint, else python, then its command", "[docker][job_argv]") {
  auto argv_of = [](const std::string& spec) {
    std::string err;
    auto v = json::parse(spec, err);
    REQUIRE(v);
    auto run = spec_argv(*v, "python3", err);
    return run ? run->argv() : std::vector<std::string>{"error: " + err};
  };
  CHECK(argv_of(R"({"command":"a.py -x"})") == std::vector<std::string>{"python3", "a.py", "-x"});
  CHECK(argv_of(R"({"entrypoint":["/bin/sh","-c"],"command":["exit 3"]})")
        == std::vector<std::string>{"/bin/sh", "-c", "exit 3"});
  CHECK(argv_of(R"({"entrypoint":"run"})") == std::vector<std::string>{"run"});
  CHECK(argv_of(R"({})")[0].find("neither command nor entrypoint") != std::string::npos);
  CHECK(argv_of(R"({"entrypoint":[1]})")[0].find("spec.entrypoint") != std::string::npos);
}

TEST_CASE("specs a container cannot run are refused with a reason", "[docker]") {
  CHECK(refused(R"({})").find("neither command nor entrypoint") != std::string::npos);
  CHECK(refused(R"([1])").find("not a JSON object") != std::string::npos);
  CHECK(refused(R"({"command":[1]})").find("strings") != std::string::npos);
  CHECK(refused(R"({"command":["a"],"volumes":{"/etc":{"bind":"/e"}}})").find("outside") != std::string::npos);
  CHECK(refused(R"({"command":["a"],"volumes":{"/data/wd/../../etc":{"bind":"/e"}}})").find("outside")
        != std::string::npos);
  CHECK(refused(R"({"command":["a"],"volumes":{"/data/wdx":{"bind":"/e"}}})").find("outside")
        != std::string::npos);
  CHECK(refused(R"({"command":["a"],"volumes":{"rel":{"bind":"/e"}}})").find("absolute") != std::string::npos);
  CHECK(refused(R"({"command":["a"],"volumes":{"/data/wd/x":{"bind":"/e","mode":"rwx"}}})").find("mode")
        != std::string::npos);
  CHECK(refused(R"({"command":["a"],"working_dir":"job"})").find("working_dir") != std::string::npos);
  CHECK(refused(R"({"command":["a"],"mem_limit":"lots"})").find("mem_limit") != std::string::npos);
  CHECK(refused(R"({"command":["a"],"mem_limit":"1m"})").find("minimum") != std::string::npos);
  auto o = options();
  o.default_image.clear();
  CHECK(refused(R"({"command":["a"]})", o).find("docker.image") != std::string::npos);
}

TEST_CASE("a container gets the job's own variables, not the node's", "[docker]") {
  std::map<std::string, std::string> node{{"PATH", "/usr/bin"}, {"HOME", "/root"}, {"X", "1"}};
  auto env = container_env({"PATH=/usr/bin", "HOME=/root", "X=2", "FOUNDATIONS_JOB_ID=j",
                            "CUDA_VISIBLE_DEVICES=1", "NVIDIA_VISIBLE_DEVICES=1"},
                           node, {});
  CHECK(env == std::vector<std::string>{"X=2", "FOUNDATIONS_JOB_ID=j"});
  env = container_env({"HOME=/root"}, node, {"HOME"}); // named in spec.environment
  CHECK(env == std::vector<std::string>{"HOME=/root"});
  CHECK(spec_env_names(R"({"environment":{"A":"1"}})") == std::set<std::string>{"A"});
  CHECK(spec_env_names(R"({"environment":["B=2"]})") == std::set<std::string>{"B"});
}

TEST_CASE("the multiplexed log stream splits into stdout and stderr however it is cut",
          "[docker]") {
  auto frame = [](char stream, const std::string& payload) {
    std::string f{stream, 0, 0, 0};
    auto n = static_cast<uint32_t>(payload.size());
    f += static_cast<char>(n >> 24);
    f += static_cast<char>((n >> 16) & 0xff);
    f += static_cast<char>((n >> 8) & 0xff);
    f += static_cast<char>(n & 0xff);
    return f + payload;
  };
  std::string big(70000, 'x');
  auto stream = frame(1, "hello\n") + frame(2, "err\n") + frame(1, "") + frame(1, big) + frame(2, "end\n");
  for (size_t step : {size_t{1}, size_t{3}, size_t{7}, size_t{8}, size_t{9}, size_t{4096}, stream.size()}) {
    log_demux d;
    std::string out, err;
    for (size_t i = 0; i < stream.size(); i += step)
      d.feed(std::string_view(stream).substr(i, step), [&](int s, std::string_view p) {
        (s == 2 ? err : out).append(p);
      });
    CHECK(out == "hello\n" + big);
    CHECK(err == "err\nend\n");
    CHECK_FALSE(d.mid_frame());
  }
  log_demux d;
  d.feed(frame(1, "abc").substr(0, 5), [](int, std::string_view) {});
  CHECK(d.mid_frame());
}

TEST_CASE("engine errors become clear job failure reasons", "[docker]") {
  CHECK(describe_engine_error("create", 404, R"({"message":"No such image: nope:latest"})", "")
        == "Docker image not found on this node (No such image: nope:latest); pull or import it on the node first");
  auto version = describe_engine_error(
    "create", 400, R"({"message":"client version 1.41 is too new. Maximum supported API version is 1.40"})", "");
  CHECK(version.find("refused API v1.41") != std::string::npos);
  CHECK(describe_engine_error("start", 0, "", "cannot reach the Docker engine at /x.sock: no such file or directory")
        == "Docker start failed: cannot reach the Docker engine at /x.sock: no such file or directory");
  CHECK(describe_engine_error("start", 500, R"({"message":"boom"})", "")
        == "Docker start failed (engine answered 500): boom");
}

TEST_CASE("an engine that is not there is reported, not waited for", "[docker]") {
  docker_client c("/nonexistent/docker.sock");
  auto r = c.ping();
  CHECK_FALSE(r.ok());
  CHECK(r.error().find("cannot reach the Docker engine at /nonexistent/docker.sock") != std::string::npos);
}
