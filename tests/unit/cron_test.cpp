#include <catch2/catch.hpp>

#include "library/cron.hpp"

using namespace atlas;

namespace {

// UTC epoch seconds of a few fixed moments (checked with Python's calendar.timegm).
constexpr int64_t jan1_2024 = 1704067200;   // Monday 2024-01-01 00:00:00
constexpr int64_t feb29_2024 = 1709164800;  // Thursday
constexpr int64_t feb29_2028 = 1835395200;
constexpr int64_t jan7_2024 = 1704585600;   // Sunday
constexpr int64_t new_year_2025 = 1735689600;
constexpr int64_t day = 86400;

cron::schedule must_parse(const std::string& text) {
  std::string error;
  auto s = cron::parse(text, error);
  INFO(text << ": " << error);
  REQUIRE(s);
  return *s;
}

int64_t next(const std::string& text, int64_t after) {
  auto n = cron::next_after(must_parse(text), after);
  REQUIRE(n);
  return *n;
}

std::string refused(const std::string& text) {
  std::string error;
  CHECK_FALSE(cron::parse(text, error));
  return error;
}

} // namespace

TEST_CASE("every minute fires at the next whole minute, strictly after", "[cron]") {
  CHECK(next("* * * * *", jan1_2024) == jan1_2024 + 60);
  CHECK(next("* * * * *", jan1_2024 + 1) == jan1_2024 + 60);
  CHECK(next("* * * * *", jan1_2024 + 59) == jan1_2024 + 60);
}

TEST_CASE("fixed times, lists, ranges and steps", "[cron]") {
  CHECK(next("30 9 * * *", jan1_2024) == jan1_2024 + 9 * 3600 + 30 * 60);
  CHECK(next("30 9 * * *", jan1_2024 + 9 * 3600 + 30 * 60) == jan1_2024 + day + 9 * 3600 + 1800);
  CHECK(next("*/15 * * * *", jan1_2024 + 1) == jan1_2024 + 15 * 60);
  CHECK(next("5,10 * * * *", jan1_2024 + 6 * 60) == jan1_2024 + 10 * 60);
  CHECK(next("0 8-10 * * *", jan1_2024 + 9 * 3600) == jan1_2024 + 10 * 3600);
  CHECK(next("0 8-10 * * *", jan1_2024 + 10 * 3600) == jan1_2024 + day + 8 * 3600);
  CHECK(next("10-50/20 * * * *", jan1_2024) == jan1_2024 + 10 * 60);
  CHECK(next("10-50/20 * * * *", jan1_2024 + 10 * 60) == jan1_2024 + 30 * 60);
  CHECK(next("10/20 * * * *", jan1_2024 + 30 * 60) == jan1_2024 + 50 * 60);
  CHECK(next("10/20 * * * *", jan1_2024 + 50 * 60) == jan1_2024 + 3600 + 10 * 60);
}

TEST_CASE("day and month names, Sunday as 0 or 7", "[cron]") {
  CHECK(next("0 0 * * SUN", jan1_2024) == jan7_2024);
  CHECK(next("0 0 * * 0", jan1_2024) == jan7_2024);
  CHECK(next("0 0 * * 7", jan1_2024) == jan7_2024);
  CHECK(next("0 0 * * mon-fri", jan7_2024) == jan7_2024 + day);
  CHECK(next("0 0 * * MON", jan1_2024) == jan1_2024 + 7 * day);
  CHECK(next("0 0 1 FEB *", jan1_2024) == jan1_2024 + 31 * day);
  CHECK(next("0 0 1 jan,mar *", jan1_2024) == jan1_2024 + (31 + 29) * day);
}

TEST_CASE("with both day fields restricted a day matching either fires", "[cron]") {
  // The 15th, or any Sunday: Sunday the 7th comes first.
  CHECK(next("0 0 15 * SUN", jan1_2024) == jan7_2024);
  CHECK(next("0 0 15 * SUN", jan7_2024 + 7 * day) == jan1_2024 + 14 * day);
  // `*/2` in a day field starts with `*`: it leaves the other field alone (Vixie cron).
  CHECK(next("0 0 */2 * MON", jan1_2024) == jan1_2024 + 7 * day);
}

TEST_CASE("month ends, leap days and the year's turn", "[cron]") {
  CHECK(next("0 0 29 2 *", jan1_2024) == feb29_2024);
  CHECK(next("0 0 29 2 *", feb29_2024) == feb29_2028);
  CHECK(next("0 0 31 * *", jan1_2024 + 31 * day) == jan1_2024 + (31 + 29 + 30) * day);
  CHECK(next("59 23 31 12 *", jan1_2024) == new_year_2025 - 60);
  CHECK(next("* * * * *", new_year_2025 - 1) == new_year_2025);
}

TEST_CASE("a date that never comes gives no next time", "[cron]") {
  CHECK_FALSE(cron::next_after(must_parse("0 0 30 2 *"), jan1_2024));
  CHECK_FALSE(cron::next_after(must_parse("0 0 31 4 *"), jan1_2024));
}

TEST_CASE("macros", "[cron]") {
  CHECK(next("@hourly", jan1_2024) == jan1_2024 + 3600);
  CHECK(next("@daily", jan1_2024) == jan1_2024 + day);
  CHECK(next("@midnight", jan1_2024 + 5) == jan1_2024 + day);
  CHECK(next("@weekly", jan1_2024) == jan7_2024);
  CHECK(next("@monthly", jan1_2024) == jan1_2024 + 31 * day);
  CHECK(next("@yearly", jan1_2024) == new_year_2025);
  CHECK(next("@annually", jan1_2024) == new_year_2025);
  CHECK(must_parse("@daily").text == "@daily");
  CHECK(refused("@fortnightly").find("macro") != std::string::npos);
}

TEST_CASE("a leading sixth field is the second", "[cron]") {
  CHECK(next("*/5 * * * * *", jan1_2024) == jan1_2024 + 5);
  CHECK(next("*/5 * * * * *", jan1_2024 + 7) == jan1_2024 + 10);
  CHECK(next("30 * * * * *", jan1_2024 + 30) == jan1_2024 + 90);
  auto s = must_parse("  */5   * * * *  ");
  CHECK(s.text == "*/5 * * * *");
  CHECK(s.fields[0] == "0");
}

TEST_CASE("bad expressions are refused naming the field", "[cron]") {
  CHECK(refused("* * * *").find("5 fields") != std::string::npos);
  CHECK(refused("* * * * * * *").find("got 7") != std::string::npos);
  CHECK(refused("60 * * * *").find("minute") != std::string::npos);
  CHECK(refused("* 24 * * *").find("hour") != std::string::npos);
  CHECK(refused("* * 0 * *").find("day-of-month") != std::string::npos);
  CHECK(refused("* * * 13 *").find("month") != std::string::npos);
  CHECK(refused("* * * * 8").find("day-of-week") != std::string::npos);
  CHECK(refused("* * * * FOO").find("day-of-week") != std::string::npos);
  CHECK(refused("*/0 * * * *").find("step") != std::string::npos);
  CHECK(refused("5-1 * * * *").find("low to high") != std::string::npos);
  CHECK(refused("1,,2 * * * *").find("empty") != std::string::npos);
  CHECK(refused("a * * * *").find("minute") != std::string::npos);
  CHECK(refused("* * * JAN-X *").find("month") != std::string::npos);
  CHECK(refused("").find("5 fields") != std::string::npos);
}

TEST_CASE("the latest due time is the last one passed, found once", "[cron]") {
  auto every_min = must_parse("* * * * *");
  CHECK(cron::latest_due(every_min, jan1_2024, jan1_2024 + 59) == std::nullopt);
  CHECK(cron::latest_due(every_min, jan1_2024, jan1_2024 + 60) == jan1_2024 + 60);
  CHECK(cron::latest_due(every_min, jan1_2024, jan1_2024 + 3599) == jan1_2024 + 3540);
  CHECK(cron::latest_due(every_min, jan1_2024 + 60, jan1_2024 + 60) == std::nullopt);
}

TEST_CASE("the original's dict of cron fields becomes an expression", "[cron]") {
  std::string error;
  using fields = std::map<std::string, std::string>;
  // Less significant than the least given: their minimum; more: `*`.
  CHECK(cron::from_fields(fields{{"hour", "3"}}, error) == "0 0 3 * * *");
  CHECK(cron::from_fields(fields{{"minute", "*/5"}}, error) == "0 */5 * * * *");
  CHECK(cron::from_fields(fields{{"second", "*/10"}}, error) == "*/10 * * * * *");
  CHECK(cron::from_fields(fields{{"day", "1"}}, error) == "0 0 0 1 * *");
  // APScheduler counts weekdays from Monday = 0.
  CHECK(cron::from_fields(fields{{"day_of_week", "0-4"}, {"hour", "9"}}, error)
        == "0 0 9 * * 1-5");
  CHECK(cron::from_fields(fields{{"day_of_week", "6,*/2"}}, error) == "0 0 0 * * 7,*/2");
  CHECK(cron::from_fields(fields{{"day_of_week", "sun"}}, error) == "0 0 0 * * sun");
  CHECK(cron::from_fields(fields{{"minute", "5"}, {"start_date", ""}}, error) == "0 5 * * * *");
  CHECK_FALSE(cron::from_fields(fields{{"minutes", "5"}}, error));
  CHECK(error.find("unknown schedule field 'minutes'") != std::string::npos);
  CHECK_FALSE(cron::from_fields(fields{{"year", "2030"}}, error));
  CHECK_FALSE(cron::from_fields(fields{{"end_date", "2030-01-01"}}, error));
  // Sunday as APScheduler's 6 is cron's 7: a Sunday.
  auto expr = cron::from_fields(fields{{"day_of_week", "6"}}, error);
  REQUIRE(expr);
  CHECK(next(*expr, jan1_2024) == jan7_2024);
}

TEST_CASE("a run's stamp is its UTC due time", "[cron]") {
  CHECK(cron::stamp(jan1_2024 + 9 * 3600 + 30 * 60 + 7) == "20240101_093007");
  CHECK(cron::stamp(new_year_2025 - 1) == "20241231_235959");
  CHECK(cron::stamp(feb29_2028) == "20280229_000000");
}
