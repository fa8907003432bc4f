#include <catch2/catch.hpp>

#include "library/worker_requests.hpp"

using namespace atlas;

TEST_CASE("POST /workers names the answering node unless the body names one") {
  std::string error;
  CHECK(worker_node_of("", "n1", error) == "n1");
  CHECK(worker_node_of(" \n", "n1", error) == "n1");
  CHECK(worker_node_of("{}", "n1", error) == "n1");
  CHECK(worker_node_of(R"({"node": null})", "n1", error) == "n1");
  CHECK(worker_node_of(R"({"node": "gpu-2"})", "n1", error) == "gpu-2");
  CHECK_FALSE(worker_node_of(R"({"node": 3})", "n1", error));
  CHECK(error.find("node") != std::string::npos);
  CHECK_FALSE(worker_node_of(R"({"node": "../x"})", "n1", error));
  CHECK_FALSE(worker_node_of("[1]", "n1", error));
  CHECK_FALSE(worker_node_of("{", "n1", error));
}

TEST_CASE("DELETE /workers/... names a slot key") {
  CHECK(worker_key_of({"workers", "n2", "3"}, "n1") == "n2/3");
  CHECK(worker_key_of({"workers", "3"}, "n1") == "n1/3");
  CHECK(worker_key_of({"workers", "n2%2F3"}, "n1") == "n2/3");
  CHECK(worker_key_of({"workers", "n2%2f3"}, "n1") == "n2/3");
  CHECK_FALSE(worker_key_of({"workers"}, "n1"));
  CHECK_FALSE(worker_key_of({"workers", "x"}, "n1"));
  CHECK_FALSE(worker_key_of({"workers", "n2", "x"}, "n1"));
  CHECK_FALSE(worker_key_of({"workers", "n2", "3", "4"}, "n1"));
  CHECK_FALSE(worker_key_of({"workers", "-1"}, "n1"));
}
