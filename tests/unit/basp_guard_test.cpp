// The guard between a cluster peer and CAF: what a peer may say, checked
// message by message against the identity of its connection.

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "adapters/basp_guard.hpp"
#include "adapters/peer_directory.hpp"

using namespace atlas;

namespace {

std::string be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i)
    s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// CAF 0.17's BASP header: operation, two padding bytes, flags, payload_len,
// operation_data, source actor, destination actor (big-endian).
std::string msg(uint8_t op, const std::string& payload, uint64_t data = 0, uint64_t src = 5,
                uint64_t dst = 7, uint8_t flags = 0) {
  std::string h{static_cast<char>(op), '\0', '\0', static_cast<char>(flags)};
  return h + be(payload.size(), 4) + be(data, 8) + be(src, 8) + be(dst, 8) + payload;
}

// Node ids as CAF serializes them: an 8-byte implementation tag, then the
// process id and host hash (here 24 bytes of the test's choosing).
const std::string tag = std::string("\x1c\x2e\x0d\x3a\0\0\0\0", 8);
std::string node(char c) {
  return tag + std::string(24, c);
}

struct fixture {
  peer_directory dir;
  fixture() { dir.add_local(node('L')); }
};

constexpr uint64_t response = 0x8000000000000000ull;

} // namespace

TEST_CASE("a peer's handshake binds its node id to its certificate", "[basp_guard]") {
  fixture f;
  basp_guard g{f.dir, {"w1", "worker", true}, true};
  std::string out;
  CHECK(g.check(msg(1, node('A')), out).empty());
  CHECK(g.node() == node('A'));
  auto who = f.dir.lookup(node('A'));
  REQUIRE(who);
  CHECK(who->name == "w1");
  CHECK(who->role == "worker");
  // Repeated (CAF selects the connection with it): same id only.
  CHECK(g.check(msg(1, node('A')), out).empty());
  CHECK_FALSE(g.check(msg(1, node('B')), out).empty());
}

TEST_CASE("a node id bound to one identity cannot be claimed by another", "[basp_guard]") {
  fixture f;
  std::string out;
  basp_guard first{f.dir, {"w1", "worker", true}, true};
  REQUIRE(first.check(msg(1, node('A')), out).empty());
  basp_guard second{f.dir, {"w2", "worker", true}, true};
  CHECK(second.check(msg(1, node('A')), out).find("belongs to another node") != std::string::npos);
  basp_guard mimic{f.dir, {"w2", "worker", true}, true};
  CHECK_FALSE(mimic.check(msg(1, node('L')), out).empty()); // this node's own id
  // The same identity may connect again (a second route to the same node).
  basp_guard again{f.dir, {"w1", "worker", true}, true};
  CHECK(again.check(msg(1, node('A')), out).empty());
}

TEST_CASE("the first message must be the handshake", "[basp_guard]") {
  fixture f;
  std::string out;
  basp_guard g{f.dir, {"w1", "worker", true}, true};
  CHECK(g.check(msg(2, std::string(1, '\0') + "x"), out).find("first message") != std::string::npos);
  basp_guard h{f.dir, {"w1", "worker", true}, true};
  CHECK_FALSE(h.check(msg(1, "short"), out).empty());
  CHECK_FALSE(h.check(msg(1, node('A') + "trailing"), out).empty());
}

TEST_CASE("routed messages, stages and anonymous messages are refused", "[basp_guard]") {
  fixture f;
  std::string out;
  basp_guard g{f.dir, {"w1", "worker", true}, true};
  REQUIRE(g.check(msg(1, node('A')), out).empty());
  out.clear();
  CHECK(g.check(msg(3, node('B') + node('L') + std::string(1, '\0')), out).find("routed")
        != std::string::npos);
  CHECK(g.check(msg(2, "\x01stage"), out).find("stages") != std::string::npos);
  CHECK(g.check(msg(2, std::string(1, '\0') + "x", 0, /*src*/ 0), out).find("anonymous")
        != std::string::npos);
  CHECK(g.check(msg(9, ""), out).find("not allowed") != std::string::npos);
  CHECK(out.empty());
}

TEST_CASE("ordinary messages and heartbeats pass unchanged", "[basp_guard]") {
  fixture f;
  std::string out;
  basp_guard g{f.dir, {"w1", "worker", true}, true};
  REQUIRE(g.check(msg(1, node('A')), out).empty());
  out.clear();
  auto many = msg(2, std::string(1, '\0') + "payload") + msg(6, "") + msg(2, std::string(1, '\0'));
  CHECK(g.check(many, out).empty());
  CHECK(out == many);
}

TEST_CASE("monitor and down messages name this connection's node and this node", "[basp_guard]") {
  fixture f;
  std::string out;
  basp_guard g{f.dir, {"w1", "worker", true}, true};
  REQUIRE(g.check(msg(1, node('A')), out).empty());
  CHECK(g.check(msg(4, node('A') + node('L')), out).empty());
  CHECK(g.check(msg(5, node('A') + node('L') + "reason"), out).empty());
  // Claiming another node's actor went down, or asking to be forwarded.
  CHECK_FALSE(g.check(msg(5, node('B') + node('L') + "reason"), out).empty());
  CHECK_FALSE(g.check(msg(4, node('A') + node('B')), out).empty());
}

TEST_CASE("a process of several nodes (atlas-sim-nodes) owns each of their ids",
          "[basp_guard]") {
  fixture f;
  f.dir.add_local(node('M'));
  f.dir.add_local(node('M')); // once only
  CHECK(f.dir.local() == node('L'));
  std::string out;
  basp_guard mimic{f.dir, {"w2", "worker", true}, true};
  CHECK_FALSE(mimic.check(msg(1, node('M')), out).empty());
  basp_guard g{f.dir, {"w1", "worker", true}, true};
  REQUIRE(g.check(msg(1, node('A')), out).empty());
  CHECK(g.check(msg(4, node('A') + node('M')), out).empty());
  CHECK_FALSE(g.check(msg(4, node('A') + node('B')), out).empty());
}

TEST_CASE("messages to CAF's named system actors are dropped", "[basp_guard]") {
  fixture f;
  std::string out;
  basp_guard g{f.dir, {"m", "master", true}, false};
  REQUIRE(g.check(msg(0, node('M') + "app-ids and door"), out).empty());
  out.clear();
  CHECK(g.check(msg(2, std::string(1, '\0') + "spawn", 0, 5, 0x5370, 0x01), out).empty());
  CHECK(out.empty());
}

TEST_CASE("a response passes only when this node asked this peer", "[basp_guard]") {
  fixture f;
  std::string out;
  basp_guard g{f.dir, {"w1", "worker", true}, true};
  REQUIRE(g.check(msg(1, node('A')), out).empty());
  // Our actor 42 sent request 9 over this connection.
  g.sent(msg(2, std::string(1, '\0') + "question", 9, 42, 77));
  out.clear();
  auto answer = msg(2, std::string(1, '\0') + "answer", response | 9, 77, 42);
  CHECK(g.check(answer, out).empty());
  CHECK(out == answer);
  // Answered once: a second answer, or one to a question never asked, goes nowhere.
  out.clear();
  CHECK(g.check(answer, out).empty());
  CHECK(g.check(msg(2, std::string(1, '\0') + "forged", response | 10, 77, 42), out).empty());
  CHECK(out.empty());
  // An error bounced by CAF comes without a sender: still an answer.
  g.sent(msg(2, std::string(1, '\0') + "question", 11, 42, 78));
  auto bounced = msg(2, std::string(1, '\0') + "error", response | 11, 0, 42);
  CHECK(g.check(bounced, out).empty());
  CHECK(out == bounced);
}
