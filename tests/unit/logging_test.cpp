#include "runtime/logging.hpp"

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <unistd.h>

namespace {

struct log_dir {
  log_dir() {
    char tmpl[] = "/tmp/atlas-log-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr)
      path = tmpl;
  }
  ~log_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file() const { return path + "/atlas.log"; }
  std::string read() const {
    std::ifstream in(file());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string path;
};

} // namespace

TEST_CASE("a log line carries a UTC timestamp, the level and the node id", "[logging]") {
  log_dir dir;
  REQUIRE(atlas::init_logging("info", dir.file(), "node-1"));
  spdlog::warn("job started job_id={} slot={}", "42", "s0"); // warn flushes at once
  const std::regex line(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn \[node=node-1\] job started job_id=42 slot=s0\n)");
  CHECK(std::regex_match(dir.read(), line));
  atlas::shutdown_logging();
}

TEST_CASE("the log file rotates at its size, keeping a bounded number of old ones", "[logging]") {
  log_dir dir;
  REQUIRE(atlas::init_logging("info", dir.file(), "n", nullptr, 4096, 2));
  for (int i = 0; i < 400; ++i)
    spdlog::warn("line {} {}", i, std::string(80, 'x'));
  atlas::shutdown_logging();
  namespace fs = std::filesystem;
  auto stem = fs::path(dir.file());
  auto rotated = [&](int n) {
    return stem.parent_path() / (stem.stem().string() + "." + std::to_string(n) + stem.extension().string());
  };
  CHECK(fs::file_size(dir.file()) <= 4096);
  CHECK(fs::exists(rotated(1)));
  CHECK(fs::exists(rotated(2)));
  CHECK_FALSE(fs::exists(rotated(3)));
  CHECK(dir.read().find("line 399 ") != std::string::npos);
}

TEST_CASE("lines below the chosen level are dropped", "[logging]") {
  log_dir dir;
  REQUIRE(atlas::init_logging("WARNING", dir.file(), "n"));
  spdlog::info("not shown");
  spdlog::error("shown");
  atlas::shutdown_logging();
  const auto text = dir.read();
  CHECK(text.find("not shown") == std::string::npos);
  CHECK(text.find(" error [node=n] shown") != std::string::npos);
}

TEST_CASE("info lines reach the file within about a second", "[logging]") {
  log_dir dir;
  REQUIRE(atlas::init_logging("debug", dir.file(), "n"));
  spdlog::debug("quiet line");
  bool seen = false;
  for (int i = 0; i < 40 && !seen; ++i) { // bounded: 4 s
    ::usleep(100'000);
    seen = dir.read().find("quiet line") != std::string::npos;
  }
  CHECK(seen);
  atlas::shutdown_logging();
}

TEST_CASE("level names are accepted in any case and unknown ones are refused", "[logging]") {
  for (const char* ok : {"trace", "debug", "info", "warn", "warning", "error", "INFO", "Warn"})
    CHECK(atlas::is_valid_log_level(ok));
  for (const char* bad : {"", "verbose", "critical", "off", "inf"})
    CHECK_FALSE(atlas::is_valid_log_level(bad));
  std::string error;
  CHECK_FALSE(atlas::init_logging("loud", "", "n", &error));
  CHECK(error.find("'loud'") != std::string::npos);
}

TEST_CASE("a log file that cannot be opened is refused with a reason", "[logging]") {
  log_dir dir;
  std::ofstream(dir.path + "/plain").put('x'); // a file where a directory should be
  const std::string bad = dir.path + "/plain/atlas.log";
  std::string error;
  CHECK_FALSE(atlas::init_logging("info", bad, "n", &error));
  CHECK(error.find(bad) != std::string::npos);
}

TEST_CASE("a percent sign in the node id is printed as-is", "[logging]") {
  log_dir dir;
  REQUIRE(atlas::init_logging("info", dir.file(), "n%v1"));
  spdlog::warn("hello");
  CHECK(dir.read().find("[node=n%v1] hello") != std::string::npos);
  atlas::shutdown_logging();
}
