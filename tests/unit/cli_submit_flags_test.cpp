#include <catch2/catch.hpp>

#include "runtime/cli/submit_flags.hpp"

using namespace atlas::cli;

TEST_CASE("--time reads seconds, units and clock times", "[cli_submit_flags]") {
  CHECK(parse_time_limit("120") == 120.0);
  CHECK(parse_time_limit("90s") == 90.0);
  CHECK(parse_time_limit("30m") == 1800.0);
  CHECK(parse_time_limit("2h") == 7200.0);
  CHECK(parse_time_limit("1.5h") == 5400.0);
  CHECK(parse_time_limit("05:30") == 330.0);
  CHECK(parse_time_limit("90:00") == 5400.0);
  CHECK(parse_time_limit("1:02:03") == 3723.0);
  CHECK(parse_time_limit(" 10M ") == 600.0);
}

TEST_CASE("--time refuses what is not a positive duration", "[cli_submit_flags]") {
  for (auto bad : {"", "0", "-5", "abc", "5x", "1:60", "1:2:3", "1:02:03:04", ":30", "1e3",
                   "inf", "nan", "2h30m", "1..5", "99999999999"})
    CHECK_FALSE(parse_time_limit(bad));
}

TEST_CASE("--after reads one or more dependencies", "[cli_submit_flags]") {
  CHECK(parse_after("a1") == std::vector<std::string>{"a1:ok"});
  CHECK(parse_after("a1:any, b-2:failed,c_3:ok")
        == std::vector<std::string>{"a1:any", "b-2:failed", "c_3:ok"});
  for (auto bad : {"", "a1:done", "a b", "a1,", ",a1", "a1::ok", "a/1"})
    CHECK_FALSE(parse_after(bad));
  std::string many;
  for (int i = 0; i < 65; ++i)
    many += (i ? ",j" : "j") + std::to_string(i);
  CHECK_FALSE(parse_after(many));
}

TEST_CASE("--cpus takes fractions above zero", "[cli_submit_flags]") {
  CHECK(parse_cpus("0.5") == 0.5);
  CHECK(parse_cpus("4") == 4.0);
  for (auto bad : {"0", "-1", "x", "", "1e2"})
    CHECK_FALSE(parse_cpus(bad));
}

TEST_CASE("--memory and --ram give the server a size it reads", "[cli_submit_flags]") {
  CHECK(parse_memory_flag("64M") == std::string("64m"));
  CHECK(parse_memory_flag("1.5g") == std::string("1.5g"));
  CHECK_FALSE(parse_memory_flag("0"));
  CHECK_FALSE(parse_memory_flag("lots"));
  CHECK(parse_ram_gb("1.5") == std::string("1.5g"));
  CHECK(parse_ram_gb("4") == std::string("4g"));
  for (auto bad : {"0", "-1", "1.5g", ""})
    CHECK_FALSE(parse_ram_gb(bad));
}
