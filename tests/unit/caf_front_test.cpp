#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "adapters/basp_framer.hpp"
#include "adapters/caf_front.hpp"
#include "adapters/event_loop.hpp"

using namespace atlas;
using namespace std::chrono_literals;

namespace {

// A BASP header as CAF 0.17's binary serializer writes it: operation,
// two padding bytes, flags, then big-endian payload_len, operation_data,
// source and destination actor.
std::string header(uint8_t op, uint32_t len, uint64_t data = 0, uint64_t src = 0,
                   uint64_t dst = 0) {
  std::string h;
  h += static_cast<char>(op);
  h += '\0';
  h += '\0';
  h += '\0';
  for (int i = 3; i >= 0; --i)
    h += static_cast<char>((len >> (8 * i)) & 0xff);
  for (uint64_t v : {data, src, dst})
    for (int i = 7; i >= 0; --i)
      h += static_cast<char>((v >> (8 * i)) & 0xff);
  return h;
}

std::string message(uint8_t op, const std::string& payload, uint64_t dst = 7) {
  return header(op, static_cast<uint32_t>(payload.size()), 0, 1, dst) + payload;
}

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>(seed + static_cast<char>(i % 251));
  return s;
}

basp_framer::limits small_limits() {
  basp_framer::limits l;
  l.first_payload = 100;
  l.payload = 1000;
  return l;
}

} // namespace

TEST_CASE("the header layout is CAF 0.17's: 32 bytes, payload_len big-endian at 4",
          "[basp_framer]") {
  auto h = header(2, 0x01020304u, 0x1111, 0x2222, 0x3333);
  REQUIRE(h.size() == basp_framer::header_size);
  CHECK(basp_framer::payload_len(h.data()) == 0x01020304u);
  CHECK(basp_framer::payload_len(header(0, 0xffffffffu).data()) == 0xffffffffu);
}

TEST_CASE("whole messages pass unchanged wherever the stream is split", "[basp_framer]") {
  // A handshake, a header-only message (heartbeat), two with payloads.
  const std::string stream = message(1, pattern(60, 'a')) + message(6, "")
                             + message(2, pattern(999, 'k')) + message(2, pattern(1, 'z'));
  const std::vector<size_t> ends{92, 124, 124 + 1031, stream.size()};
  REQUIRE(ends.back() == stream.size());
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    basp_framer f{small_limits()};
    std::string out;
    REQUIRE(f.feed(std::string_view{stream}.substr(0, cut), out) == basp_framer::verdict::ok);
    // Only whole messages have been passed on, and all the whole ones.
    size_t whole = 0;
    for (size_t e : ends)
      if (e <= cut)
        whole = e;
    REQUIRE(out == stream.substr(0, whole));
    CHECK(f.held() == cut - whole);
    REQUIRE(f.feed(std::string_view{stream}.substr(cut), out) == basp_framer::verdict::ok);
    REQUIRE(out == stream);
    CHECK(f.held() == 0);
    CHECK(f.messages() == 4);
  }
}

TEST_CASE("a stream fed one byte at a time passes each message once it is whole",
          "[basp_framer]") {
  const std::string stream = message(1, pattern(10, 'a')) + message(6, "") + message(2, "xyz");
  basp_framer f{small_limits()};
  std::string out;
  std::vector<size_t> completed_at;
  for (size_t i = 0; i < stream.size(); ++i) {
    const size_t before = out.size();
    REQUIRE(f.feed(std::string_view{stream}.substr(i, 1), out) == basp_framer::verdict::ok);
    if (out.size() != before)
      completed_at.push_back(i + 1);
  }
  CHECK(out == stream);
  CHECK(completed_at == std::vector<size_t>{42, 74, 109});
}

TEST_CASE("several messages in one read all pass in one go", "[basp_framer]") {
  std::string stream = message(1, "hello");
  for (int i = 0; i < 50; ++i)
    stream += message(2, pattern(static_cast<size_t>(i) * 3, 'm'));
  basp_framer f{small_limits()};
  std::string out;
  REQUIRE(f.feed(stream, out) == basp_framer::verdict::ok);
  CHECK(out == stream);
  CHECK(f.messages() == 51);
  CHECK(f.held() == 0);
}

TEST_CASE("a header announcing more than the limit is refused before its payload",
          "[basp_framer]") {
  SECTION("the first message has the handshake's limit") {
    basp_framer f{small_limits()};
    std::string out;
    const auto big = header(1, 101);
    // Refused as soon as the header is whole, whichever way it arrives.
    for (size_t cut = 1; cut < big.size(); ++cut) {
      basp_framer g{small_limits()};
      std::string o;
      REQUIRE(g.feed(std::string_view{big}.substr(0, cut), o) == basp_framer::verdict::ok);
      REQUIRE(g.feed(std::string_view{big}.substr(cut), o) == basp_framer::verdict::too_large);
      CHECK(o.empty());
      CHECK(g.held() == 0);
    }
    CHECK(f.feed(big, out) == basp_framer::verdict::too_large);
    CHECK(f.refused_operation() == 1);
    CHECK(f.refused_payload() == 101);
    // Stays refused; nothing more is taken.
    CHECK(f.feed(message(6, ""), out) == basp_framer::verdict::too_large);
    CHECK(out.empty());
  }
  SECTION("at the limit passes; later messages have the larger limit") {
    basp_framer f{small_limits()};
    std::string out;
    REQUIRE(f.feed(message(1, pattern(100, 'a')), out) == basp_framer::verdict::ok);
    REQUIRE(f.feed(message(2, pattern(1000, 'b')), out) == basp_framer::verdict::ok);
    CHECK(f.messages() == 2);
    const std::string passed = out;
    CHECK(f.feed(message(2, "ok") + header(2, 1001), out) == basp_framer::verdict::too_large);
    CHECK(out == passed + message(2, "ok")); // what came before the refusal still passes
    CHECK(f.refused_payload() == 1001);
  }
  SECTION("4 GiB announced holds nothing beyond the header") {
    basp_framer f{basp_framer::limits{}};
    std::string out;
    CHECK(f.feed(header(1, 0xffffffffu), out) == basp_framer::verdict::too_large);
    CHECK(f.held() == 0);
  }
}

TEST_CASE("what is held follows the bytes received, not the length announced",
          "[basp_framer]") {
  basp_framer::limits l;
  l.first_payload = 16;
  l.payload = 256u << 20;
  basp_framer f{l};
  std::string out;
  REQUIRE(f.feed(message(1, "hi"), out) == basp_framer::verdict::ok);
  out.clear();
  REQUIRE(f.feed(header(2, 200u << 20) + "abc", out) == basp_framer::verdict::ok);
  CHECK(out.empty());
  CHECK(f.held() == 35);
}

// -- the relay, over real loopback sockets ------------------------------------

namespace {

int listen_loopback(uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

int accept_within(int lfd, int ms) {
  pollfd p{lfd, POLLIN, 0};
  if (::poll(&p, 1, ms) != 1)
    return -1;
  return ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
}

void send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    off += static_cast<size_t>(n);
  }
}

// Reads until `want` bytes came, EOF, or `ms` passed. `eof` tells which.
std::string read_for(int fd, size_t want, int ms, bool* eof = nullptr) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  if (eof)
    *eof = false;
  while (got.size() < want) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0)
      break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) != 1)
      break;
    char buf[65536];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (eof)
        *eof = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

template <class F>
bool eventually(F f, int ms = 3000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

} // namespace

TEST_CASE("the front relays whole messages to CAF and CAF's bytes back", "[caf_front]") {
  event_loop loop;
  loop.start();
  uint16_t target_port = 0;
  int target = listen_loopback(target_port);
  caf_front_options o;
  o.host = "127.0.0.1";
  o.target_port = target_port;
  o.limits = small_limits();
  caf_front front{loop, o};
  REQUIRE(front.listen());
  REQUIRE(front.port() != 0);

  int peer = connect_loopback(front.port());
  int caf = accept_within(target, 3000);
  REQUIRE(caf >= 0);
  CHECK(eventually([&] { return front.connections() == 1; }));

  // CAF speaks first (its server handshake): passed through as is.
  const std::string hello = pattern(5000, 's');
  send_all(caf, hello);
  CHECK(read_for(peer, hello.size(), 3000) == hello);

  // A message sent in pieces reaches CAF only once it is whole.
  const std::string m = message(1, pattern(80, 'h'));
  send_all(peer, m.substr(0, 50));
  CHECK(read_for(caf, 1, 300).empty());
  send_all(peer, m.substr(50) + message(6, "") + message(2, "x"));
  CHECK(read_for(caf, m.size() + 65, 3000) == m + message(6, "") + message(2, "x"));

  SECTION("a header announcing too much closes both sides") {
    send_all(peer, header(2, 0xffffffffu));
    bool eof = false;
    CHECK(read_for(caf, 1, 3000, &eof).empty());
    CHECK(eof);
    read_for(peer, 1, 3000, &eof);
    CHECK(eof);
    CHECK(eventually([&] { return front.connections() == 0; }));
  }
  SECTION("CAF closing closes the peer's connection") {
    ::close(std::exchange(caf, -1));
    bool eof = false;
    read_for(peer, 1, 3000, &eof);
    CHECK(eof);
    CHECK(eventually([&] { return front.connections() == 0; }));
  }
  SECTION("the peer closing closes CAF's connection, after what was whole") {
    send_all(peer, message(2, "last") + header(2, 10));
    ::close(std::exchange(peer, -1));
    bool eof = false;
    CHECK(read_for(caf, 1000, 3000, &eof) == message(2, "last"));
    CHECK(eof);
    CHECK(eventually([&] { return front.connections() == 0; }));
  }
  SECTION("a peer that does not read stops the front reading CAF, then resumes") {
    // CAF sends far more than the socket buffers and the high-water mark hold.
    const std::string lots = pattern(64u << 20, 'b');
    std::thread writer{[&] {
      size_t off = 0;
      while (off < lots.size()) {
        auto n = ::send(caf, lots.data() + off, lots.size() - off, MSG_NOSIGNAL);
        if (n <= 0)
          break;
        off += static_cast<size_t>(n);
      }
    }};
    std::this_thread::sleep_for(500ms);
    const std::string got = read_for(peer, lots.size(), 20000);
    writer.join();
    CHECK(got.size() == lots.size());
    CHECK(got == lots);
  }
  if (peer >= 0)
    ::close(peer);
  if (caf >= 0)
    ::close(caf);
  ::close(target);
  front.close();
  loop.stop();
}

TEST_CASE("the front's listen() on a port in use names the port", "[caf_front]") {
  event_loop loop;
  loop.start();
  uint16_t taken = 0;
  int fd = listen_loopback(taken);
  caf_front_options o;
  o.host = "127.0.0.1";
  o.port = taken;
  o.target_port = 1;
  caf_front front{loop, o};
  auto st = front.listen();
  REQUIRE_FALSE(st);
  CHECK(st.error().find("cannot listen on CAF port 127.0.0.1:" + std::to_string(taken))
        != std::string::npos);
  CHECK(st.error().find("address already in use") != std::string::npos);
  ::close(fd);
  front.close();
  loop.stop();
}
