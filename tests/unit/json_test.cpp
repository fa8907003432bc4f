#include <catch2/catch.hpp>

#include "adapters/json.hpp"

using namespace atlas;

TEST_CASE("a parsed object keeps its members and dumps back", "[json]") {
  std::string err;
  auto v = json::parse(R"({"a":1,"b":"x\"y","c":[true,null,2.5],"d":{}})", err);
  REQUIRE(v);
  CHECK(v->get_int("a") == 1);
  CHECK(v->get_string("b") == "x\"y");
  CHECK(v->find("c")->array.size() == 3);
  CHECK(v->dump() == R"({"a":1,"b":"x\"y","c":[true,null,2.5],"d":{}})");
}

TEST_CASE("malformed JSON is an error with a reason, not an exception", "[json]") {
  std::string err;
  CHECK_FALSE(json::parse("{\"a\":", err));
  CHECK(err.find("invalid JSON") == 0);
  CHECK_FALSE(json::parse("", err));
}

TEST_CASE("the writer escapes control bytes and broken UTF-8", "[json]") {
  json::writer w;
  w.begin_object().kv("log", std::string_view("a\nb\x01\xff")).kv("n", 3).end_object();
  CHECK(w.str() == "{\"log\":\"a\\nb\\u0001\xEF\xBF\xBD\",\"n\":3}");
  std::string err;
  CHECK(json::parse(w.str(), err));
}

TEST_CASE("the writer nests arrays and raw values with commas in place", "[json]") {
  json::writer w;
  w.begin_array().value(1).begin_object().key("k").raw("[1,2]").end_object().null().end_array();
  CHECK(w.str() == R"([1,{"k":[1,2]},null])");
}

TEST_CASE("the writer replaces UTF-8 that strict parsers refuse", "[json]") {
  // Overlong forms, surrogates (CESU-8) and code points above U+10FFFF are
  // not UTF-8: simdjson and Python's json refuse them, so an answer quoting
  // such job output must not carry them.
  const std::string bad[] = {"\xC0\x80", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                             "\xF5\x80\x80\x80", "\xF0\x80\x80\xAF"};
  for (const auto& b : bad) {
    auto q = json::quote("x" + b + "y");
    CHECK(q.find(b) == std::string::npos);
    std::string err;
    CHECK(json::parse(q, err));
  }
  CHECK(json::quote("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") == "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
}

TEST_CASE("negative zero dumps as a number that reads back as itself", "[json]") {
  // Found by fuzzing: "-0" reads back as the integer 0, so a stored spec
  // holding -0e11 changed on its second round trip.
  std::string err;
  auto v = json::parse(R"({"x":-0e11})", err);
  REQUIRE(v);
  auto once = v->dump();
  CHECK(once == R"({"x":-0.0})");
  auto again = json::parse(once, err);
  REQUIRE(again);
  CHECK(again->dump() == once);
}

TEST_CASE("numbers are written in their shortest form and read back exactly", "[json]") {
  json::writer w;
  w.begin_array().value(0.1).value(1732847000.123456).value(1e300).value(2.0).value(-1.5e-7).end_array();
  CHECK(w.str() == "[0.1,1732847000.123456,1e+300,2,-1.5e-07]");
  std::string err;
  auto v = json::parse(w.str(), err);
  REQUIRE(v);
  CHECK(v->array[1].number == 1732847000.123456);
  CHECK(v->array[2].number == 1e300);
  CHECK(v->array[4].number == -1.5e-7);
}

TEST_CASE("a whole number past int64 is written with an exponent and reads back", "[json]") {
  // Found by fuzz_job_submission: -16311616363316363e3 printed as a 20-digit
  // integer literal, which the parser refuses.
  std::string err;
  auto v = json::parse("[-16311616363316363e3,1e19,123456789012345678]", err);
  REQUIRE(v);
  auto text = v->dump();
  CHECK(text == "[-1.6311616363316363e+19,1e+19,123456789012345678]");
  auto again = json::parse(text, err);
  REQUIRE(again);
  CHECK(again->array[0].number == -16311616363316363e3);
  CHECK(again->dump() == text);
}

TEST_CASE("quoting copies plain runs and escapes what sits between them", "[json]") {
  CHECK(json::quote("plain text") == "\"plain text\"");
  CHECK(json::quote("a\"b\\c\td\x02") == "\"a\\\"b\\\\c\\td\\u0002\"");
  CHECK(json::quote("caf\xC3\xA9 ok") == "\"caf\xC3\xA9 ok\"");
  CHECK(json::quote("") == "\"\"");
}
