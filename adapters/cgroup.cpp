#include "adapters/cgroup.hpp"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace atlas::cgroup {

namespace {

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One write(2) per value: cgroup files take a value per write.
std::string write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return path + ": " + std::strerror(errno);
  std::string err;
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    err = path + ": " + std::strerror(errno);
  ::close(fd);
  return err;
}

bool lists(std::string_view words, std::string_view word) {
  std::string w;
  std::istringstream in{std::string(words)};
  while (in >> w)
    if (w == word)
      return true;
  return false;
}

} // namespace

std::optional<std::string> unified_path(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0 && line.size() > 3)
      return line.substr(3);
  return std::nullopt;
}

std::optional<std::string> v2_mount(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    std::string device, dir, type;
    if (fields >> device >> dir >> type && type == "cgroup2")
      return dir;
  }
  return std::nullopt;
}

bool has_memory_and_cpu(std::string_view controllers) {
  return lists(controllers, "memory") && lists(controllers, "cpu");
}

std::string cpu_max(double cpus) {
  constexpr long period = 100000;
  if (!(cpus > 0))
    return "max " + std::to_string(period);
  // The kernel refuses quotas under 1 ms.
  auto quota = std::max(1000L, static_cast<long>(std::llround(cpus * period)));
  return std::to_string(quota) + " " + std::to_string(period);
}

uint64_t oom_kills(std::string_view events) {
  std::istringstream in{std::string(events)};
  std::string key;
  uint64_t n = 0;
  while (in >> key >> n)
    if (key == "oom_kill")
      return n;
  return 0;
}

setup prepare(const std::string& root) {
  setup s;
  std::string dir = root;
  auto mounts = read_text("/proc/self/mounts");
  auto mount_point = mounts ? v2_mount(*mounts) : std::nullopt;
  std::string mount = mount_point.value_or("/sys/fs/cgroup");
  if (dir.empty()) {
    if (!mount_point) {
      s.why_not = "no cgroup2 file system is mounted (a cgroup v1 host)";
      return s;
    }
    auto self = read_text("/proc/self/cgroup");
    auto path = self ? unified_path(*self) : std::nullopt;
    if (!path) {
      s.why_not = "no cgroup v2 path in /proc/self/cgroup (a v1 or hybrid host)";
      return s;
    }
    dir = mount + (*path == "/" ? "" : *path);
  }
  auto controllers = read_text(dir + "/cgroup.controllers");
  if (!controllers) {
    s.why_not = dir + "/cgroup.controllers cannot be read (no cgroup v2 there)";
    return s;
  }
  if (!has_memory_and_cpu(*controllers)) {
    s.why_not = dir + " has not been given the memory and cpu controllers (has: '"
                + std::string(controllers->substr(0, controllers->find('\n'))) + "')";
    return s;
  }
  auto enable = [&] { return write_text(dir + "/cgroup.subtree_control", "+memory +cpu"); };
  if (auto err = enable(); !err.empty()) {
    // No internal processes: leave `dir` for a leaf, then try again.
    auto own = read_text("/proc/self/cgroup");
    auto path = own ? unified_path(*own) : std::nullopt;
    if (!path || mount + (*path == "/" ? "" : *path) != dir) {
      s.why_not = err;
      return s;
    }
    std::string leaf = dir + "/server";
    if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) {
      s.why_not = leaf + ": " + std::strerror(errno);
      return s;
    }
    if (auto moved = write_text(leaf + "/cgroup.procs", "0"); !moved.empty()) {
      s.why_not = moved;
      return s;
    }
    if (auto again = enable(); !again.empty()) {
      s.why_not = again + " (other processes share the server's cgroup)";
      return s;
    }
  }
  s.dir = dir;
  return s;
}

std::optional<job_group> create(const std::string& parent, const std::string& name, double cpus,
                                uint64_t memory_bytes, std::string& error) {
  job_group g;
  g.dir = parent + "/" + name;
  if (::mkdir(g.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    error = g.dir + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string err;
  if (memory_bytes > 0) {
    err = write_text(g.dir + "/memory.max", std::to_string(memory_bytes));
    // memory.swap.max is absent without swap accounting: nothing to limit then.
    if (err.empty() && ::access((g.dir + "/memory.swap.max").c_str(), F_OK) == 0)
      err = write_text(g.dir + "/memory.swap.max", "0");
  }
  if (err.empty() && cpus > 0)
    err = write_text(g.dir + "/cpu.max", cpu_max(cpus));
  if (err.empty()) {
    g.fd = ::open(g.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g.fd < 0)
      err = g.dir + ": " + std::strerror(errno);
  }
  if (!err.empty()) {
    ::rmdir(g.dir.c_str());
    error = err;
    return std::nullopt;
  }
  return g;
}

uint64_t read_oom_kills(const job_group& g) {
  auto events = read_text(g.dir + "/memory.events");
  return events ? oom_kills(*events) : 0;
}

std::string remove(job_group& g) {
  if (g.fd >= 0) {
    ::close(g.fd);
    g.fd = -1;
  }
  // A process that left the job's group may still live here (cgroup.kill: 5.14+).
  write_text(g.dir + "/cgroup.kill", "1");
  for (int i = 0; i < 20; ++i) { // on the loop thread: 200 ms at most
    if (::rmdir(g.dir.c_str()) == 0 || errno == ENOENT)
      return {};
    if (errno != EBUSY)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return g.dir + ": " + std::strerror(errno);
}

} // namespace atlas::cgroup
