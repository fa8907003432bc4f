#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/http_server.hpp"
#include "adapters/http_wire.hpp"
#include "adapters/multipart.hpp"

using namespace atlas;
using namespace std::chrono_literals;

namespace {

std::string lower(std::string s) {
  for (auto& ch : s)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// A tiny blocking client on loopback. Every receive is bounded by SO_RCVTIMEO,
// so a server that never answers fails the test instead of hanging it.
class test_client {
public:
  struct response {
    int status = 0; // 0: nothing usable came back
    std::map<std::string, std::string> headers; // names in lower case
    std::string body;
  };

  explicit test_client(uint16_t port, int timeout_ms = 3000) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~test_client() { close(); }
  test_client(const test_client&) = delete;
  test_client& operator=(const test_client&) = delete;

  bool connected() const { return connected_; }

  // Closes with a RST (SO_LINGER 0): a client that is gone for sure.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }

  // shutdown(SHUT_WR): no more requests, still reading the answers.
  void shut_write() { ::shutdown(fd_, SHUT_WR); }

  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Sends `piece` bytes at a time with a pause, so the server reads them apart.
  bool send_slowly(std::string_view data, size_t piece) {
    for (size_t i = 0; i < data.size(); i += piece) {
      if (!send(data.substr(i, piece)))
        return false;
      std::this_thread::sleep_for(100us);
    }
    return true;
  }

  // The next response; `head` when it answers a HEAD (headers only).
  response read_response(bool head = false) {
    response r;
    std::string line;
    if (!read_line(line) || line.size() < 12 || line.compare(0, 5, "HTTP/") != 0)
      return {};
    const int status = std::atoi(line.substr(9, 3).c_str());
    while (read_line(line) && !line.empty()) {
      const auto colon = line.find(':');
      if (colon == std::string::npos)
        return {};
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[lower(line.substr(0, colon))] = value;
    }
    if (!line.empty())
      return {};
    if (head) {
      // Content-Length describes what a GET would get; nothing follows.
    } else if (status >= 200 && r.headers["transfer-encoding"] == "chunked") {
      for (;;) {
        if (!read_line(line))
          return {};
        const size_t size = std::stoul(line, nullptr, 16);
        if (size == 0) {
          if (!read_line(line)) // no trailers: the empty line that ends the body
            return {};
          break;
        }
        std::string piece;
        if (!read_exact(size, piece) || !read_line(line))
          return {};
        r.body += piece;
      }
    } else if (r.headers.count("content-length") != 0) {
      if (!read_exact(std::stoul(r.headers["content-length"]), r.body))
        return {};
    }
    r.status = status;
    return r;
  }

  // True when the server closed the connection before the timeout.
  bool closed_by_server() {
    if (!buf_.empty())
      return false;
    char ch;
    const ssize_t n = ::recv(fd_, &ch, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

private:
  bool fill() {
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0)
      return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  bool read_line(std::string& line) {
    size_t eol;
    while ((eol = buf_.find("\r\n")) == std::string::npos)
      if (!fill())
        return false;
    line = buf_.substr(0, eol);
    buf_.erase(0, eol + 2);
    return true;
  }
  bool read_exact(size_t n, std::string& out) {
    while (buf_.size() < n)
      if (!fill())
        return false;
    out = buf_.substr(0, n);
    buf_.erase(0, n);
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

// A directory of its own per test, removed afterwards.
struct temp_dir {
  temp_dir() {
    char tmpl[] = "/tmp/atlas-http-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  size_t files() const {
    std::error_code ec;
    auto it = std::filesystem::directory_iterator(path, ec);
    return ec ? 0 : static_cast<size_t>(std::distance(it, std::filesystem::directory_iterator{}));
  }
  std::string path;
};

// A server on an ephemeral port whose handler echoes what it was given in
// X- headers, answers /echo with the request body and parks /hold requests
// for the test to answer.
struct fixture {
  explicit fixture(http_server_options opts = {}) {
    loop.start();
    server = std::make_unique<http_server>(loop, std::move(opts),
                                           [this](http_request&& r, uint64_t t) {
                                             handle(std::move(r), t);
                                           });
    const status st = server->listen();
    INFO(st.error());
    REQUIRE(st.ok());
    port = server->port();
    REQUIRE(port != 0);
  }
  ~fixture() {
    server->close();
    server.reset();
    loop.stop();
  }

  void handle(http_request&& req, uint64_t token) {
    if (req.path == "/hold") {
      std::lock_guard<std::mutex> guard{mtx};
      held.emplace_back(std::move(req), token);
      cv.notify_all();
      return;
    }
    if (req.path == "/throw")
      throw std::runtime_error("handler bug");
    http_response r;
    r.content_type = "text/plain";
    auto foo = req.headers.find("x-foo");
    r.headers = {{"X-Method", req.method},
                 {"X-Path", req.path},
                 {"X-Query", req.query},
                 {"X-Peer", req.peer},
                 {"X-Foo", foo == req.headers.end() ? "" : foo->second},
                 {"X-Upload-Path", req.upload_path},
                 {"X-Upload-Filename", req.upload_filename},
                 {"X-Upload-Field", req.upload_field}};
    r.body = req.path == "/echo" ? req.body : "hello";
    server->respond(token, std::move(r));
  }

  // The token of the n-th parked request, waiting at most two seconds.
  std::optional<uint64_t> wait_held(size_t n = 1) {
    std::unique_lock<std::mutex> lock{mtx};
    if (!cv.wait_for(lock, 2s, [&] { return held.size() >= n; }))
      return std::nullopt;
    return held[n - 1].second;
  }

  event_loop loop;
  std::unique_ptr<http_server> server;
  uint16_t port = 0;
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::pair<http_request, uint64_t>> held;
};

http_response text(std::string body) {
  http_response r;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 200; ++i) {
    if (pred())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

std::string binary_payload(const std::string& boundary) {
  std::string data;
  for (int round = 0; round < 3; ++round)
    for (int b = 0; b < 256; ++b)
      data += static_cast<char>(b);
  // Look-alikes of the delimiter that are not one.
  data += "\r\n--\r\n-\r\n--" + boundary.substr(0, boundary.size() - 1) + "\r\r\n";
  data += "x--" + boundary + "\n\r\n";
  for (int b = 255; b >= 0; --b)
    data += static_cast<char>(b);
  return data + "\r";
}

std::string multipart_body(const std::string& boundary, const std::string& payload) {
  return "preamble to ignore\r\n--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nsmall field\r\n--" +
         boundary +
         "\r\nContent-Disposition: form-data; name=\"job_bundle\"; filename=\"job1.tgz\"\r\n"
         "Content-Type: application/octet-stream\r\n\r\n" +
         payload + "\r\n--" + boundary + "--\r\nepilogue";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

// -- multipart parser alone ----------------------------------------------------

namespace {

struct collected {
  std::vector<multipart_part> parts;
  std::vector<std::string> data;
  int ended = 0;
  multipart_parser::callbacks callbacks() {
    return {[this](const multipart_part& p) {
              parts.push_back(p);
              data.emplace_back();
              return true;
            },
            [this](std::string_view d) {
              data.back().append(d);
              return true;
            },
            [this] {
              ++ended;
              return true;
            }};
  }
};

} // namespace

TEST_CASE("the multipart parser finds every part when fed one byte at a time", "[multipart]") {
  const std::string boundary = "----atlasB0undary";
  const std::string payload = binary_payload(boundary);
  const std::string body = multipart_body(boundary, payload);
  collected got;
  multipart_parser parser(boundary, got.callbacks());
  for (char ch : body)
    REQUIRE(parser.feed(std::string_view(&ch, 1)).ok());
  CHECK(parser.done());
  REQUIRE(got.parts.size() == 2);
  CHECK(got.ended == 2);
  CHECK(got.parts[0].name == "note");
  CHECK(got.parts[0].filename.empty());
  CHECK(got.data[0] == "small field");
  CHECK(got.parts[1].name == "job_bundle");
  CHECK(got.parts[1].filename == "job1.tgz");
  CHECK(got.parts[1].content_type == "application/octet-stream");
  CHECK(got.data[1] == payload);
}

TEST_CASE("the multipart parser gives the same parts wherever the body is split", "[multipart]") {
  const std::string boundary = "xyz";
  const std::string body = "--xyz\r\nContent-Disposition: form-data; name=a; filename=\"q\\\"x.bin\"\r\n"
                           "\r\n\r\n--xy\r\n--xz\r\n\r\n-\r\n--xyz--";
  for (size_t split = 0; split <= body.size(); ++split) {
    collected got;
    multipart_parser parser(boundary, got.callbacks());
    REQUIRE(parser.feed(std::string_view(body).substr(0, split)).ok());
    REQUIRE(parser.feed(std::string_view(body).substr(split)).ok());
    INFO("split at " << split);
    CHECK(parser.done());
    REQUIRE(got.parts.size() == 1);
    CHECK(got.parts[0].name == "a");
    CHECK(got.parts[0].filename == "q\"x.bin");
    CHECK(got.data[0] == "\r\n--xy\r\n--xz\r\n\r\n-");
  }
}

TEST_CASE("a multipart body cut short is not done and a broken one fails", "[multipart]") {
  collected got;
  multipart_parser cut("b", got.callbacks());
  REQUIRE(cut.feed("--b\r\nContent-Disposition: form-data; name=f\r\n\r\npartial").ok());
  CHECK_FALSE(cut.done());

  multipart_parser broken("b", got.callbacks());
  const status st = broken.feed("--bX\r\n");
  CHECK_FALSE(st.ok());
  CHECK_FALSE(broken.feed("more").ok()); // stays failed
}

TEST_CASE("multipart_boundary reads quoted and bare boundaries", "[multipart]") {
  CHECK(multipart_boundary("multipart/form-data; boundary=abc") == "abc");
  CHECK(multipart_boundary("Multipart/Form-Data;boundary=\"a b;c\"; charset=utf-8") == "a b;c");
  CHECK_FALSE(multipart_boundary("application/json").has_value());
  CHECK_FALSE(multipart_boundary("multipart/form-data").has_value());
  CHECK_FALSE(multipart_boundary("multipart/form-data; boundary=").has_value());
}

TEST_CASE("an upload spool keeps only the first file part and deletes it unless released",
          "[multipart]") {
  temp_dir dir;
  const std::string body =
    "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"one\"\r\n\r\nfirst\r\n"
    "--b\r\nContent-Disposition: form-data; name=\"g\"; filename=\"two\"\r\n\r\nsecond\r\n--b--";
  std::string path;
  {
    upload_spool spool(dir.path + "/nested", "b");
    REQUIRE(spool.feed(body).ok());
    CHECK(spool.complete());
    CHECK(spool.filename() == "one");
    CHECK(spool.field() == "f");
    path = spool.path();
    CHECK(read_file(path) == "first");
  }
  CHECK_FALSE(std::filesystem::exists(path));
  {
    upload_spool spool(dir.path, "b");
    REQUIRE(spool.feed(body).ok());
    spool.release();
    path = spool.path();
  }
  CHECK(read_file(path) == "first");
}

// -- server over real sockets --------------------------------------------------

TEST_CASE("a GET is answered with its status, headers and body", "[http_server]") {
  fixture f;
  test_client c(f.port);
  REQUIRE(c.connected());
  REQUIRE(c.send("GET /a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: t\r\nX-Foo: one\r\nx-foo: two\r\n\r\n"));
  auto r = c.read_response();
  CHECK(r.status == 200);
  CHECK(r.body == "hello");
  CHECK(r.headers["content-length"] == "5");
  CHECK(r.headers["content-type"] == "text/plain");
  CHECK(r.headers["connection"] == "keep-alive");
  CHECK(r.headers["x-method"] == "GET");
  CHECK(r.headers["x-path"] == "/a b/c");
  CHECK(r.headers["x-query"] == "x=1&y=%20");
  CHECK(r.headers["x-foo"] == "one, two");
  CHECK(r.headers["x-peer"].rfind("127.0.0.1:", 0) == 0);
}

TEST_CASE("two requests on one keep-alive connection are both answered", "[http_server]") {
  fixture f;
  test_client c(f.port);
  REQUIRE(c.send("GET /first HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(c.read_response().headers["x-path"] == "/first");
  REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  auto r = c.read_response();
  CHECK(r.status == 200);
  CHECK(r.body == "abc");
}

TEST_CASE("pipelined requests are answered in order, one at a time", "[http_server]") {
  fixture f;
  test_client c(f.port);
  REQUIRE(c.send("GET /hold HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
                 "GET /third HTTP/1.1\r\n\r\n"));
  auto token = f.wait_held();
  REQUIRE(token);
  std::this_thread::sleep_for(50ms);
  {
    std::lock_guard<std::mutex> guard{f.mtx};
    CHECK(f.held.size() == 1); // the next request waits for this answer
  }
  f.server->respond(*token, text("held"));
  CHECK(c.read_response().body == "held");
  CHECK(c.read_response().body == "hi");
  CHECK(c.read_response().headers["x-path"] == "/third");
}

TEST_CASE("a malformed request gets 400 and the server keeps serving", "[http_server]") {
  fixture f;
  for (std::string bad : {"BL@H / HTTP/1.1\r\n\r\n", "GET /a%00b HTTP/1.1\r\n\r\n",
                          "GET /a%zz HTTP/1.1\r\n\r\n", "GET nopath HTTP/1.1\r\n\r\n"}) {
    INFO(bad);
    test_client c(f.port);
    REQUIRE(c.send(bad));
    auto r = c.read_response();
    CHECK(r.status == 400);
    CHECK(r.headers["content-type"] == "application/json");
    CHECK(r.headers["connection"] == "close");
    CHECK(r.body.rfind("{\"error\":\"", 0) == 0);
    CHECK(c.closed_by_server());
  }
  test_client fresh(f.port);
  REQUIRE(fresh.send("GET /ok HTTP/1.1\r\n\r\n"));
  CHECK(fresh.read_response().status == 200);
}

TEST_CASE("headers over the limit get 431", "[http_server]") {
  http_server_options opts;
  opts.max_header_bytes = 1024;
  fixture f(opts);
  test_client c(f.port);
  REQUIRE(c.send("GET / HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n"));
  auto r = c.read_response();
  CHECK(r.status == 431);
  CHECK(r.body.find("\"error\"") != std::string::npos);
  CHECK(c.closed_by_server());
}

TEST_CASE("a body over the limit gets 413, declared or chunked", "[http_server]") {
  http_server_options opts;
  opts.max_body_bytes = 1024;
  fixture f(opts);
  {
    test_client c(f.port);
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nContent-Length: 2048\r\n\r\n"));
    auto r = c.read_response(); // at once: the body was never sent
    CHECK(r.status == 413);
    CHECK(r.body.find("1024") != std::string::npos);
    CHECK(c.closed_by_server());
  }
  {
    test_client c(f.port);
    std::string body = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i)
      body += "258\r\n" + std::string(600, 'x') + "\r\n";
    REQUIRE(c.send(body + "0\r\n\r\n"));
    CHECK(c.read_response().status == 413);
  }
}

TEST_CASE("Expect: 100-continue is answered before the body is sent", "[http_server]") {
  http_server_options opts;
  opts.max_body_bytes = 1024;
  fixture f(opts);
  test_client c(f.port);
  REQUIRE(c.send("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  CHECK(c.read_response().status == 100);
  REQUIRE(c.send("hello"));
  auto r = c.read_response();
  CHECK(r.status == 200);
  CHECK(r.body == "hello");

  test_client big(f.port);
  REQUIRE(big.send("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n"));
  CHECK(big.read_response().status == 413); // no 100 first
}

TEST_CASE("a chunked request body is decoded", "[http_server]") {
  fixture f;
  test_client c(f.port);
  REQUIRE(c.send("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto r = c.read_response();
  CHECK(r.status == 200);
  CHECK(r.body == "hello world");
}

TEST_CASE("a multipart upload arrives byte-exact on disk, even sent in tiny pieces",
          "[http_server]") {
  temp_dir dir;
  http_server_options opts;
  opts.upload_dir = dir.path + "/spool";
  fixture f(opts);
  const std::string boundary = "------------------------d74496d66958873e";
  const std::string payload = binary_payload(boundary);
  const std::string body = multipart_body(boundary, payload);
  test_client c(f.port);
  REQUIRE(c.send_slowly("POST /job_bundle HTTP/1.1\r\nContent-Type: multipart/form-data; "
                        "boundary=\"" + boundary + "\"\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body,
                        3));
  auto r = c.read_response();
  REQUIRE(r.status == 200);
  CHECK(r.headers["x-upload-filename"] == "job1.tgz");
  CHECK(r.headers["x-upload-field"] == "job_bundle");
  const std::string path = r.headers["x-upload-path"];
  CHECK(path.rfind(opts.upload_dir + "/", 0) == 0);
  CHECK(read_file(path) == payload);
}

TEST_CASE("an upload over its limit gets 413 and leaves no file", "[http_server]") {
  temp_dir dir;
  http_server_options opts;
  opts.upload_dir = dir.path;
  opts.max_upload_bytes = 4096;
  fixture f(opts);
  const std::string payload(16 << 10, 'z');
  const std::string body = multipart_body("b", payload);
  const std::string head = "POST /job_bundle HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\n";
  {
    // Chunked, so the limit is only found once the file is being written.
    test_client c(f.port);
    std::string req = head + "Transfer-Encoding: chunked\r\n\r\n";
    for (size_t i = 0; i < body.size(); i += 1000) {
      const std::string piece = body.substr(i, 1000);
      std::ostringstream size;
      size << std::hex << piece.size();
      req += size.str() + "\r\n" + piece + "\r\n";
    }
    REQUIRE(c.send(req + "0\r\n\r\n"));
    CHECK(c.read_response().status == 413);
    CHECK(dir.files() == 0);
  }
  {
    test_client c(f.port);
    REQUIRE(c.send(head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
    CHECK(c.read_response().status == 413);
  }
  {
    test_client c(f.port);
    REQUIRE(c.send("POST /job_bundle HTTP/1.1\r\nContent-Type: application/json\r\n"
                   "Content-Length: 2\r\n\r\n{}"));
    auto r = c.read_response();
    CHECK(r.status == 400);
    CHECK(r.body.find("expected multipart/form-data") != std::string::npos);
  }
  CHECK(dir.files() == 0);
}

TEST_CASE("an upload whose client goes away midway leaves no file", "[http_server]") {
  temp_dir dir;
  http_server_options opts;
  opts.upload_dir = dir.path;
  fixture f(opts);
  const std::string body = multipart_body("b", std::string(100000, 'q'));
  test_client c(f.port);
  REQUIRE(c.send("POST /job_bundle HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                 body.substr(0, body.size() / 2)));
  CHECK(eventually([&] { return dir.files() == 1; }));
  c.close();
  CHECK(eventually([&] { return dir.files() == 0; }));
}

TEST_CASE("a streamed response arrives as chunks and the connection goes on", "[http_server]") {
  fixture f;
  test_client c(f.port);
  REQUIRE(c.send("GET /hold HTTP/1.1\r\n\r\n"));
  auto token = f.wait_held();
  REQUIRE(token);
  f.server->begin_stream(*token, 200, "text/plain");
  f.server->send_chunk(*token, "hello ");
  f.server->send_chunk(*token, ""); // skipped, not the end
  f.server->send_chunk(*token, "world");
  CHECK(f.server->is_open(*token));
  f.server->end_stream(*token);
  CHECK_FALSE(f.server->is_open(*token));
  auto r = c.read_response();
  CHECK(r.status == 200);
  CHECK(r.headers["transfer-encoding"] == "chunked");
  CHECK(r.headers.count("content-length") == 0);
  CHECK(r.body == "hello world");
  REQUIRE(c.send("GET /after HTTP/1.1\r\n\r\n"));
  CHECK(c.read_response().headers["x-path"] == "/after");
}

TEST_CASE("respond() from another thread reaches the client", "[http_server]") {
  fixture f;
  test_client c(f.port);
  REQUIRE(c.send("GET /hold HTTP/1.1\r\n\r\n"));
  auto token = f.wait_held();
  REQUIRE(token);
  CHECK(f.server->is_open(*token));
  std::thread other([&] {
    http_response r = text("from elsewhere");
    r.status = 201;
    r.headers["X-Extra"] = "yes";
    f.server->respond(*token, std::move(r));
  });
  other.join();
  CHECK_FALSE(f.server->is_open(*token));
  auto r = c.read_response();
  CHECK(r.status == 201);
  CHECK(r.body == "from elsewhere");
  CHECK(r.headers["x-extra"] == "yes");
}

TEST_CASE("an idle connection is closed after the idle timeout, a held one is not",
          "[http_server]") {
  http_server_options opts;
  opts.idle_timeout_ms = 200;
  fixture f(opts);
  test_client idle(f.port);
  const auto start = std::chrono::steady_clock::now();
  CHECK(idle.closed_by_server());
  CHECK(std::chrono::steady_clock::now() - start >= 150ms);

  test_client held(f.port);
  REQUIRE(held.send("GET /hold HTTP/1.1\r\n\r\n"));
  auto token = f.wait_held();
  REQUIRE(token);
  std::this_thread::sleep_for(500ms); // well past the idle timeout
  f.server->respond(*token, text("late"));
  CHECK(held.read_response().body == "late");

  test_client slow(f.port);
  REQUIRE(slow.send("GET / HTTP/1.1\r\nHost: t")); // never finished
  CHECK(slow.read_response().status == 408);
}

TEST_CASE("HTTP/1.0 and Connection: close end the connection after the answer",
          "[http_server]") {
  fixture f;
  for (std::string req : {"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"}) {
    test_client c(f.port);
    REQUIRE(c.send(req));
    auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.headers["connection"] == "close");
    CHECK(c.closed_by_server());
  }
  test_client c(f.port);
  REQUIRE(c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  CHECK(c.read_response().headers["connection"] == "keep-alive");
}

TEST_CASE("is_open turns false when the client goes away", "[http_server]") {
  fixture f;
  test_client c(f.port);
  REQUIRE(c.send("GET /hold HTTP/1.1\r\n\r\n"));
  auto token = f.wait_held();
  REQUIRE(token);
  CHECK(f.server->is_open(*token));
  c.reset(); // a FIN alone may be a half-close that still waits (see below)
  CHECK(eventually([&] { return !f.server->is_open(*token); }));
  f.server->respond(*token, text("nobody listens")); // ignored
  f.server->send_chunk(*token, "nor here");
}

TEST_CASE("a client that shuts its write side after a request still gets the answer",
          "[http_server]") {
  fixture f;
  test_client c(f.port);
  SECTION("one request, answered later from another thread") {
    REQUIRE(c.send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto token = f.wait_held();
    REQUIRE(token);
    c.shut_write();
    std::this_thread::sleep_for(100ms); // the server has seen the FIN before the answer
    CHECK(f.server->is_open(*token));
    std::thread answerer{[&] { f.server->respond(*token, text("after the FIN")); }};
    answerer.join();
    auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.body == "after the FIN");
    CHECK(c.closed_by_server());
  }
  SECTION("FIN right behind the request, HTTP/1.0") {
    REQUIRE(c.send("GET /hold HTTP/1.0\r\n\r\n"));
    c.shut_write();
    auto token = f.wait_held();
    REQUIRE(token);
    std::this_thread::sleep_for(100ms);
    f.server->respond(*token, text("late"));
    auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.body == "late");
    CHECK(c.closed_by_server());
  }
  SECTION("two pipelined requests are both answered, in order, then the connection closes") {
    REQUIRE(c.send("GET /hold HTTP/1.1\r\n\r\nGET /hold HTTP/1.1\r\n\r\n"));
    c.shut_write();
    auto first = f.wait_held(1);
    REQUIRE(first);
    std::this_thread::sleep_for(100ms);
    f.server->respond(*first, text("one"));
    CHECK(c.read_response().body == "one");
    auto second = f.wait_held(2);
    REQUIRE(second);
    f.server->respond(*second, text("two"));
    CHECK(c.read_response().body == "two");
    CHECK(c.closed_by_server());
  }
  SECTION("a FIN with no complete request closes at once, as before") {
    REQUIRE(c.send("GET /hold HTTP/1.1\r\n"));
    c.shut_write();
    CHECK(c.closed_by_server());
    CHECK_FALSE(f.wait_held());
  }
}

TEST_CASE("listen() on a port in use names the address and the reason", "[http_server]") {
  fixture f;
  http_server_options opts;
  opts.port = f.port;
  http_server second(f.loop, opts, [](http_request&&, uint64_t) {});
  const status st = second.listen();
  REQUIRE_FALSE(st.ok());
  CHECK(st.error() == "cannot listen on 127.0.0.1:" + std::to_string(f.port) +
                        ": address already in use");
}

TEST_CASE("a handler that throws gets a 500 and a HEAD gets no body", "[http_server]") {
  fixture f;
  test_client c(f.port);
  REQUIRE(c.send("GET /throw HTTP/1.1\r\n\r\n"));
  auto r = c.read_response();
  CHECK(r.status == 500);
  CHECK(r.body == "{\"error\":\"internal error\"}");
  REQUIRE(c.send("HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n"));
  r = c.read_response(/*head=*/true);
  CHECK(r.status == 200);
  CHECK(r.headers["content-length"] == "5");
  r = c.read_response(); // parses only if the HEAD answer carried no body
  CHECK(r.headers["x-path"] == "/y");
  CHECK(r.body == "hello");
}

TEST_CASE("listen() on a loop that is not running fails at once", "[http_server]") {
  event_loop loop; // never started
  http_server server(loop, http_server_options{}, [](http_request&&, uint64_t) {});
  const auto begin = std::chrono::steady_clock::now();
  const status st = server.listen();
  REQUIRE_FALSE(st.ok());
  CHECK(st.error() == "cannot listen on 127.0.0.1:0: the event loop is not running");
  server.close();
  CHECK(std::chrono::steady_clock::now() - begin < 1s);
}

TEST_CASE("a write to a peer that went away gives EPIPE on the loop, not SIGPIPE",
          "[http_server]") {
  // SIGPIPE keeps its default action (end the process) in this test program,
  // as in any program that embeds the loop without ignoring it.
  REQUIRE(std::signal(SIGPIPE, SIG_DFL) != SIG_ERR);
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  ::close(sv[1]); // the peer is gone: a write raises SIGPIPE unless blocked
  event_loop loop;
  loop.start();
  std::promise<int> written;
  loop.post([&](uv_loop_t*) {
    const ssize_t n = ::write(sv[0], "x", 1);
    written.set_value(n < 0 ? errno : 0);
  });
  auto result = written.get_future();
  REQUIRE(result.wait_for(5s) == std::future_status::ready);
  CHECK(result.get() == EPIPE);
  loop.stop();
  ::close(sv[0]);
}

namespace {

// A header check that lets through only "Authorization: Bearer good" and
// remembers what it was shown.
struct token_check {
  std::shared_ptr<std::mutex> mtx = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<http_request>> seen = std::make_shared<std::vector<http_request>>();

  std::optional<http_response> operator()(const http_request& req) const {
    {
      std::lock_guard<std::mutex> guard{*mtx};
      seen->push_back(req);
    }
    auto auth = req.headers.find("authorization");
    if (auth != req.headers.end() && auth->second == "Bearer good")
      return std::nullopt;
    http_response r;
    r.status = 401;
    r.body = R"({"error":"a bearer token is required"})";
    r.headers["WWW-Authenticate"] = "Bearer realm=\"test\"";
    return r;
  }
  size_t count() const {
    std::lock_guard<std::mutex> guard{*mtx};
    return seen->size();
  }
};

} // namespace

TEST_CASE("a header check's refusal is sent before any body is read, and the connection closes",
          "[http_server]") {
  temp_dir dir;
  http_server_options opts;
  opts.upload_dir = dir.path;
  opts.upload_paths = {"/hold"}; // an upload the handler would park if it ever saw it
  token_check check;
  opts.header_check = check;
  fixture f(opts);
  const std::string head =
    "POST /hold HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\n";
  {
    // 300 MB declared and its first 32 KiB sent: refused from the headers.
    test_client c(f.port);
    const std::string start = multipart_body("b", std::string(64 << 10, 'q')).substr(0, 32 << 10);
    REQUIRE(c.send(head + "Content-Length: " + std::to_string(300ull << 20) + "\r\n\r\n" + start));
    auto r = c.read_response();
    CHECK(r.status == 401);
    CHECK(r.body == R"({"error":"a bearer token is required"})");
    CHECK(r.headers["www-authenticate"] == "Bearer realm=\"test\"");
    CHECK(r.headers["connection"] == "close");
    CHECK(c.closed_by_server());
  }
  {
    // Chunked, with a wrong token: the same.
    test_client c(f.port);
    REQUIRE(c.send(head + "Authorization: Bearer bad\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\n--b\r\n\r\n"));
    CHECK(c.read_response().status == 401);
    CHECK(c.closed_by_server());
  }
  {
    // Expect: 100-continue: no invitation to send the body, the refusal instead.
    test_client c(f.port);
    REQUIRE(c.send(head + "Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n"));
    CHECK(c.read_response().status == 401);
  }
  CHECK(check.count() == 3);
  CHECK(dir.files() == 0);
  std::lock_guard<std::mutex> guard{f.mtx};
  CHECK(f.held.empty());
}

TEST_CASE("a request the header check lets through is read whole and handled as usual",
          "[http_server]") {
  temp_dir dir;
  http_server_options opts;
  opts.upload_dir = dir.path + "/spool";
  token_check check;
  opts.header_check = check;
  fixture f(opts);
  const std::string body = multipart_body("b", "bundle bytes");
  test_client c(f.port);
  REQUIRE(c.send("POST /job_bundle?x=1 HTTP/1.1\r\nAuthorization: Bearer good\r\n"
                 "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body));
  auto r = c.read_response();
  REQUIRE(r.status == 200);
  CHECK(read_file(r.headers["x-upload-path"]) == "bundle bytes");
  CHECK(r.headers["connection"] == "keep-alive");
  REQUIRE(c.send("GET /echo HTTP/1.1\r\nAuthorization: Bearer good\r\n\r\n"));
  CHECK(c.read_response().status == 200); // the same connection goes on
  REQUIRE(check.count() == 2);
  const http_request seen = check.seen->front();
  CHECK(seen.method == "POST");
  CHECK(seen.path == "/job_bundle");
  CHECK(seen.query == "x=1");
  CHECK(seen.headers.at("authorization") == "Bearer good");
  CHECK(seen.body.empty());
  CHECK(seen.upload_path.empty());
  CHECK(!seen.peer.empty());
}

TEST_CASE("a header check that throws answers 500 and the handler never runs", "[http_server]") {
  http_server_options opts;
  opts.header_check = [](const http_request&) -> std::optional<http_response> {
    throw std::runtime_error("check bug");
  };
  fixture f(opts);
  test_client c(f.port);
  REQUIRE(c.send("GET /hold HTTP/1.1\r\n\r\n"));
  CHECK(c.read_response().status == 500);
  CHECK(c.closed_by_server());
  std::lock_guard<std::mutex> guard{f.mtx};
  CHECK(f.held.empty());
}

TEST_CASE("a request target splits into a decoded path and a raw query", "[http_wire]") {
  http_request req;
  REQUIRE(http_wire::split_target("/jobs/a%20b%2Fc?x=%20&y#frag", req));
  CHECK(req.path == "/jobs/a b/c");
  CHECK(req.query == "x=%20&y");
  for (const char* bad : {"", "jobs", "/a%2", "/a%zz", "/a%00b", "?x=1"}) {
    http_request r;
    CHECK_FALSE(http_wire::split_target(bad, r));
  }
}

TEST_CASE("percent-decoding is strict in a path and lenient in a form", "[http_wire]") {
  using http_wire::percent_decode;
  using http_wire::percent_mode;
  CHECK(percent_decode("a%20b+c%2f", percent_mode::path) == "a b+c/");
  for (const char* bad : {"%2", "%zz", "a%00b"})
    CHECK_FALSE(percent_decode(bad, percent_mode::path));
  CHECK_FALSE(percent_decode(std::string_view{"a\0b", 3}, percent_mode::path));
  CHECK(percent_decode("a%20b+c", percent_mode::form) == "a b c");
  CHECK(percent_decode("100%+%zz%4", percent_mode::form) == "100% %zz%4");
  CHECK(percent_decode("%41%00", percent_mode::form) == std::string{"A\0", 2});
}

TEST_CASE("a response head frames the body itself and drops unsafe headers", "[http_wire]") {
  http_response r;
  r.status = 404;
  r.headers = {{"X-Id", "7"},           {"Content-Length", "99"}, {"connection", "close"},
               {"X-Bad", "a\r\nb: c"}, {"Content-Type", "text/x"}};
  CHECK(http_wire::response_head(r, true, 3) == "HTTP/1.1 404 Not Found\r\n"
                                                "Content-Type: application/json\r\n"
                                                "Content-Length: 3\r\n"
                                                "Connection: keep-alive\r\n"
                                                "X-Id: 7\r\n\r\n");
  r.status = 799;
  r.content_type.clear();
  r.headers.clear();
  CHECK(http_wire::response_head(r, false, -1) == "HTTP/1.1 799 Unknown\r\n"
                                                  "Transfer-Encoding: chunked\r\n"
                                                  "Connection: close\r\n\r\n");
  r.status = 204;
  CHECK(http_wire::response_head(r, true, 0).find("Content-Length") == std::string::npos);
  CHECK_FALSE(http_wire::asks_to_close(r));
  r.headers["Connection"] = " Close ";
  CHECK(http_wire::asks_to_close(r));
}

TEST_CASE("chunks carry their hex size and error bodies are escaped JSON", "[http_wire]") {
  CHECK(http_wire::chunk("hello") == "5\r\nhello\r\n");
  CHECK(http_wire::chunk(std::string(26, 'x')) == "1a\r\n" + std::string(26, 'x') + "\r\n");
  CHECK(http_wire::json_error("a \"b\" \\ c\n") == "{\"error\":\"a \\\"b\\\" \\\\ c\\u000a\"}");
  // Found by tests/fuzz (http_wire): bytes that are not UTF-8 made the body
  // invalid JSON. Valid UTF-8 is kept.
  CHECK(http_wire::json_error("a\x99\x80\xED\xA0\x80 \xC3\xA9") ==
        "{\"error\":\"a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xC3\xA9\"}");
}
