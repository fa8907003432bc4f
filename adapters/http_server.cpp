#include "adapters/http_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include <http_parser.h>

#include "adapters/multipart.hpp"

namespace atlas {

namespace {

constexpr size_t read_size = 64 << 10;
constexpr size_t max_stream_backlog = 16 << 20; // a follower this far behind is dropped
constexpr uint64_t linger_ms = 1000; // input drained after the last answer, so no RST eats it
constexpr auto call_timeout = std::chrono::seconds(10); // listen()/close() waiting on the loop

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& ch : out)
    if (ch >= 'A' && ch <= 'Z')
      ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

std::string json_error(std::string_view message) {
  std::string out = "{\"error\":\"";
  for (const unsigned char ch : message) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", ch);
      out += esc;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"}";
}

std::string too_large(uint64_t limit) {
  return "request body too large (limit " + std::to_string(limit) + " bytes)";
}

int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

// Splits a request target into a percent-decoded path and the raw query.
bool split_target(std::string_view target, http_request& req) {
  target = target.substr(0, target.find('#'));
  const size_t q = target.find('?');
  const std::string_view raw = target.substr(0, q);
  if (q != std::string_view::npos)
    req.query = target.substr(q + 1);
  if (raw.empty() || raw.front() != '/')
    return false;
  std::string path;
  path.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char ch = raw[i];
    if (ch == '%') {
      if (i + 2 >= raw.size())
        return false;
      const int hi = hex_digit(raw[i + 1]), lo = hex_digit(raw[i + 2]);
      if (hi < 0 || lo < 0)
        return false;
      ch = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (ch == '\0')
      return false;
    path += ch;
  }
  req.path = std::move(path);
  return true;
}

bool bodyless(uint16_t status) {
  return status < 200 || status == 204 || status == 304;
}

bool header_safe(std::string_view s) {
  return s.find_first_of(std::string_view{"\r\n\0", 3}) == std::string_view::npos;
}

bool asks_to_close(const http_response& r) {
  for (auto& [k, v] : r.headers)
    if (lower(k) == "connection" && lower(trim(v)) == "close")
      return true;
  return false;
}

// The status line and headers; `length` < 0 means chunked.
std::string response_head(const http_response& r, bool keep_alive, int64_t length) {
  const char* reason = http_status_str(static_cast<http_status>(r.status));
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " +
                    (std::strcmp(reason, "<unknown>") == 0 ? "Unknown" : reason) + "\r\n";
  if (!r.content_type.empty() && header_safe(r.content_type))
    out += "Content-Type: " + r.content_type + "\r\n";
  if (length < 0)
    out += "Transfer-Encoding: chunked\r\n";
  else if (!bodyless(r.status))
    out += "Content-Length: " + std::to_string(length) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (auto& [k, v] : r.headers) {
    // Framing headers are ours to write; a handler's would corrupt the stream.
    const std::string name = lower(k);
    if (name == "content-length" || name == "transfer-encoding" || name == "connection" ||
        (name == "content-type" && !r.content_type.empty()) || name.empty() ||
        !header_safe(k) || !header_safe(v))
      continue;
    out += k + ": " + v + "\r\n";
  }
  return out + "\r\n";
}

std::string chunk(std::string_view data) {
  char size[24];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out(size, static_cast<size_t>(n));
  out.append(data);
  return out + "\r\n";
}

std::string peer_name(const uv_tcp_t* tcp) {
  sockaddr_storage sa{};
  int len = sizeof sa;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return "unknown";
  char ip[64] = {};
  if (sa.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&sa);
    uv_ip6_name(a, ip, sizeof ip);
    return "[" + std::string{ip} + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  auto* a = reinterpret_cast<const sockaddr_in*>(&sa);
  uv_ip4_name(a, ip, sizeof ip);
  return std::string{ip} + ":" + std::to_string(ntohs(a->sin_port));
}

} // namespace

// All members below the mutex belong to the loop thread.
struct http_server::impl : std::enable_shared_from_this<http_server::impl> {
  struct conn;

  impl(event_loop& l, http_server_options o, http_handler h)
    : loop(l), opts(std::move(o)), handler(std::move(h)) {
    settings.on_message_begin = &impl::on_message_begin;
    settings.on_url = &impl::on_url;
    settings.on_header_field = &impl::on_header_field;
    settings.on_header_value = &impl::on_header_value;
    settings.on_headers_complete = &impl::on_headers_complete;
    settings.on_body = &impl::on_body;
    settings.on_message_complete = &impl::on_message_complete;
  }

  // -- any thread --
  std::string where() const {
    const bool v6 = opts.host.find(':') != std::string::npos;
    return "cannot listen on " + (v6 ? "[" + opts.host + "]" : opts.host) + ":" +
           std::to_string(opts.port);
  }
  bool token_open(uint64_t token) const {
    std::lock_guard<std::mutex> guard{mtx};
    return open_tokens.count(token) != 0;
  }
  bool take_token(uint64_t token) {
    std::lock_guard<std::mutex> guard{mtx};
    return open_tokens.erase(token) != 0;
  }
  // Runs `fn` on the loop with this impl kept alive; nothing unwinds into libuv.
  template <class F>
  void post(F fn) {
    try {
      loop.post([self = shared_from_this(), fn = std::move(fn)](uv_loop_t*) mutable {
        try {
          fn(*self);
        } catch (...) {
        }
      });
    } catch (...) {
    }
  }

  // -- loop thread --
  status do_listen(uv_loop_t* l);
  void do_close();
  conn* find(uint64_t token);
  void accept(uv_stream_t* server);
  void consume(conn* c, const char* data, size_t n);
  void deliver(conn* c);
  void reject(conn* c, uint16_t code, std::string_view message);
  void answer(conn* c, const http_response& r);
  void start_stream(conn* c, const http_response& r);
  void write_chunk(conn* c, std::string_view data);
  void end_stream(conn* c);
  void done(conn* c);
  void written(conn* c);
  void write(conn* c, std::string data);
  void linger(conn* c);
  void close_now(conn* c);
  void forget(conn* c);
  void arm(conn* c, uint64_t ms);
  void arm_idle(conn* c) { // a timeout of 0 or less means none
    if (opts.idle_timeout_ms > 0)
      arm(c, static_cast<uint64_t>(opts.idle_timeout_ms));
  }
  void read_on(conn* c);
  void read_off(conn* c);
  size_t input_cap() const { return std::max<size_t>(read_size, opts.max_header_bytes); }

  static void on_connection(uv_stream_t* server, int status);
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_timer(uv_timer_t* t);
  static void on_closed(uv_handle_t* h);
  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, size_t n);
  static int on_header_field(http_parser* p, const char* at, size_t n);
  static int on_header_value(http_parser* p, const char* at, size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, size_t n);
  static int on_message_complete(http_parser* p);

  event_loop& loop;
  const http_server_options opts;
  http_handler handler;
  http_parser_settings settings{};
  std::atomic<uint16_t> bound_port{0};
  std::atomic<bool> stopped{false};
  std::atomic<bool> listen_called{false};

  mutable std::mutex mtx;
  std::unordered_set<uint64_t> open_tokens; // requests still wanting an answer

  uv_tcp_t* listener = nullptr;
  std::string upload_dir;
  uint64_t next_token = 1;
  std::unordered_map<uint64_t, conn*> by_token;
  std::unordered_set<conn*> conns;
  std::array<char, read_size> read_buf; // one is enough: reads are handled one at a time
};

struct http_server::impl::conn {
  explicit conn(impl* s) : srv(s), keep(s->shared_from_this()) {}

  impl* srv;
  std::shared_ptr<impl> keep; // close callbacks may run after ~http_server
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
  // The request being answered; nothing more is parsed until it is written.
  bool busy = false, head = false, keep_alive = false, streaming = false, finished = false;
  uint64_t token = 0;
  int writes = 0;
  std::string pending; // pipelined bytes that arrived meanwhile
  bool reading = false, lingering = false, closed = false;

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp); }
  int refuse(uint16_t code, std::string message) {
    error_code = code;
    error_message = std::move(message);
    return -1;
  }
};

namespace {

struct write_req {
  uv_write_t req;
  http_server::impl::conn* c;
  std::string data;
};

http_server::impl::conn* conn_of(http_parser* p) {
  return static_cast<http_server::impl::conn*>(p->data);
}

void add_header(http_server::impl::conn* c) {
  const std::string_view v = trim(c->value);
  auto [it, fresh] = c->req.headers.try_emplace(lower(c->field), v);
  if (!fresh) {
    it->second += ", ";
    it->second += v;
  }
  c->field.clear();
  c->value.clear();
  c->in_value = false;
}

int count_header(http_server::impl::conn* c, size_t n) {
  c->header_bytes += n;
  return c->header_bytes > c->srv->opts.max_header_bytes
           ? c->refuse(431, "request headers too large")
           : 0;
}

} // namespace

// -- parser callbacks -----------------------------------------------------------

int http_server::impl::on_message_begin(http_parser* p) {
  auto* c = conn_of(p);
  c->req = http_request{};
  c->url.clear();
  c->field.clear();
  c->value.clear();
  c->in_value = false;
  c->started = true;
  c->header_bytes = c->body_bytes = 0;
  c->spool.reset();
  return 0;
}

int http_server::impl::on_url(http_parser* p, const char* at, size_t n) {
  auto* c = conn_of(p);
  if (count_header(c, n) != 0)
    return -1;
  c->url.append(at, n);
  return 0;
}

int http_server::impl::on_header_field(http_parser* p, const char* at, size_t n) {
  auto* c = conn_of(p);
  if (count_header(c, n) != 0)
    return -1;
  if (c->in_value)
    add_header(c);
  c->field.append(at, n);
  return 0;
}

int http_server::impl::on_header_value(http_parser* p, const char* at, size_t n) {
  auto* c = conn_of(p);
  if (count_header(c, n) != 0)
    return -1;
  c->in_value = true;
  c->value.append(at, n);
  return 0;
}

int http_server::impl::on_headers_complete(http_parser* p) {
  auto* c = conn_of(p);
  impl& s = *c->srv;
  auto& req = c->req;
  if (c->in_value)
    add_header(c);
  req.method = http_method_str(static_cast<http_method>(p->method));
  req.peer = c->peer;
  if (!split_target(c->url, req))
    return c->refuse(400, "bad request target");
  const bool chunked = (p->flags & F_CHUNKED) != 0;
  const bool sized = !chunked && p->content_length != ULLONG_MAX;
  const bool upload = p->method == HTTP_POST &&
                      std::find(s.opts.upload_paths.begin(), s.opts.upload_paths.end(),
                                req.path) != s.opts.upload_paths.end();
  const uint64_t limit = upload ? s.opts.max_upload_bytes : s.opts.max_body_bytes;
  // Refused before the body is read, and before any 100 Continue invites it.
  if (sized && p->content_length > limit)
    return c->refuse(413, too_large(limit));
  if (upload) {
    auto ct = req.headers.find("content-type");
    auto boundary = ct == req.headers.end() ? std::nullopt : multipart_boundary(ct->second);
    if (!boundary)
      return c->refuse(400, "expected multipart/form-data");
    c->spool = std::make_unique<upload_spool>(s.upload_dir, *boundary);
  }
  const bool has_body = chunked || (sized && p->content_length > 0);
  auto expect = req.headers.find("expect");
  if (has_body && p->http_major == 1 && p->http_minor >= 1 && expect != req.headers.end() &&
      lower(expect->second) == "100-continue")
    s.write(c, "HTTP/1.1 100 Continue\r\n\r\n");
  return 0;
}

int http_server::impl::on_body(http_parser* p, const char* at, size_t n) {
  auto* c = conn_of(p);
  impl& s = *c->srv;
  c->body_bytes += n;
  if (c->spool) {
    if (c->body_bytes > s.opts.max_upload_bytes)
      return c->refuse(413, too_large(s.opts.max_upload_bytes));
    auto fed = c->spool->feed({at, n});
    if (!fed.ok())
      return c->refuse(c->spool->disk_error() ? 500 : 400, fed.error());
    s.arm_idle(c); // moving uploads are not slow
    return 0;
  }
  if (c->body_bytes > s.opts.max_body_bytes)
    return c->refuse(413, too_large(s.opts.max_body_bytes));
  c->req.body.append(at, n);
  return 0;
}

int http_server::impl::on_message_complete(http_parser* p) {
  auto* c = conn_of(p);
  if (c->in_value)
    add_header(c); // a trailer
  if (c->spool && !c->spool->complete())
    return c->refuse(400, "multipart body ends before its closing boundary");
  c->complete = true;
  http_parser_pause(p, 1); // one request at a time; what follows waits in `pending`
  return 0;
}

// -- connections ----------------------------------------------------------------

void http_server::impl::on_connection(uv_stream_t* server, int status) {
  auto* s = static_cast<impl*>(server->data);
  if (status < 0 || s->stopped)
    return;
  try {
    s->accept(server);
  } catch (...) {
  }
}

void http_server::impl::accept(uv_stream_t* server) {
  auto* c = new conn(this);
  uv_tcp_init(server->loop, &c->tcp);
  uv_timer_init(server->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  conns.insert(c);
  if (uv_accept(server, c->stream()) != 0) {
    close_now(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->peer = peer_name(&c->tcp);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  arm_idle(c);
  read_on(c);
}

void http_server::impl::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto& b = static_cast<conn*>(h->data)->srv->read_buf;
  *buf = uv_buf_init(b.data(), static_cast<unsigned>(b.size()));
}

void http_server::impl::on_read(uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<conn*>(st->data);
  impl& s = *c->srv;
  if (n == 0 || c->closed)
    return;
  if (n < 0) { // the client went away: nobody is left to answer
    s.close_now(c);
    return;
  }
  if (c->lingering)
    return;
  try {
    if (!c->busy) {
      s.consume(c, buf->base, static_cast<size_t>(n));
    } else if (c->keep_alive) { // keep reading meanwhile, to notice a client leaving
      c->pending.append(buf->base, static_cast<size_t>(n));
      if (c->pending.size() >= s.input_cap())
        s.read_off(c);
    }
  } catch (...) {
    s.close_now(c);
  }
}

void http_server::impl::consume(conn* c, const char* data, size_t n) {
  while (n > 0 && !c->busy && !c->closed) {
    const size_t used = http_parser_execute(&c->parser, &settings, data, n);
    data += used;
    n -= used;
    if (c->closed)
      return;
    if (c->error_code != 0)
      return reject(c, c->error_code, c->error_message);
    if (c->complete) {
      deliver(c);
      continue;
    }
    const auto err = HTTP_PARSER_ERRNO(&c->parser);
    if (err == HPE_HEADER_OVERFLOW)
      return reject(c, 431, "request headers too large");
    if (err != HPE_OK || n > 0) // n > 0: the parser stopped early (an upgrade)
      return reject(c, 400, std::string{"malformed request: "} +
                              (err != HPE_OK ? http_errno_description(err) : "unexpected data"));
  }
  if (n > 0 && !c->closed && c->busy && c->keep_alive)
    c->pending.append(data, n);
}

void http_server::impl::deliver(conn* c) {
  c->complete = c->started = false;
  c->busy = true;
  c->keep_alive = http_should_keep_alive(&c->parser) != 0 && c->parser.upgrade == 0;
  c->head = c->parser.method == HTTP_HEAD;
  uv_timer_stop(&c->timer); // the handler may take as long as it needs
  http_request req = std::move(c->req);
  c->req = http_request{};
  if (c->spool) {
    req.upload_path = c->spool->path();
    req.upload_filename = c->spool->filename();
    req.upload_field = c->spool->field();
    c->spool->release(); // the handler's file now
    c->spool.reset();
  }
  const uint64_t token = next_token++;
  c->token = token;
  by_token.emplace(token, c);
  {
    std::lock_guard<std::mutex> guard{mtx};
    open_tokens.insert(token);
  }
  if (stopped)
    return;
  try {
    handler(std::move(req), token);
  } catch (...) {
    http_response r;
    r.status = 500;
    r.body = json_error("internal error");
    if (conn* d = find(token); d != nullptr && take_token(token))
      answer(d, r);
  }
}

http_server::impl::conn* http_server::impl::find(uint64_t token) {
  auto it = by_token.find(token);
  return it == by_token.end() || it->second->closed ? nullptr : it->second;
}

// -- answers --------------------------------------------------------------------

void http_server::impl::reject(conn* c, uint16_t code, std::string_view message) {
  c->spool.reset(); // deletes a partial upload
  c->busy = true;
  c->keep_alive = c->head = c->started = false;
  c->pending.clear();
  http_response r;
  r.status = code;
  r.body = json_error(message);
  answer(c, r);
}

void http_server::impl::answer(conn* c, const http_response& r) {
  if (r.stream || c->streaming) {
    if (!c->streaming)
      start_stream(c, r);
    if (!r.body.empty())
      write_chunk(c, r.body);
    if (!r.stream || r.stream_done)
      end_stream(c);
    return;
  }
  if (asks_to_close(r))
    c->keep_alive = false;
  std::string out = response_head(r, c->keep_alive, static_cast<int64_t>(r.body.size()));
  if (!c->head && !bodyless(r.status))
    out += r.body;
  write(c, std::move(out));
  done(c);
}

void http_server::impl::start_stream(conn* c, const http_response& r) {
  c->streaming = true;
  if (asks_to_close(r))
    c->keep_alive = false;
  write(c, response_head(r, c->keep_alive, -1));
}

void http_server::impl::write_chunk(conn* c, std::string_view data) {
  if (c->head || data.empty())
    return;
  write(c, chunk(data));
  if (!c->closed && uv_stream_get_write_queue_size(c->stream()) > max_stream_backlog)
    close_now(c);
}

void http_server::impl::end_stream(conn* c) {
  if (!c->head)
    write(c, "0\r\n\r\n");
  done(c);
}

// The whole answer is queued: once written, the connection moves on.
void http_server::impl::done(conn* c) {
  forget(c);
  c->finished = true;
  if (c->writes == 0 && !c->closed)
    written(c);
}

void http_server::impl::written(conn* c) {
  c->finished = c->busy = c->streaming = c->head = false;
  if (!c->keep_alive || stopped)
    return linger(c);
  arm_idle(c);
  http_parser_pause(&c->parser, 0);
  std::string pipelined = std::move(c->pending);
  c->pending.clear();
  consume(c, pipelined.data(), pipelined.size());
  if (!c->closed && !c->lingering && c->pending.size() < input_cap())
    read_on(c);
}

void http_server::impl::write(conn* c, std::string data) {
  if (c->closed)
    return;
  auto* w = new write_req{uv_write_t{}, c, std::move(data)};
  w->req.data = w;
  const uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, c->stream(), &buf, 1, &impl::on_write) != 0) {
    delete w;
    return close_now(c);
  }
  if (c->writes++ == 0 && c->busy) // a client that stops reading is not kept forever
    arm_idle(c);
}

void http_server::impl::on_write(uv_write_t* req, int status) {
  auto* w = static_cast<write_req*>(req->data);
  conn* c = w->c;
  delete w;
  --c->writes;
  if (c->closed)
    return;
  impl& s = *c->srv;
  if (status < 0)
    return s.close_now(c);
  if (!c->busy) // a 100 Continue: the request's own deadline keeps running
    return;
  if (c->writes > 0)
    return s.arm_idle(c);
  if (!c->finished) { // waiting for the handler or the next chunk
    uv_timer_stop(&c->timer);
    return;
  }
  try {
    s.written(c);
  } catch (...) {
    s.close_now(c);
  }
}

// -- closing --------------------------------------------------------------------

// Closing right away could turn unread input into a RST that destroys the
// answer on its way; send FIN, drain for a moment, then close.
void http_server::impl::linger(conn* c) {
  c->lingering = true;
  c->pending.clear();
  forget(c);
  c->shutdown.data = c;
  if (uv_shutdown(&c->shutdown, c->stream(), [](uv_shutdown_t*, int) {}) != 0)
    return close_now(c);
  read_on(c);
  arm(c, linger_ms);
}

void http_server::impl::on_timer(uv_timer_t* t) {
  auto* c = static_cast<conn*>(t->data);
  impl& s = *c->srv;
  if (c->closed)
    return;
  try {
    if (!c->busy && !c->lingering && c->started)
      return s.reject(c, 408, "request timeout");
  } catch (...) {
  }
  s.close_now(c); // idle, lingering, or the client stopped reading our answer
}

void http_server::impl::close_now(conn* c) {
  if (c->closed)
    return;
  c->closed = true;
  forget(c);
  c->spool.reset(); // an upload cut short leaves no file behind
  conns.erase(c);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), &impl::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), &impl::on_closed);
}

void http_server::impl::on_closed(uv_handle_t* h) {
  auto* c = static_cast<conn*>(h->data);
  if (--c->open_handles == 0)
    delete c; // may release the last reference to the impl
}

void http_server::impl::forget(conn* c) {
  if (c->token == 0)
    return;
  by_token.erase(c->token);
  take_token(c->token);
  c->token = 0;
}

void http_server::impl::arm(conn* c, uint64_t ms) {
  uv_timer_start(&c->timer, &impl::on_timer, ms, 0);
}

void http_server::impl::read_on(conn* c) {
  if (!c->reading && !c->closed &&
      uv_read_start(c->stream(), &impl::on_alloc, &impl::on_read) == 0)
    c->reading = true;
}

void http_server::impl::read_off(conn* c) {
  if (c->reading)
    uv_read_stop(c->stream());
  c->reading = false;
}

// -- listening ------------------------------------------------------------------

status http_server::impl::do_listen(uv_loop_t* l) {
  if (stopped)
    return status::fail(where() + ": server closed");
  if (listener != nullptr)
    return status::fail(where() + ": already listening");
  std::error_code ec;
  upload_dir = opts.upload_dir;
  if (upload_dir.empty())
    upload_dir = std::filesystem::temp_directory_path(ec).string();
  else if (std::filesystem::create_directories(upload_dir, ec); ec)
    return status::fail("cannot create upload directory " + upload_dir + ": " + ec.message());
  sockaddr_storage addr{};
  int r = opts.host.find(':') != std::string::npos
            ? uv_ip6_addr(opts.host.c_str(), opts.port, reinterpret_cast<sockaddr_in6*>(&addr))
            : uv_ip4_addr(opts.host.c_str(), opts.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (r != 0)
    return status::fail(where() + ": not an IP address");
  auto* tcp = new uv_tcp_t{};
  uv_tcp_init(l, tcp);
  tcp->data = this;
  r = uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (r == 0) // libuv reports most bind errors (address in use) only here
    r = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 511, &impl::on_connection);
  if (r != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return status::fail(where() + ": " + uv_strerror(r));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  bound_port = ntohs(bound.ss_family == AF_INET6
                       ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listener = tcp;
  return status::success();
}

void http_server::impl::do_close() {
  if (listener != nullptr)
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(listener, nullptr)),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  for (conn* c : std::vector<conn*>(conns.begin(), conns.end()))
    close_now(c);
  by_token.clear();
}

// -- public API -----------------------------------------------------------------

http_server::http_server(event_loop& loop, http_server_options opts, http_handler handler)
  : impl_(std::make_shared<impl>(loop, std::move(opts), std::move(handler))) {}

http_server::~http_server() {
  close();
}

status http_server::listen() {
  try {
    impl_->listen_called = true;
    if (impl_->loop.in_loop_thread())
      return impl_->do_listen(impl_->loop.raw());
    auto done = std::make_shared<std::promise<status>>();
    auto result = done->get_future();
    impl_->post([done](impl& s) {
      status st = status::fail(s.where() + ": out of memory");
      try {
        st = s.do_listen(s.loop.raw());
      } catch (...) {
      }
      done->set_value(std::move(st));
    });
    if (result.wait_for(call_timeout) != std::future_status::ready)
      return status::fail(impl_->where() + ": the event loop is not running");
    return result.get();
  } catch (...) {
    return status::fail(impl_->where() + ": out of memory");
  }
}

uint16_t http_server::port() const {
  return impl_->bound_port;
}

void http_server::respond(uint64_t token, http_response resp) {
  const bool last = !resp.stream || resp.stream_done;
  if (last ? !impl_->take_token(token) : !impl_->token_open(token))
    return;
  impl_->post([token, r = std::move(resp)](impl& s) {
    if (auto* c = s.find(token))
      s.answer(c, r);
  });
}

void http_server::begin_stream(uint64_t token, uint16_t status, std::string content_type) {
  if (!impl_->token_open(token))
    return;
  impl_->post([token, status, ct = std::move(content_type)](impl& s) {
    http_response r;
    r.status = status;
    r.content_type = ct;
    if (auto* c = s.find(token); c != nullptr && !c->streaming)
      s.start_stream(c, r);
  });
}

void http_server::send_chunk(uint64_t token, std::string data) {
  if (data.empty() || !impl_->token_open(token))
    return;
  impl_->post([token, d = std::move(data)](impl& s) {
    if (auto* c = s.find(token); c != nullptr && c->streaming)
      s.write_chunk(c, d);
  });
}

void http_server::end_stream(uint64_t token) {
  if (!impl_->take_token(token))
    return;
  impl_->post([token](impl& s) {
    auto* c = s.find(token);
    if (c == nullptr)
      return;
    if (!c->streaming)
      s.start_stream(c, http_response{});
    s.end_stream(c);
  });
}

bool http_server::is_open(uint64_t token) const {
  try {
    return impl_->token_open(token);
  } catch (...) {
    return false;
  }
}

void http_server::close() {
  try {
    if (impl_->stopped.exchange(true))
      return;
    {
      std::lock_guard<std::mutex> guard{impl_->mtx};
      impl_->open_tokens.clear();
    }
    if (!impl_->listen_called) // nothing on the loop to close
      return;
    if (impl_->loop.in_loop_thread())
      return impl_->do_close();
    auto done = std::make_shared<std::promise<void>>();
    auto closed = done->get_future();
    impl_->post([done](impl& s) {
      s.do_close();
      done->set_value();
    });
    // Bounded: if the loop has already stopped there is nothing left to close.
    closed.wait_for(call_timeout);
  } catch (...) {
  }
}

} // namespace atlas
