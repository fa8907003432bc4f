#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adapters/process.hpp"

using namespace std::chrono_literals;
using atlas::process_exit;
using atlas::process_spec;
using atlas::process_supervisor;

namespace {

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/atlas-proc-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = std::filesystem::canonical(tmpl).string();
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// A started loop with a supervisor on it; the loop stops before the
// supervisor goes, as the header asks.
struct fixture {
  atlas::event_loop loop;
  process_supervisor sup{loop};
  fixture() { loop.start(); }
  ~fixture() { loop.stop(); }
};

// Collects exits (and pids) from the loop thread.
struct collector {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<process_exit> exits;
  std::vector<int> pids;

  std::function<void(int)> started() {
    return [this](int pid) {
      std::lock_guard<std::mutex> g{mtx};
      pids.push_back(pid);
      cv.notify_all();
    };
  }
  std::function<void(process_exit)> exited() {
    return [this](process_exit e) {
      std::lock_guard<std::mutex> g{mtx};
      exits.push_back(std::move(e));
      cv.notify_all();
    };
  }
  bool wait_exits(size_t n, std::chrono::milliseconds limit = 10s) {
    std::unique_lock<std::mutex> l{mtx};
    return cv.wait_for(l, limit, [&] { return exits.size() >= n; });
  }
  int wait_pid(std::chrono::milliseconds limit = 10s) {
    std::unique_lock<std::mutex> l{mtx};
    bool ok = cv.wait_for(l, limit, [&] { return !pids.empty() || !exits.empty(); });
    return ok && !pids.empty() ? pids.front() : 0;
  }
};

process_spec shell(const std::string& script, const std::string& log = {}) {
  process_spec s;
  s.argv = {"sh", "-c", script};
  s.env = {"PATH=/usr/bin:/bin"};
  s.log_path = log;
  return s;
}

std::optional<process_exit> run_one(process_supervisor& sup, process_spec spec) {
  // Shared with the callbacks, so a timed-out run cannot call into freed memory.
  auto c = std::make_shared<collector>();
  sup.spawn(
    std::move(spec), [c](int pid) { c->started()(pid); },
    [c](process_exit e) { c->exited()(std::move(e)); });
  if (!c->wait_exits(1))
    return std::nullopt;
  std::lock_guard<std::mutex> g{c->mtx};
  return c->exits.front();
}

std::string slurp(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Orphaned grandchildren are reparented to us (see subreaper below) and
// reaped here, so that a dead group really is gone: kill(-pgid, 0) fails with
// ESRCH. Call only after the leader was reported, or this could reap it.
bool group_gone(int pgid, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    while (::waitpid(-pgid, nullptr, WNOHANG) > 0) {
    }
    if (::kill(-pgid, 0) != 0 && errno == ESRCH)
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// PID 1 in some containers never reaps orphans; become their reaper.
void become_subreaper() {
  static bool done = [] { return ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; }();
  REQUIRE(done);
}

bool wait_for_text(const std::string& path, const std::string& text,
                   std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (slurp(path).find(text) != std::string::npos)
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

} // namespace

TEST_CASE("output on stdout and stderr both lands in the log", "[process]") {
  temp_dir tmp;
  fixture f;
  auto log = tmp.path + "/job.log";
  auto e = run_one(f.sup, shell("echo out; echo err 1>&2", log));
  REQUIRE(e);
  CHECK(e->error.empty());
  CHECK(e->exit_status == 0);
  auto text = slurp(log);
  CHECK(text.find("out\n") != std::string::npos);
  CHECK(text.find("err\n") != std::string::npos);
  CHECK(text.size() == 8);
  CHECK_FALSE(e->log_truncated);
}

TEST_CASE("a second run appends to the same log and stdin reads end of file", "[process]") {
  temp_dir tmp;
  fixture f;
  auto log = tmp.path + "/job.log";
  REQUIRE(run_one(f.sup, shell("echo first", log)));
  auto e = run_one(f.sup, shell("read line; echo \"read=$?\"", log));
  REQUIRE(e);
  CHECK(slurp(log) == "first\nread=1\n");
}

TEST_CASE("an exit code is reported with no signal", "[process]") {
  fixture f;
  auto e = run_one(f.sup, shell("exit 3"));
  REQUIRE(e);
  CHECK(e->exit_status == 3);
  CHECK(e->term_signal == 0);
  CHECK(e->error.empty());
}

TEST_CASE("a process killed by SIGTERM is reported with signal 15", "[process]") {
  collector c;
  fixture f;
  std::atomic<bool> sent{false};
  f.sup.spawn(shell("exec sleep 100"),
              [&](int pid) { sent = process_supervisor::signal_group(pid, SIGTERM); },
              c.exited());
  REQUIRE(c.wait_exits(1));
  CHECK(sent);
  CHECK(c.exits[0].term_signal == SIGTERM);
  CHECK(c.exits[0].exit_status == -1);
}

TEST_CASE("signal_group kills every process of the job's tree", "[process]") {
  become_subreaper();
  temp_dir tmp;
  collector c;
  fixture f;
  auto log = tmp.path + "/job.log";
  f.sup.spawn(shell("sleep 100 & sleep 100 & echo ready; wait", log), c.started(), c.exited());
  int pid = c.wait_pid();
  REQUIRE(pid > 0);
  REQUIRE(wait_for_text(log, "ready"));
  CHECK(::kill(-pid, 0) == 0); // the group is there, sleeps included
  CHECK(process_supervisor::signal_group(pid, SIGKILL));
  REQUIRE(c.wait_exits(1));
  CHECK(c.exits[0].term_signal == SIGKILL);
  CHECK(group_gone(pid));
  CHECK_FALSE(process_supervisor::signal_group(pid, 0));
}

TEST_CASE("signal_group refuses pids that would address other groups", "[process]") {
  CHECK_FALSE(process_supervisor::signal_group(0, 0));
  CHECK_FALSE(process_supervisor::signal_group(1, 0));
  CHECK_FALSE(process_supervisor::signal_group(-5, 0));
}

TEST_CASE("a grandchild left behind by the leader is killed when the leader exits",
          "[process]") {
  become_subreaper();
  collector c;
  fixture f;
  f.sup.spawn(shell("sleep 100 & echo started"), c.started(), c.exited());
  auto begin = std::chrono::steady_clock::now();
  REQUIRE(c.wait_exits(1));
  CHECK(std::chrono::steady_clock::now() - begin < 3s);
  CHECK(c.exits[0].exit_status == 0);
  REQUIRE(c.pids.size() == 1);
  CHECK(group_gone(c.pids[0]));
}

TEST_CASE("a grandchild that left the group and holds the pipes delays the report only "
          "briefly", "[process]") {
  become_subreaper();
  temp_dir tmp;
  collector c;
  fixture f;
  auto pidfile = tmp.path + "/stray.pid";
  // setsid puts the sleep in a new session, out of reach of the group kill.
  f.sup.spawn(shell("setsid sleep 100 & echo $! > " + pidfile + "; sleep 0.2"), c.started(),
              c.exited());
  auto begin = std::chrono::steady_clock::now();
  REQUIRE(c.wait_exits(1, 5s));
  CHECK(std::chrono::steady_clock::now() - begin < 3s);
  CHECK(c.exits[0].exit_status == 0);
  int stray = std::atoi(slurp(pidfile).c_str());
  REQUIRE(stray > 1);
  ::kill(stray, SIGKILL);
  for (int i = 0; i < 200 && ::waitpid(stray, nullptr, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(10ms);
}

TEST_CASE("output past the log cap is dropped and marked with one line", "[process]") {
  temp_dir tmp;
  fixture f;
  auto log = tmp.path + "/job.log";
  auto spec = shell("yes | head -c 100000; yes | head -c 5000 1>&2; echo done", log);
  spec.log_cap_bytes = 1000;
  auto e = run_one(f.sup, spec);
  REQUIRE(e);
  CHECK(e->exit_status == 0);
  CHECK(e->log_truncated);
  const std::string marker = "[atlas] log truncated after 1000 bytes\n";
  auto text = slurp(log);
  CHECK(text.size() == 1000 + marker.size());
  CHECK(text.substr(1000) == marker);
  CHECK(text.find("done") == std::string::npos);
}

TEST_CASE("the marker starts on its own line when the cap cuts a line", "[process]") {
  temp_dir tmp;
  fixture f;
  auto log = tmp.path + "/job.log";
  auto spec = shell("echo abcdefgh", log);
  spec.log_cap_bytes = 3;
  auto e = run_one(f.sup, spec);
  REQUIRE(e);
  CHECK(slurp(log) == "abc\n[atlas] log truncated after 3 bytes\n");
}

TEST_CASE("the child gets exactly the environment and working directory given",
          "[process]") {
  temp_dir tmp;
  fixture f;
  auto log = tmp.path + "/job.log";
  auto spec = shell("echo \"$FOO\"; pwd -P; echo \"${HOME-unset}\"", log);
  spec.env.push_back("FOO=bar baz");
  spec.cwd = tmp.path;
  auto e = run_one(f.sup, spec);
  REQUIRE(e);
  CHECK(e->exit_status == 0);
  CHECK(slurp(log) == "bar baz\n" + tmp.path + "\nunset\n");
}

TEST_CASE("the child starts with no signal blocked or ignored, whatever the parent does",
          "[process]") {
  // The node ignores SIGPIPE and its loop thread blocks it; a job must not
  // inherit either (a shell pipeline would not end on a closed pipe).
  temp_dir tmp;
  auto old = std::signal(SIGPIPE, SIG_IGN);
  fixture f;
  auto log = tmp.path + "/job.log";
  process_spec spec;
  spec.argv = {"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"};
  spec.log_path = log;
  auto e = run_one(f.sup, spec);
  std::signal(SIGPIPE, old);
  REQUIRE(e);
  CHECK(e->exit_status == 0);
  // Masks in hex, bit n-1 for signal n. glibc's posix_spawn leaves its own
  // reserved real-time signals (32 and up) ignored; a glibc program sets
  // them up again at start-up, so only signals 1-31 are checked there.
  auto text = slurp(log);
  auto mask = [&](const std::string& name) {
    auto at = text.find(name + ":\t");
    REQUIRE(at != std::string::npos);
    return std::stoull(text.substr(at + name.size() + 2, 16), nullptr, 16);
  };
  CHECK(mask("SigBlk") == 0);
  CHECK((mask("SigIgn") & 0x7fffffffull) == 0);
}

TEST_CASE("the parent's PATH finds the program when the environment has none",
          "[process]") {
  fixture f;
  auto spec = shell("exit 7");
  spec.env = {"FOO=1"};
  auto e = run_one(f.sup, spec);
  REQUIRE(e);
  CHECK(e->error.empty());
  CHECK(e->exit_status == 7);
}

TEST_CASE("a program that cannot start is an error and the supervisor stays usable",
          "[process]") {
  temp_dir tmp;
  collector c;
  fixture f;
  process_spec missing;
  missing.argv = {"no-such-program-atlas"};
  missing.env = {"PATH=/usr/bin:/bin"};
  f.sup.spawn(missing, c.started(), c.exited());
  REQUIRE(c.wait_exits(1));
  CHECK(c.pids.empty());
  CHECK(c.exits[0].exit_status == -1);
  CHECK(c.exits[0].error == "cannot start 'no-such-program-atlas': no such file or directory");

  SECTION("a file without execute permission") {
    auto script = tmp.path + "/script.sh";
    std::ofstream{script} << "#!/bin/sh\nexit 0\n";
    ::chmod(script.c_str(), 0644);
    process_spec s;
    s.argv = {script};
    auto e = run_one(f.sup, s);
    REQUIRE(e);
    CHECK(e->error == "cannot start '" + script + "': permission denied");
    s.argv = {"script.sh"};
    s.env = {"PATH=" + tmp.path};
    e = run_one(f.sup, s);
    REQUIRE(e);
    CHECK(e->error == "cannot start 'script.sh': permission denied");
  }
  SECTION("a working directory that does not exist") {
    auto s = shell("exit 0");
    s.cwd = tmp.path + "/nope";
    auto e = run_one(f.sup, s);
    REQUIRE(e);
    CHECK(e->error.find("working directory '" + s.cwd + "'") != std::string::npos);
  }
  SECTION("a log file that cannot be created") {
    auto e = run_one(f.sup, shell("exit 0", tmp.path + "/nope/job.log"));
    REQUIRE(e);
    CHECK(e->error.find("log file") != std::string::npos);
  }
  SECTION("an empty command") {
    auto e = run_one(f.sup, process_spec{});
    REQUIRE(e);
    CHECK(e->error == "cannot start '': empty command");
  }
  auto after = run_one(f.sup, shell("exit 0"));
  REQUIRE(after);
  CHECK(after->error.empty());
  CHECK(after->exit_status == 0);
  CHECK(f.sup.running() == 0);
}

TEST_CASE("twenty concurrent short processes are each reported exactly once", "[process]") {
  collector c;
  fixture f;
  std::thread other{[&] {
    for (int i = 10; i < 20; ++i)
      f.sup.spawn(shell("sleep 0.1; exit " + std::to_string(i)), c.started(), c.exited());
  }};
  for (int i = 0; i < 10; ++i)
    f.sup.spawn(shell("sleep 0.1; exit " + std::to_string(i)), c.started(), c.exited());
  other.join();
  REQUIRE(c.wait_exits(20));
  std::this_thread::sleep_for(200ms); // room for a duplicate report to show up
  std::lock_guard<std::mutex> g{c.mtx};
  REQUIRE(c.exits.size() == 20);
  CHECK(c.pids.size() == 20);
  std::vector<int> seen(20, 0);
  for (const auto& e : c.exits) {
    REQUIRE(e.exit_status >= 0);
    REQUIRE(e.exit_status < 20);
    ++seen[static_cast<size_t>(e.exit_status)];
  }
  CHECK(seen == std::vector<int>(20, 1));
  CHECK(f.sup.running() == 0);
}

TEST_CASE("a supervisor destroyed with children still running kills them", "[process]") {
  become_subreaper();
  int pid = 0;
  {
    collector c; // outlives the fixture: the loop may still call it
    fixture f;
    f.sup.spawn(shell("sleep 100 & sleep 100"), c.started(), c.exited());
    pid = c.wait_pid();
    REQUIRE(pid > 0);
    CHECK(f.sup.running() == 1);
  }
  CHECK(group_gone(pid));
}
