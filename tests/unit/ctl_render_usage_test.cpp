// atlas-ctl's `usage` and `events` output (runtime/ctl/render_usage.hpp);
// part of test_ctl_render.

#include <catch2/catch.hpp>

#include "runtime/ctl/render_usage.hpp"

#include <sstream>

using namespace atlas;
using namespace atlas::ctl;

namespace {

constexpr double may_1 = 1714521600; // 2024-05-01 00:00:00 UTC

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

usage::totals user_row(std::string user, double jobs, double slot, double gpu) {
  usage::totals t;
  t.user = std::move(user);
  t.jobs = jobs;
  t.slot_seconds = slot;
  t.gpu_seconds = gpu;
  if (gpu > 0)
    t.gpu_seconds_by_model["H100"] = gpu;
  return t;
}

} // namespace

TEST_CASE("parse_when reads UTC days and epoch seconds", "[ctl][usage]") {
  CHECK(parse_when("2024-05-01", false).value() == may_1);
  CHECK(parse_when("2024-05-01", true).value() == may_1 + 86399);
  CHECK(parse_when("1714521600", false).value() == may_1);
  CHECK(parse_when("1714521600.5", true).value() == may_1 + 0.5);
  CHECK_FALSE(parse_when("2024-02-30", false).ok());
  CHECK_FALSE(parse_when("2024-5-1", false).ok());
  CHECK_FALSE(parse_when("yesterday", false).ok());
  CHECK_FALSE(parse_when("", false).ok());
  CHECK_FALSE(parse_when("-5", false).ok());
  CHECK(parse_when("2024-13-01", false).error().find("2024-13-01") != std::string::npos);
}

TEST_CASE("format_bytes and format_amount are readable", "[ctl][usage]") {
  CHECK(format_bytes(0) == "-");
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(3ull << 30) == "3.0 GiB");
  CHECK(format_amount(0) == "-");
  CHECK(format_amount(12) == "12.0s");
  CHECK(format_amount(270) == "4.5m");
  CHECK(format_amount(3 * 3600 + 720) == "3.2h");
}

TEST_CASE("usage_text: a title, a row per name, a total", "[ctl][usage]") {
  auto ada = user_row("ada", 2, 7200, 14400);
  ada.cpu_seconds = 90;
  ada.peak_memory_bytes = 2ull << 30;
  auto nobody = user_row("", 1, 30, 0);
  auto text = usage_text({ada, nobody}, "user", may_1, may_1 + 86400 * 2, {});
  auto ls = lines_of(text);
  REQUIRE(ls.size() == 5);
  CHECK(ls[0] == "usage 2024-05-01 .. 2024-05-03 (UTC days), by user");
  CHECK(ls[1].rfind("USER", 0) == 0);
  CHECK(ls[1].find("GPU TIME") != std::string::npos);
  CHECK(ls[2].rfind("ada", 0) == 0);
  CHECK(ls[2].find("2.0h") != std::string::npos);           // slot time
  CHECK(ls[2].find("4.0h") != std::string::npos);           // GPU time
  CHECK(ls[2].find("1.5m") != std::string::npos);           // CPU time
  CHECK(ls[2].find("2.0 GiB") != std::string::npos);
  CHECK(ls[2].find("H100 4.0h") != std::string::npos);
  CHECK(ls[3].rfind("(none)", 0) == 0);                     // a job without a user
  CHECK(ls[4].rfind("total", 0) == 0);
  CHECK(ls[4].find(" 3 ") != std::string::npos);

  auto by_project = usage_text({}, "project", may_1, may_1, {});
  CHECK(by_project.find("by project") != std::string::npos);
  CHECK(by_project.find("no jobs ended") != std::string::npos);
}

TEST_CASE("event_line shows a job transition and a node event", "[ctl][events]") {
  std::string job = R"({"id":"1714521600000-0","kind":"job","time":1714521600,)"
                    R"("job_id":"j-42","state":"failed","from":"running","user":"ada",)"
                    R"("project":"vision","node":"n1","slot":"n1/0","reason":"exit 3",)"
                    R"("return_code":3,"n":4})";
  auto line = event_line(job, {});
  CHECK(line.rfind(format_local_time(1714521600), 0) == 0);
  CHECK(line.find("job  j-42  running→failed  n1/0  exit 3  return code 3")
        != std::string::npos);

  std::string queued = R"({"kind":"job","time":1,"job_id":"j-1","state":"queued","from":"",)"
                       R"("slot":"","reason":"","return_code":null})";
  auto q = event_line(queued, {});
  CHECK(q.find("j-1  queued") != std::string::npos);
  CHECK(q.find("→") == std::string::npos);
  CHECK(q.find("return code") == std::string::npos);

  render_options colored;
  colored.color = true;
  CHECK(event_line(job, colored).find("\x1b[") != std::string::npos);

  std::string node = R"({"kind":"node","time":2,"node":"n2","event":"drained","detail":"by ops"})";
  CHECK(event_line(node, {}).find("node  n2  drained  by ops") != std::string::npos);

  CHECK(event_line("not json", {}) == "not json");
}
