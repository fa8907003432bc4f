// The listing indexes' pure parts: cursors and pages taken from Redis's
// ZREVRANGEBYSCORE ... WITHSCORES replies.

#include <catch2/catch.hpp>

#include "library/job_index.hpp"
#include "messages/redis_keys.hpp"

using namespace atlas;
using namespace atlas::job_index;

namespace {

/// A reply of (member, score) pairs, as Redis sends them.
redis_reply rows(std::vector<std::pair<std::string, int64_t>> xs) {
  redis_reply r;
  r.type = redis_reply::kind::array;
  for (auto& [id, score] : xs) {
    redis_reply m, s;
    m.type = s.type = redis_reply::kind::string;
    m.str = id;
    s.str = std::to_string(score);
    r.elements.push_back(m);
    r.elements.push_back(s);
  }
  return r;
}

} // namespace

TEST_CASE("a cursor is the last row's score and id, and nothing else parses", "[job_index]") {
  auto c = parse_cursor("1733390000000123:job-7");
  REQUIRE(c);
  CHECK(c->score == 1733390000000123);
  CHECK(c->id == "job-7");
  CHECK(to_string(*c) == "1733390000000123:job-7");
  for (auto bad : {"", "12", ":x", "12:", "x1:a", "12:a:b", "12:a b", "-:a"})
    CHECK_FALSE(parse_cursor(bad));
}

TEST_CASE("a page holds `limit` rows and names the next one's start", "[job_index]") {
  auto p = take_page(rows({{"c", 30}, {"b", 20}, {"a", 10}}), std::nullopt, 2);
  CHECK(p.ids == std::vector<std::string>{"c", "b"});
  REQUIRE(p.next);
  CHECK(to_string(*p.next) == "20:b");
  auto last = take_page(rows({{"a", 10}}), p.next, 2);
  CHECK(last.ids == std::vector<std::string>{"a"});
  CHECK_FALSE(last.next);
}

TEST_CASE("rows sharing the cursor's score are neither lost nor repeated", "[job_index]") {
  // Equal scores come in descending id order; the cursor sits on "m".
  cursor at{50, "m"};
  auto p = take_page(rows({{"z", 50}, {"m", 50}, {"k", 50}, {"a", 50}, {"q", 40}}), at, 2);
  CHECK(p.ids == std::vector<std::string>{"k", "a"});
  REQUIRE(p.next);
  CHECK(to_string(*p.next) == "50:a");
}

TEST_CASE("index writes name the project's and the list's keys", "[job_index]") {
  job_record rec;
  rec.job_id = "j1";
  rec.project_name = "p";
  rec.seq = 77;
  auto add = added(rec);
  REQUIRE(add.size() == 4);
  CHECK(add[0] == cmd{"ZADD", keys::project_jobs("p"), "77", "j1"});
  CHECK(add[1] == cmd{"ZADD", keys::project_status("p", "queued"), "77", "j1"});
  // queued -> pending moves it between status indexes; running -> running does not.
  rec.state = job_state::pending;
  auto move = moved(rec, job_state::queued);
  REQUIRE(move.size() == 2);
  CHECK(move[0] == cmd{"ZREM", keys::project_status("p", "queued"), "j1"});
  CHECK(move[1] == cmd{"ZADD", keys::project_status("p", "pending"), "77", "j1"});
  CHECK(moved(rec, job_state::pending).empty());
  CHECK(moved(rec, std::nullopt).size() == 1);
  CHECK(restatus(rec).size() == 5);
  CHECK(indexed_status("failed"));
  CHECK_FALSE(indexed_status("cancelled"));
  rec.state = job_state::queued;
  CHECK(ended(rec).empty()); // queued: not finished
  rec.state = job_state::cancelled;
  rec.end_time = 2.5;
  auto end = ended(rec);
  REQUIRE(end.size() == 2);
  CHECK(end[1] == cmd{"ZADD", keys::ended_list("failed_jobs"), "2500000", "j1"});
  // A stale ended entry goes from the ended indexes only; a removal from all.
  for (auto& c : unended(rec))
    CHECK(c[1] != keys::project_jobs("p"));
  CHECK(unended(rec).size() == 3);
  CHECK(removed(rec).size() == 3 + 2 + 5 + 1);
  CHECK(list_of(job_state::completed) == "completed_jobs");
  CHECK(list_of(job_state::running).empty());
}
