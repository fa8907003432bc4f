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
