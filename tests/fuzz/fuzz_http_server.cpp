// Whole HTTP requests through the real server: libuv sockets, http_parser
// and the connection state machine (adapters/http_connection.cpp), with
// keep-alive, pipelining, chunked bodies, 100-continue and multipart
// uploads. Each input is written to a fresh loopback connection, the write
// side is shut, and the answer is read until the server closes. The handler
// routes like the gateway does (split_path, parse_query) and answers at once.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "adapters/event_loop.hpp"
#include "adapters/http_server.hpp"
#include "fuzz_util.hpp"
#include "library/http_answers.hpp"

using namespace atlas;

namespace {

struct server {
  event_loop loop;
  std::unique_ptr<http_server> http;
  uint16_t port = 0;

  server() {
    loop.start();
    http_server_options opts;
    opts.max_header_bytes = 8 << 10;
    opts.max_body_bytes = 16 << 10;
    opts.max_upload_bytes = 64 << 10;
    opts.upload_dir = fuzz::temp_dir() + "/uploads";
    opts.idle_timeout_ms = 2000;
    http = std::make_unique<http_server>(loop, opts, [this](http_request&& req, uint64_t token) {
      if (!req.upload_path.empty())
        std::remove(req.upload_path.c_str());
      auto parts = split_path(req.path);
      auto query = parse_query(req.query);
      std::string body = "{\"parts\":" + std::to_string(parts.size()) + ",\"query\":" +
                         std::to_string(query.size()) + ",\"body\":" +
                         std::to_string(req.body.size()) + "}";
      if (!parts.empty() && parts[0] == "stream") {
        http->begin_stream(token, 200, "text/plain");
        http->send_chunk(token, req.body);
        http->end_stream(token);
        return;
      }
      http_response r;
      r.status = parts.size() > 1 ? 404 : 200;
      r.body = std::move(body);
      for (auto& [k, v] : req.headers)
        if (k.rfind("x-echo", 0) == 0)
          r.headers[k] = v;
      http->respond(token, std::move(r));
    });
    if (!http->listen().ok())
      std::abort();
    port = http->port();
  }
  ~server() {
    http->close();
    http.reset();
    loop.stop();
  }
};

server& the_server() {
  static server s;
  return s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& s = the_server();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(s.port);
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  int fd = -1;
  for (int tries = 0;;) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      std::abort();
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      break;
    const int err = errno;
    ::close(fd);
    // libFuzzer's timeout alarm (SIGALRM) can interrupt a connect: again.
    if (err == EINTR)
      continue;
    // Hundreds of thousands of connections a run use up the ephemeral ports
    // (TIME_WAIT): wait for one to free rather than report a finding.
    if (err == EADDRNOTAVAIL && ++tries <= 200) {
      ::usleep(50000);
      continue;
    }
    std::fprintf(stderr, "fuzz_http_server: connect: %s\n", std::strerror(err));
    std::abort(); // the server went away
  }
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0)
      break; // the server closed early (a refused request): fine
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buf[16384];
  size_t got = 0;
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        std::abort(); // the server neither answered nor closed in 5 s
      break;          // reset: fine
    }
    if (got == 0 && (n < 5 || std::string_view{buf, 5} != "HTTP/"))
      std::abort(); // something other than an HTTP answer came back
    got += static_cast<size_t>(n);
  }
  // Reset rather than linger in TIME_WAIT, for the same reason.
  linger no_linger{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof no_linger);
  ::close(fd);
  return 0;
}
