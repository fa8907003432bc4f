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
  for (auto bad : {"", "12", ":x", "12:", "x1:a", "12:a:b", "12:a b", "-:a", "12:a:0", "~x", "inf:a"})
    CHECK_FALSE(parse_cursor(bad));
}

TEST_CASE("a metric's cursor keeps its exact score and how many rows tied at it", "[job_index]") {
  auto c = parse_cursor("0.1:job-3:40");
  REQUIRE(c);
  CHECK(c->score == 0.1);
  CHECK(c->tied == 40);
  CHECK(to_string(*c) == "0.1:job-3:40");
  auto neg = parse_cursor("-2.5e-07:j");
  REQUIRE(neg);
  CHECK(to_string(*neg) == "-2.5e-07:j");
  auto tail = parse_cursor("~");
  REQUIRE(tail);
  CHECK(tail->tail);
  CHECK(tail->id.empty());
  CHECK(to_string(*tail) == "~");
  auto in_tail = parse_cursor("~17:j");
  REQUIRE(in_tail);
  CHECK((in_tail->tail && in_tail->score == 17 && in_tail->id == "j"));
  // Past tie_room tied rows, Redis skips the ones surely given already.
  cursor deep{0.5, "j", 100, false};
  auto reads = page_reads("k", deep, 10, true);
  CHECK(reads[0] == cmd{"ZRANGEBYSCORE", "k", "0.5", "+inf", "WITHSCORES", "LIMIT", "68", "75"});
}

TEST_CASE("an ascending page drops the rows up to the cursor and counts ties", "[job_index]") {
  cursor at{50, "m", 2, false};
  auto p = take_page(rows({{"a", 50}, {"m", 50}, {"q", 50}, {"z", 50}, {"b", 60}}), at, 2, true);
  CHECK(p.ids == std::vector<std::string>{"q", "z"});
  REQUIRE(p.next);
  CHECK(to_string(*p.next) == "50:z:4");
}

TEST_CASE("a column's value goes in its index when it is a number, out when not", "[job_index]") {
  CHECK(column_value("p", "j", "metric:loss", 0.25)
        == cmd{"ZADD", keys::project_column("p", "metric:loss"), "0.25", "j"});
  CHECK(column_value("p", "j", "metric:loss", std::nullopt)
        == cmd{"ZREM", keys::project_column("p", "metric:loss"), "j"});
  CHECK(keys::project_column("a:b", "metric:x") != keys::project_column("a", "b:metric:x"));
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
  CHECK(to_string(*p.next) == "50:a:3"); // the third row at 50 since the cursor's count began
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
