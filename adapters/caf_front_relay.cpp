// The bytes of caf_front's connections, on the loop thread: from the peer
// through TLS, basp_framer and basp_guard to CAF, and back; writes with
// back-pressure both ways; a FIN on one side flushed to the other; closing.
//
//   peer (TCP, TLS) --decrypt--> basp_framer --> basp_guard --> CAF (socketpair)
//   peer (TCP, TLS) <--encrypt-------------------------------- CAF

#include "adapters/caf_front_impl.hpp"
#include "adapters/wire_counters.hpp"

#include <string>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

namespace atlas {

namespace {

constexpr uint64_t flush_ms = 5000; // after one side ended, the other gets this long to drain

struct write_req {
  uv_write_t req;
  caf_front::impl::relay* r;
  std::string data;
};

} // namespace

void caf_front::impl::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto& b = static_cast<relay*>(h->data)->front->read_buf;
  *buf = uv_buf_init(b.data(), static_cast<unsigned>(b.size()));
}

void caf_front::impl::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* r = static_cast<relay*>(s->data);
  impl& f = *r->front;
  if (n == 0 || r->closed)
    return;
  try {
    if (n == UV_EOF)
      return f.side_ended(r, s);
    if (n < 0)
      return f.close_relay(r, uv_strerror(static_cast<int>(n)));
    if (s == r->peer_s())
      f.from_peer(r, buf->base, static_cast<size_t>(n));
    else
      f.from_caf(r, buf->base, static_cast<size_t>(n));
  } catch (...) { // out of memory: this connection goes, the node stays
    f.close_relay(r, "out of memory");
  }
}

void caf_front::impl::from_peer(relay* r, const char* data, size_t n) {
  if (!r->tls)
    return to_caf(r, {data, n});
  std::string plain, back;
  auto st = r->tls->feed({data, n}, plain, back);
  if (!back.empty())
    send(r, r->peer_s(), back);
  if (!st)
    return close_relay(r, st.error());
  if (!r->attached && r->tls->established()) {
    if (!r->admitted && !admit(r))
      return;
    // A dialled link is up once the master speaks: in TLS 1.3 a client
    // finishes its handshake before the server has checked its
    // certificate, and a refusal arrives as an alert instead.
    if (r->inbound || !plain.empty())
      attach(r);
  }
  if (!plain.empty() && !r->closed)
    to_caf(r, plain);
}

void caf_front::impl::to_caf(relay* r, std::string_view plain) {
  std::string whole;
  const auto before = r->framer.messages();
  if (r->framer.feed(plain, whole) == basp_framer::verdict::too_large) {
    const bool first = r->framer.messages() == 0;
    return close_relay(r, "its " + std::string(first ? "first" : "next") + " BASP message (operation "
                            + std::to_string(r->framer.refused_operation()) + ") announced "
                            + std::to_string(r->framer.refused_payload())
                            + " bytes of payload, more than the "
                            + std::to_string(first ? opts.limits.first_payload : opts.limits.payload)
                            + " allowed");
  }
  if (whole.empty())
    return;
  wire_counters::cluster_frames_in += r->framer.messages() - before;
  wire_counters::cluster_bytes_in += whole.size();
  std::string passed;
  if (auto why = r->guard->check(whole, passed); !why.empty())
    return close_relay(r, "refused " + why);
  if (!passed.empty())
    send(r, r->caf_s(), passed);
}

void caf_front::impl::from_caf(relay* r, const char* data, size_t n) {
  std::string whole; // CAF's own messages: cut only to see the requests in them
  const auto before = r->out_framer.messages();
  if (r->out_framer.feed({data, n}, whole) == basp_framer::verdict::too_large)
    return close_relay(r, "CAF wrote a message larger than 4 GiB");
  if (whole.empty())
    return;
  wire_counters::cluster_frames_out += r->out_framer.messages() - before;
  wire_counters::cluster_bytes_out += whole.size();
  r->guard->sent(whole);
  if (!r->tls)
    return send(r, r->peer_s(), whole);
  std::string cipher;
  if (auto st = r->tls->write(whole, cipher); !st)
    return close_relay(r, st.error());
  send(r, r->peer_s(), cipher);
}

void caf_front::impl::send(relay* r, uv_stream_t* to, std::string_view data) {
  if (r->closed)
    return;
  // Most writes complete at once; only the rest is copied and queued.
  uv_buf_t now = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
  const int sent = uv_stream_get_write_queue_size(to) == 0 ? uv_try_write(to, &now, 1) : UV_EAGAIN;
  if (sent == static_cast<int>(data.size()))
    return;
  if (sent > 0)
    data.remove_prefix(static_cast<size_t>(sent));
  else if (sent != UV_EAGAIN)
    return close_relay(r, uv_strerror(sent));
  auto* w = new write_req{uv_write_t{}, r, std::string{data}};
  w->req.data = w;
  const uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, to, &buf, 1, &impl::on_write) != 0) {
    delete w;
    return close_relay(r);
  }
  pause_if_full(r, to);
}

void caf_front::impl::pause_if_full(relay* r, uv_stream_t* to) {
  if (uv_stream_get_write_queue_size(to) > opts.high_water)
    read_off(r, r->other(to));
}

void caf_front::impl::on_write(uv_write_t* req, int status) {
  auto* w = static_cast<write_req*>(req->data);
  relay* r = w->r;
  uv_stream_t* to = req->handle;
  delete w;
  if (r->closed)
    return;
  impl& f = *r->front;
  if (status < 0)
    return f.close_relay(r, uv_strerror(status));
  const size_t queued = uv_stream_get_write_queue_size(to);
  if (queued <= f.opts.high_water / 2 && !r->ended(r->other(to)) && r->attached)
    f.read_on(r, r->other(to));
}

// One side sent FIN: what is queued towards the other side still goes (a
// message cut short by the FIN does not), then both close.
void caf_front::impl::side_ended(relay* r, uv_stream_t* ended) {
  if (!r->attached)
    return close_relay(r, "closed during the handshake");
  if (ended == r->peer_s())
    r->peer_ended = true;
  else
    r->caf_ended = true;
  read_off(r, ended);
  if (r->peer_ended && r->caf_ended)
    return close_relay(r);
  r->shut.data = r;
  if (uv_shutdown(&r->shut, r->other(ended), [](uv_shutdown_t* req, int) {
        auto* x = static_cast<relay*>(req->data);
        if (!x->closed)
          x->front->close_relay(x);
      }) != 0)
    return close_relay(r);
  uv_timer_start(&r->timer, [](uv_timer_t* t) {
    auto* x = static_cast<relay*>(t->data);
    if (!x->closed)
      x->front->close_relay(x);
  }, flush_ms, 0);
}

void caf_front::impl::close_relay(relay* r, const std::string& why) {
  if (r->closed)
    return;
  r->closed = true;
  if (!why.empty())
    spdlog::warn("CAF port: closed the connection {} {}: {}", r->inbound ? "from" : "to",
                 r->name, why);
  if (auto failed = std::exchange(r->failed, nullptr))
    failed(why.empty() ? "the connection closed" : why);
  relays.erase(r);
  --open_relays;
  uv_close(reinterpret_cast<uv_handle_t*>(&r->peer), &impl::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&r->caf), &impl::on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&r->timer), &impl::on_closed);
}

void caf_front::impl::on_closed(uv_handle_t* h) {
  auto* r = static_cast<relay*>(h->data);
  if (--r->open_handles == 0)
    delete r; // may release the last reference to the impl
}

void caf_front::impl::read_on(relay* r, uv_stream_t* s) {
  bool& on = r->reading(s);
  if (!on && !r->closed && !r->ended(s) && uv_read_start(s, &impl::on_alloc, &impl::on_read) == 0)
    on = true;
}

void caf_front::impl::read_off(relay* r, uv_stream_t* s) {
  bool& on = r->reading(s);
  if (on)
    uv_read_stop(s);
  on = false;
}

} // namespace atlas
