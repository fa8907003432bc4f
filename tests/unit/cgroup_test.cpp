#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/cgroup.hpp"
#include "adapters/process.hpp"

using namespace atlas;

TEST_CASE("the unified cgroup path is the 0:: line of /proc/self/cgroup", "[cgroup]") {
  CHECK(cgroup::unified_path("0::/system.slice/atlas.service\n") == "/system.slice/atlas.service");
  CHECK(cgroup::unified_path("12:memory:/x\n1:name=systemd:/y\n0::/user.slice\n") == "/user.slice");
  CHECK(cgroup::unified_path("0::/\n") == "/");
  CHECK_FALSE(cgroup::unified_path("12:memory:/x\n4:cpu,cpuacct:/x\n"));
  CHECK_FALSE(cgroup::unified_path(""));
}

TEST_CASE("the cgroup2 mount is found in /proc/self/mounts, hybrid hosts included",
          "[cgroup]") {
  CHECK(cgroup::v2_mount("sysfs /sys sysfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n")
        == "/sys/fs/cgroup");
  CHECK(cgroup::v2_mount("tmpfs /sys/fs/cgroup tmpfs ro 0 0\n"
                         "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
                         "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n")
        == "/sys/fs/cgroup/unified");
  CHECK_FALSE(cgroup::v2_mount("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"));
}

TEST_CASE("both the memory and the cpu controller are needed", "[cgroup]") {
  CHECK(cgroup::has_memory_and_cpu("cpuset cpu io memory hugetlb pids\n"));
  CHECK_FALSE(cgroup::has_memory_and_cpu("hugetlb\n"));
  CHECK_FALSE(cgroup::has_memory_and_cpu("cpuset io memory pids\n")); // cpuset is not cpu
  CHECK_FALSE(cgroup::has_memory_and_cpu(""));
}

TEST_CASE("cpu.max gives the CPUs as a quota of a 100 ms period", "[cgroup]") {
  CHECK(cgroup::cpu_max(1) == "100000 100000");
  CHECK(cgroup::cpu_max(2.5) == "250000 100000");
  CHECK(cgroup::cpu_max(0.001) == "1000 100000"); // the kernel's smallest quota
  CHECK(cgroup::cpu_max(0) == "max 100000");
}

TEST_CASE("memory.events tells how many processes the OOM killer ended", "[cgroup]") {
  CHECK(cgroup::oom_kills("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n") == 1);
  CHECK(cgroup::oom_kills("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n") == 0);
  CHECK(cgroup::oom_kills("") == 0);
}

namespace {

// A cgroup v2 directory this test may create children in, or "".
std::string writable_v2_root() {
  for (const char* d : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    std::string probe = std::string(d) + "/atlas-unit-probe";
    if (::access((std::string(d) + "/cgroup.procs").c_str(), W_OK) == 0
        && ::access((std::string(d) + "/cgroup.controllers").c_str(), R_OK) == 0
        && ::mkdir(probe.c_str(), 0755) == 0) {
      ::rmdir(probe.c_str());
      return d;
    }
  }
  return {};
}

} // namespace

TEST_CASE("a process started into a cgroup runs there from its start", "[cgroup]") {
  auto root = writable_v2_root();
  if (root.empty()) {
    WARN("no writable cgroup v2 directory here: CLONE_INTO_CGROUP not exercised");
    return;
  }
  std::string err;
  auto g = cgroup::create(root, "atlas-unit-" + std::to_string(::getpid()), 0, 0, err);
  REQUIRE(g);
  char tmpl[] = "/tmp/atlas-cg-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::string log = std::string(tmpl) + "/log";
  event_loop loop;
  std::optional<process_exit> ended;
  std::mutex mtx;
  std::condition_variable cv;
  {
    process_supervisor sup{loop};
    loop.start();
    process_spec s;
    s.argv = {"sh", "-c", "cat /proc/self/cgroup"};
    s.env = {"PATH=/usr/bin:/bin"};
    s.log_path = log;
    s.cgroup_fd = g->fd;
    sup.spawn(std::move(s), [](int) {}, [&](process_exit e) {
      std::lock_guard<std::mutex> l{mtx};
      ended = std::move(e);
      cv.notify_all();
    });
    std::unique_lock<std::mutex> l{mtx};
    REQUIRE(cv.wait_for(l, std::chrono::seconds(10), [&] { return ended.has_value(); }));
    l.unlock();
    loop.stop();
  }
  CHECK(ended->error.empty());
  CHECK(ended->exit_status == 0);
  std::ifstream in{log};
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(ss.str().find("0::/atlas-unit-" + std::to_string(::getpid())) != std::string::npos);
  CHECK(cgroup::read_oom_kills(*g) == 0);
  CHECK(cgroup::remove(*g).empty());
  std::filesystem::remove_all(tmpl);
}
