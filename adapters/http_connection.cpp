// The per-connection state machine of http_server, all on the loop thread:
// accept, read and parse (the http_parser callbacks), hand the request to the
// handler, write the answer (whole or chunked), then serve the next pipelined
// request, linger, or close.

#include "adapters/http_server_impl.hpp"

#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/http_wire.hpp"

namespace atlas {

using http_wire::asks_to_close;
using http_wire::bodyless;
using http_wire::chunk;
using http_wire::json_error;
using http_wire::lower;
using http_wire::response_head;
using http_wire::split_target;
using http_wire::trim;

namespace {

constexpr size_t max_stream_backlog = 16 << 20; // a follower this far behind is dropped
constexpr uint64_t linger_ms = 1000; // input drained after the last answer, so no RST eats it

std::string too_large(uint64_t limit) {
  return "request body too large (limit " + std::to_string(limit) + " bytes)";
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
  c->refusal.reset();
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
  // Who asks is settled before anything of the body is read, spooled or
  // invited with 100 Continue (e.g. a bearer token in -p mode).
  if (s.opts.header_check) {
    std::optional<http_response> early;
    try {
      early = s.opts.header_check(req);
    } catch (...) {
      return c->refuse(500, "internal error");
    }
    if (early)
      return c->refuse(std::move(*early));
  }
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
  if (n == UV_EOF && c->busy && !c->lingering) {
    // A FIN after a complete request: the client may only have shut its
    // write side (`nc -N`, some HTTP/1.0 tools) and still wait for the
    // answer, so the requests read are answered, then the connection
    // closes. A client that closed for good is found out by the write.
    s.half_closed(c);
    return;
  }
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

void http_server::impl::half_closed(conn* c) {
  c->peer_done = true;
  read_off(c);
  if (c->streaming) // a stream to a client that may be gone is bounded by the idle timeout
    arm_idle(c);
}

void http_server::impl::consume(conn* c, const char* data, size_t n) {
  while (n > 0 && !c->busy && !c->closed) {
    const size_t used = http_parser_execute(&c->parser, &settings, data, n);
    data += used;
    n -= used;
    if (c->closed)
      return;
    if (c->refusal) {
      http_response r = std::move(*c->refusal);
      c->refusal.reset();
      return reject(c, std::move(r));
    }
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
  http_response r;
  r.status = code;
  r.body = json_error(message);
  reject(c, std::move(r));
}

void http_server::impl::reject(conn* c, http_response r) {
  c->spool.reset(); // deletes a partial upload
  c->busy = true;
  c->keep_alive = c->head = c->started = false;
  c->pending.clear();
  r.stream = false; // a refusal is one whole answer
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
  if (c->peer_done && !c->busy && !c->closed && !c->lingering)
    return linger(c); // every request the client sent before its FIN is answered
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
    if (c->peer_done && c->streaming)
      s.arm_idle(c); // see half_closed()
    else
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
  if (c->peer_done) // the client's FIN came: nothing left to drain
    return close_now(c);
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
  if (!c->reading && !c->closed && !c->peer_done &&
      uv_read_start(c->stream(), &impl::on_alloc, &impl::on_read) == 0)
    c->reading = true;
}

void http_server::impl::read_off(conn* c) {
  if (c->reading)
    uv_read_stop(c->stream());
  c->reading = false;
}

} // namespace atlas
