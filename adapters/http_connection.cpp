// The connections of http_server, all on the loop thread: accept, read and
// hand each parsed request to the handler, then the timeouts, lingering and
// closing. Parsing is in http_request_parsing.cpp, answers in
// http_response_writing.cpp.

#include "adapters/http_server_impl.hpp"

#include <mutex>
#include <string>
#include <vector>

#include "adapters/http_wire.hpp"

namespace atlas {

using http_wire::json_error;

namespace {

constexpr uint64_t linger_ms = 1000; // input drained after the last answer, so no RST eats it

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

// -- connections ----------------------------------------------------------------

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
