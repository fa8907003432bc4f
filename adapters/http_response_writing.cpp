// How http_server answers, on the loop thread: a whole response or a chunked
// stream, the writes and their completion, and then the next pipelined
// request or the end of the connection.

#include "adapters/http_server_impl.hpp"
#include "adapters/wire_counters.hpp"

#include <string>
#include <string_view>

#include "adapters/http_wire.hpp"

namespace atlas {

using http_wire::asks_to_close;
using http_wire::bodyless;
using http_wire::chunk;
using http_wire::json_error;
using http_wire::response_head;

namespace {

constexpr size_t max_stream_backlog = 16 << 20; // a follower this far behind is dropped

struct write_req {
  uv_write_t req;
  http_server::impl::conn* c;
  std::string data;
};

} // namespace

void http_server::impl::reject(conn* c, uint16_t code, std::string_view message) {
  http_response r;
  r.status = code;
  r.body = json_error(message);
  reject(c, std::move(r));
}

void http_server::impl::reject(conn* c, http_response r) {
  ++(r.status >= 500 ? wire_counters::http_refused_5xx : wire_counters::http_refused_4xx);
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

} // namespace atlas
