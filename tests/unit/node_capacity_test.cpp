// What a node offers to jobs: its CPUs and memory as detected at start.

#include <catch2/catch.hpp>

#include "runtime/node_capacity.hpp"

using namespace atlas;

TEST_CASE("cgroup memory limits: bytes, or none for max and v1's huge number", "[node_capacity]") {
  CHECK(cgroup_memory_limit("1073741824\n") == 1ull << 30);
  CHECK_FALSE(cgroup_memory_limit("max\n"));
  CHECK_FALSE(cgroup_memory_limit("9223372036854771712\n"));
  CHECK_FALSE(cgroup_memory_limit(""));
}

TEST_CASE("this machine has CPUs and memory, and the environment's values win", "[node_capacity]") {
  CHECK(detect_cpus() >= 1);
  CHECK(detect_memory_bytes() > (64ull << 20));
  node_config cfg;
  cfg.node_cpus = 3;
  apply_node_capacity(cfg);
  CHECK(cfg.node_cpus == 3);
  CHECK(cfg.node_memory_bytes == detect_memory_bytes());
}
