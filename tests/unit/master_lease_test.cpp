// The master lease against a real redis-server: one holder at a time, the
// epoch grows with every new holder, a holder that lost it learns so on
// its next renewal, and a lease that lapsed with nobody taking it is taken
// back by its holder.

#include "runtime/master_lease.hpp"
#include "tests/unit/redis_server.hpp"

#include <catch2/catch.hpp>

#include <thread>

#include "messages/redis_keys.hpp"

using namespace atlas;
using namespace std::chrono_literals;

namespace {

redis_target local(const test::redis_server& s) {
  return redis_target{"127.0.0.1", s.port(), {}, {}};
}

} // namespace

TEST_CASE("one master holds the lease; a second one is told who", "[lease]") {
  test::redis_server server;
  REQUIRE(server.start());
  master_lease a(local(server), "a-5000", "http://a:5000/", 2000ms);
  master_lease b(local(server), "b-5000", "http://b:5000/", 2000ms);
  lease_holder h;
  std::string err;
  REQUIRE(a.acquire(h, err) == master_lease::outcome::ours);
  CHECK(h.epoch == 1);
  CHECK(h.node_id == "a-5000");
  CHECK(h.host_address == "http://a:5000/");
  REQUIRE(b.acquire(h, err) == master_lease::outcome::held);
  CHECK(h.node_id == "a-5000");
  CHECK(h.epoch == 1);
  CHECK(a.renew(h, err) == master_lease::outcome::ours);

  b.announce_standby();
  redis_client redis("127.0.0.1", server.port());
  lease_holder active;
  std::vector<standby_master> standbys;
  REQUIRE(read_masters(redis, 2000ms, active, standbys));
  CHECK(active.node_id == "a-5000");
  REQUIRE(standbys.size() == 1);
  CHECK(standbys[0].node_id == "b-5000");
  CHECK(standbys[0].host_address == "http://b:5000/");

  SECTION("a lapsed lease goes to the standby, and the old holder learns it lost") {
    REQUIRE(redis.command({"PEXPIRE", keys::master_lease, "1"}));
    std::this_thread::sleep_for(20ms);
    REQUIRE(b.acquire(h, err) == master_lease::outcome::ours);
    CHECK(h.epoch == 2);
    REQUIRE(a.renew(h, err) == master_lease::outcome::held);
    CHECK(h.node_id == "b-5000");
    CHECK(h.epoch == 2);
    REQUIRE(read_masters(redis, 2000ms, active, standbys));
    CHECK(active.node_id == "b-5000");
    CHECK(standbys.empty()); // it withdrew when it took the lease
  }
  SECTION("a lease that lapsed while nobody took it is renewed by its holder") {
    REQUIRE(redis.command({"DEL", keys::master_lease}));
    REQUIRE(a.renew(h, err) == master_lease::outcome::ours);
    CHECK(h.epoch == 1);
    auto ttl = redis.command({"PTTL", keys::master_lease});
    CHECK(ttl->integer > 1000);
  }
  SECTION("a Redis that restarted empty is told the lease and its epoch again") {
    REQUIRE(redis.command({"FLUSHALL"}));
    REQUIRE(a.renew(h, err) == master_lease::outcome::ours);
    CHECK(redis.command({"GET", keys::master_epoch})->str == "1");
    REQUIRE(b.acquire(h, err) == master_lease::outcome::held);
    CHECK(h.node_id == "a-5000");
  }
  SECTION("the same node, started again, takes its own lease at once with a new epoch") {
    master_lease again(local(server), "a-5000", "http://a:5000/", 2000ms);
    REQUIRE(again.acquire(h, err) == master_lease::outcome::ours);
    CHECK(h.epoch == 2);
    CHECK(a.renew(h, err) == master_lease::outcome::held);
  }
  SECTION("a released lease is free at once") {
    a.release();
    REQUIRE(b.acquire(h, err) == master_lease::outcome::ours);
    CHECK(h.epoch == 2);
  }
}

TEST_CASE("without Redis the lease is unreachable, not lost", "[lease]") {
  master_lease a(redis_target{"127.0.0.1", test::free_port(), {}, {}}, "a-5000", "http://a:5000/",
                 2000ms);
  lease_holder h;
  std::string err;
  CHECK(a.acquire(h, err) == master_lease::outcome::unreachable);
  CHECK(err.find("cannot reach Redis") != std::string::npos);
}

TEST_CASE("a lease no replica confirmed does not count", "[lease]") {
  test::redis_server server;
  REQUIRE(server.start());
  master_lease a(local(server), "a-5000", "http://a:5000/", 2000ms, 1, 50); // no replica here
  lease_holder h;
  std::string err;
  CHECK(a.acquire(h, err) == master_lease::outcome::unreachable);
  CHECK(err.find("replica") != std::string::npos);
  // Asked again once replicas are back, the same node gets a fresh epoch.
  master_lease again(local(server), "a-5000", "http://a:5000/", 2000ms);
  REQUIRE(again.acquire(h, err) == master_lease::outcome::ours);
  CHECK(h.epoch == 2);
}

TEST_CASE("a keeper holds the lease through work longer than its TTL", "[lease]") {
  test::redis_server server;
  REQUIRE(server.start());
  master_lease a(local(server), "a-5000", "http://a:5000/", 1000ms);
  master_lease b(local(server), "b-5000", "http://b:5000/", 1000ms);
  lease_holder h;
  std::string err;
  REQUIRE(a.acquire(h, err) == master_lease::outcome::ours);
  {
    lease_keeper keeper{a};
    std::this_thread::sleep_for(2500ms); // a long start-up, no tick meanwhile
    CHECK(b.acquire(h, err) == master_lease::outcome::held);
    CHECK(h.node_id == "a-5000");
  }
  CHECK(a.renew(h, err) == master_lease::outcome::ours);
  // Without the keeper, nobody renews: it lapses and the standby takes it.
  std::this_thread::sleep_for(1200ms);
  CHECK(b.acquire(h, err) == master_lease::outcome::ours);
}
