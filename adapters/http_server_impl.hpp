#pragma once

// The loop-side state of http_server, shared by its sources: http_server.cpp
// (the server object: answers from any thread, the listener's hooks),
// http_connection.cpp (accepting, reading, timeouts, closing),
// http_request_parsing.cpp (the parser's callbacks) and http_response_writing.cpp
// (writing answers). Private to them.

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <http_parser.h>

#include "adapters/http_server.hpp"
#include "adapters/multipart.hpp"
#include "adapters/tcp_listener.hpp"

namespace atlas {

// All members below the mutex belong to the loop thread.
struct http_server::impl final : tcp_listener {
  struct conn;

  static constexpr size_t read_size = 64 << 10;

  // Defined in http_server.cpp, the only place that creates an impl.
  impl(event_loop& l, http_server_options o, http_handler h);

  // -- any thread --
  bool token_open(uint64_t token) const; // still wants an answer
  bool take_token(uint64_t token);       // true for the one caller that closes it

  // -- loop thread: the listener's hooks (http_server.cpp) --
  status prepare() override; // the upload directory
  void stopping() override;  // no answers wanted any more
  void close_connections() override;

  // -- loop thread: connections, reading and timeouts (http_connection.cpp) --
  void accept(uv_stream_t* server) override;
  conn* find(uint64_t token);
  void consume(conn* c, const char* data, size_t n);
  void deliver(conn* c);
  void linger(conn* c);
  void close_now(conn* c);
  void forget(conn* c);
  void arm(conn* c, uint64_t ms);
  void arm_idle(conn* c) { // a timeout of 0 or less means none
    if (opts.idle_timeout_ms > 0)
      arm(c, static_cast<uint64_t>(opts.idle_timeout_ms));
  }
  void read_on(conn* c);
  void half_closed(conn* c);
  void read_off(conn* c);
  size_t input_cap() const { return std::max<size_t>(read_size, opts.max_header_bytes); }

  // -- loop thread: answers (http_response_writing.cpp) --
  void reject(conn* c, uint16_t code, std::string_view message);
  void reject(conn* c, http_response r); // answers, then closes; never reads on
  void answer(conn* c, const http_response& r);
  void start_stream(conn* c, const http_response& r);
  void write_chunk(conn* c, std::string_view data);
  void end_stream(conn* c);
  void done(conn* c);
  void written(conn* c);
  void write(conn* c, std::string data);

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_timer(uv_timer_t* t);
  static void on_closed(uv_handle_t* h);
  // The request parser's callbacks (http_request_parsing.cpp).
  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, size_t n);
  static int on_header_field(http_parser* p, const char* at, size_t n);
  static int on_header_value(http_parser* p, const char* at, size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, size_t n);
  static int on_message_complete(http_parser* p);

  const http_server_options opts;
  http_handler handler;
  http_parser_settings settings{};

  mutable std::mutex mtx;
  std::unordered_set<uint64_t> open_tokens; // requests still wanting an answer

  std::string upload_dir;
  uint64_t next_token = 1;
  std::unordered_map<uint64_t, conn*> by_token;
  std::unordered_set<conn*> conns;
  std::array<char, read_size> read_buf; // one is enough: reads are handled one at a time
};

// One client connection; deletes itself once both its handles are closed.
struct http_server::impl::conn {
  explicit conn(impl* s) : srv(s), keep(s->shared_from_this()) {}

  impl* srv;
  std::shared_ptr<tcp_listener> keep; // close callbacks may run after ~http_server
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  uv_shutdown_t shutdown{};
  int open_handles = 2;
  http_parser parser{};
  std::string peer;
  // The request being read.
  http_request req;
  std::string url, field, value;
  bool in_value = false, started = false, complete = false;
  uint64_t header_bytes = 0, body_bytes = 0;
  std::unique_ptr<upload_spool> spool;
  uint16_t error_code = 0; // set by a parser callback that refused the request
  std::string error_message;
  std::optional<http_response> refusal; // the header check's whole answer, when it refused
  // The request being answered; nothing more is parsed until it is written.
  bool busy = false, head = false, keep_alive = false, streaming = false, finished = false;
  uint64_t token = 0;
  int writes = 0;
  std::string pending; // pipelined bytes that arrived meanwhile
  bool reading = false, lingering = false, closed = false;
  // The client sent FIN (shutdown(SHUT_WR), or closed) after a complete
  // request: what was read is still answered, then the connection closes.
  bool peer_done = false;

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp); }
  int refuse(uint16_t code, std::string message) {
    error_code = code;
    error_message = std::move(message);
    return -1;
  }
  int refuse(http_response r) {
    error_code = r.status;
    refusal = std::move(r);
    return -1;
  }
};

} // namespace atlas
