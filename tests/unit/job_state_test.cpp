#include <catch2/catch.hpp>

#include "messages/job_state.hpp"

using namespace atlas;
using s = job_state;

TEST_CASE("the normal lifecycle is allowed step by step", "[job_state]") {
  CHECK(can_transition(s::queued, s::pending));
  CHECK(can_transition(s::pending, s::running));
  CHECK(can_transition(s::running, s::completed));
  CHECK(can_transition(s::running, s::failed));
  CHECK(can_transition(s::running, s::cancelled));
}

TEST_CASE("illegal transitions are refused", "[job_state]") {
  CHECK_FALSE(can_transition(s::queued, s::running));
  CHECK_FALSE(can_transition(s::queued, s::completed));
  CHECK_FALSE(can_transition(s::completed, s::running));
  CHECK_FALSE(can_transition(s::failed, s::queued));
  CHECK_FALSE(can_transition(s::cancelled, s::pending));
  CHECK_FALSE(can_transition(s::running, s::queued));
}

TEST_CASE("a lost job can be requeued or failed, nothing else", "[job_state]") {
  CHECK(can_transition(s::running, s::lost));
  CHECK(can_transition(s::lost, s::queued));
  CHECK(can_transition(s::lost, s::failed));
  CHECK_FALSE(can_transition(s::lost, s::running));
}

TEST_CASE("terminal states are exactly completed, failed and cancelled", "[job_state]") {
  CHECK(is_terminal(s::completed));
  CHECK(is_terminal(s::failed));
  CHECK(is_terminal(s::cancelled));
  CHECK_FALSE(is_terminal(s::lost));
  CHECK_FALSE(is_terminal(s::running));
}

TEST_CASE("state names round trip and map onto the original API", "[job_state]") {
  for (auto x : {s::queued, s::pending, s::running, s::completed, s::failed,
                 s::cancelled, s::lost})
    CHECK(parse_job_state(to_string(x)) == x);
  CHECK_FALSE(parse_job_state("bogus"));
  CHECK(api_status(s::cancelled) == "failed");
  CHECK(listing_of(s::pending) == "running_jobs");
}
