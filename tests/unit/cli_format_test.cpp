#include <catch2/catch.hpp>

#include "runtime/cli/format.hpp"

#include <set>

using atlas::cli::format_duration;
using atlas::cli::new_job_id;

TEST_CASE("a duration under a minute is shown in seconds", "[cli_format]") {
  CHECK(format_duration(0) == "0s");
  CHECK(format_duration(12) == "12s");
  CHECK(format_duration(59) == "59s");
}

TEST_CASE("a duration under an hour is shown in minutes and padded seconds", "[cli_format]") {
  CHECK(format_duration(60) == "1m00s");
  CHECK(format_duration(245) == "4m05s");
  CHECK(format_duration(3599) == "59m59s");
}

TEST_CASE("a duration of an hour or more is shown in hours, minutes and seconds", "[cli_format]") {
  CHECK(format_duration(3600) == "1h00m00s");
  CHECK(format_duration(3723) == "1h02m03s");
  CHECK(format_duration(100 * 3600 + 5) == "100h00m05s");
}

TEST_CASE("a negative duration is shown as zero", "[cli_format]") {
  CHECK(format_duration(-5) == "0s");
}

TEST_CASE("a new job id is a lower-case version 4 UUID", "[cli_format]") {
  const std::string id = new_job_id();
  REQUIRE(id.size() == 36);
  for (size_t i = 0; i < id.size(); ++i) {
    INFO("position " << i << " of " << id);
    if (i == 8 || i == 13 || i == 18 || i == 23)
      CHECK(id[i] == '-');
    else
      CHECK(std::string{"0123456789abcdef"}.find(id[i]) != std::string::npos);
  }
  CHECK(id[14] == '4');
  CHECK(std::string{"89ab"}.find(id[19]) != std::string::npos);
}

TEST_CASE("new job ids do not repeat", "[cli_format]") {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i)
    ids.insert(new_job_id());
  CHECK(ids.size() == 1000);
}
