// The cluster port's front: accept a peer, connect to CAF on loopback, then
// relay both ways on the loop thread. Peer -> CAF goes through a basp_framer
// (whole messages only, within limits); CAF -> peer is copied unchanged.

#include "adapters/caf_front.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <string_view>
#include <mutex>
#include <unordered_set>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "adapters/tcp_listen.hpp"

namespace atlas {

namespace {

constexpr auto call_timeout = std::chrono::seconds(10); // listen()/close() waiting on the loop
constexpr uint64_t flush_ms = 5000; // after one side ended, the other gets this long to drain
constexpr size_t read_size = 64 << 10;

std::string peer_name(const uv_tcp_t* tcp) {
  sockaddr_storage sa{};
  int len = sizeof sa;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return "unknown";
  char ip[64] = {};
  if (sa.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&sa);
    uv_ip6_name(a, ip, sizeof ip);
    std::string name{ip};
    if (name.rfind("::ffff:", 0) == 0 && name.find('.') != std::string::npos)
      return name.substr(7) + ":" + std::to_string(ntohs(a->sin6_port)); // IPv4 on "::"
    return "[" + name + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  auto* a = reinterpret_cast<const sockaddr_in*>(&sa);
  uv_ip4_name(a, ip, sizeof ip);
  return std::string{ip} + ":" + std::to_string(ntohs(a->sin_port));
}

uv_stream_t* stream(uv_tcp_t* t) {
  return reinterpret_cast<uv_stream_t*>(t);
}

} // namespace

// All members below `mtx`-free atomics belong to the loop thread.
struct caf_front::impl : std::enable_shared_from_this<caf_front::impl> {
  struct relay;

  impl(event_loop& l, caf_front_options o) : loop(l), opts(std::move(o)) {}

  std::string where() const {
    const std::string port = std::to_string(opts.port);
    if (opts.host.empty())
      return "cannot listen on CAF port " + port;
    const bool v6 = opts.host.find(':') != std::string::npos;
    return "cannot listen on CAF port " + (v6 ? "[" + opts.host + "]" : opts.host) + ":" + port;
  }

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

  status do_listen(uv_loop_t* l);
  void do_close();

  // -- relays --
  void accept(uv_stream_t* server);
  void from_peer(relay* r, const char* data, size_t n);
  void from_caf(relay* r, const char* data, size_t n);
  void send(relay* r, uv_tcp_t* to, std::string_view data);
  void side_ended(relay* r, uv_tcp_t* ended);
  void close_relay(relay* r);
  void pause_if_full(relay* r, uv_tcp_t* to);
  void read_on(relay* r, uv_tcp_t* t);
  void read_off(relay* r, uv_tcp_t* t);

  static void on_connection(uv_stream_t* server, int status);
  static void on_connected(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_closed(uv_handle_t* h);

  event_loop& loop;
  const caf_front_options opts;
  std::atomic<uint16_t> bound_port{0};
  std::atomic<bool> stopped{false};
  std::atomic<bool> listen_called{false};
  std::atomic<size_t> open_relays{0};

  uv_tcp_t* listener = nullptr;
  std::unordered_set<relay*> relays;
  std::array<char, read_size> read_buf; // reads are handled one at a time
};

// One peer's connection and its twin towards CAF; deletes itself once its
// three handles are closed.
struct caf_front::impl::relay {
  explicit relay(impl* f) : front(f), keep(f->shared_from_this()), framer(f->opts.limits) {}

  impl* front;
  std::shared_ptr<impl> keep; // close callbacks may run after ~caf_front
  uv_tcp_t peer{};
  uv_tcp_t caf{};
  uv_timer_t timer{};
  uv_connect_t connect{};
  uv_shutdown_t shut{};
  int open_handles = 3;
  basp_framer framer;
  std::string name; // the peer's address, for the log
  bool peer_reading = false, caf_reading = false, peer_ended = false, caf_ended = false;
  bool closed = false;

  bool ended(const uv_tcp_t* t) const { return t == &peer ? peer_ended : caf_ended; }
  bool& reading(const uv_tcp_t* t) { return t == &peer ? peer_reading : caf_reading; }
  uv_tcp_t* other(const uv_tcp_t* t) { return t == &peer ? &caf : &peer; }
};

namespace {

struct write_req {
  uv_write_t req;
  caf_front::impl::relay* r;
  std::string data;
};

} // namespace

// -- listening ------------------------------------------------------------------

status caf_front::impl::do_listen(uv_loop_t* l) {
  if (stopped)
    return status::fail(where() + ": closed");
  if (listener != nullptr)
    return status::fail(where() + ": already listening");
  // An empty host: every interface, as CAF's publish() without an address.
  std::string error;
  listener = listen_tcp(l, opts.host, opts.port, this, &impl::on_connection, error);
  if (listener == nullptr)
    return status::fail(where() + ": " + error);
  bound_port = atlas::bound_port(listener);
  return status::success();
}

void caf_front::impl::do_close() {
  if (listener != nullptr)
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(listener, nullptr)),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  for (relay* r : std::vector<relay*>(relays.begin(), relays.end()))
    close_relay(r);
}

// -- relays ---------------------------------------------------------------------

void caf_front::impl::on_connection(uv_stream_t* server, int status) {
  auto* f = static_cast<impl*>(server->data);
  if (status < 0 || f->stopped)
    return;
  try {
    f->accept(server);
  } catch (...) {
  }
}

void caf_front::impl::accept(uv_stream_t* server) {
  auto* r = new relay(this);
  uv_tcp_init(server->loop, &r->peer);
  uv_tcp_init(server->loop, &r->caf);
  uv_timer_init(server->loop, &r->timer);
  r->peer.data = r->caf.data = r->timer.data = r;
  relays.insert(r);
  ++open_relays;
  if (uv_accept(server, stream(&r->peer)) != 0)
    return close_relay(r);
  r->name = peer_name(&r->peer);
  uv_tcp_nodelay(&r->peer, 1); // BASP heartbeats and handshakes are small
  uv_tcp_nodelay(&r->caf, 1);
  sockaddr_in target{};
  uv_ip4_addr("127.0.0.1", opts.target_port, &target);
  r->connect.data = r;
  if (uv_tcp_connect(&r->connect, &r->caf, reinterpret_cast<const sockaddr*>(&target),
                     &impl::on_connected) != 0)
    close_relay(r);
}

void caf_front::impl::on_connected(uv_connect_t* req, int status) {
  auto* r = static_cast<relay*>(req->data);
  if (r->closed)
    return;
  impl& f = *r->front;
  if (status < 0) {
    spdlog::warn("CAF port: cannot relay the connection from {} to CAF on 127.0.0.1:{}: {}",
                 r->name, f.opts.target_port, uv_strerror(status));
    return f.close_relay(r);
  }
  // The peer is read only now: nothing it sends waits on our side meanwhile.
  f.read_on(r, &r->peer);
  f.read_on(r, &r->caf);
}

void caf_front::impl::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto& b = static_cast<relay*>(h->data)->front->read_buf;
  *buf = uv_buf_init(b.data(), static_cast<unsigned>(b.size()));
}

void caf_front::impl::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* r = static_cast<relay*>(s->data);
  impl& f = *r->front;
  if (n == 0 || r->closed)
    return;
  auto* t = reinterpret_cast<uv_tcp_t*>(s);
  try {
    if (n == UV_EOF)
      return f.side_ended(r, t);
    if (n < 0)
      return f.close_relay(r);
    if (t == &r->peer)
      f.from_peer(r, buf->base, static_cast<size_t>(n));
    else
      f.from_caf(r, buf->base, static_cast<size_t>(n));
  } catch (...) { // out of memory: this connection goes, the node stays
    f.close_relay(r);
  }
}

void caf_front::impl::from_peer(relay* r, const char* data, size_t n) {
  std::string whole;
  if (r->framer.feed({data, n}, whole) == basp_framer::verdict::too_large) {
    const bool first = r->framer.messages() == 0;
    spdlog::warn("CAF port: closed the connection from {}: its {} BASP message (operation {}) "
                 "announced {} bytes of payload, more than the {} allowed",
                 r->name, first ? "first" : "next", r->framer.refused_operation(),
                 r->framer.refused_payload(),
                 first ? opts.limits.first_payload : opts.limits.payload);
    return close_relay(r);
  }
  if (!whole.empty())
    send(r, &r->caf, whole);
}

void caf_front::impl::from_caf(relay* r, const char* data, size_t n) {
  send(r, &r->peer, std::string_view{data, n});
}

void caf_front::impl::send(relay* r, uv_tcp_t* to, std::string_view data) {
  if (r->closed)
    return;
  // Most writes complete at once; only the rest is copied and queued.
  uv_buf_t now = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
  const int sent = uv_try_write(stream(to), &now, 1);
  if (sent == static_cast<int>(data.size()))
    return;
  if (sent > 0)
    data.remove_prefix(static_cast<size_t>(sent));
  else if (sent != UV_EAGAIN)
    return close_relay(r);
  auto* w = new write_req{uv_write_t{}, r, std::string{data}};
  w->req.data = w;
  const uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, stream(to), &buf, 1, &impl::on_write) != 0) {
    delete w;
    return close_relay(r);
  }
  pause_if_full(r, to);
}

void caf_front::impl::pause_if_full(relay* r, uv_tcp_t* to) {
  if (uv_stream_get_write_queue_size(stream(to)) > opts.high_water)
    read_off(r, r->other(to));
}

void caf_front::impl::on_write(uv_write_t* req, int status) {
  auto* w = static_cast<write_req*>(req->data);
  relay* r = w->r;
  auto* to = reinterpret_cast<uv_tcp_t*>(req->handle);
  delete w;
  if (r->closed)
    return;
  impl& f = *r->front;
  if (status < 0)
    return f.close_relay(r);
  const size_t queued = uv_stream_get_write_queue_size(stream(to));
  if (queued <= f.opts.high_water / 2 && !r->ended(r->other(to)))
    f.read_on(r, r->other(to));
}

// One side sent FIN: what is queued towards the other side still goes (a
// message cut short by the FIN does not), then both close.
void caf_front::impl::side_ended(relay* r, uv_tcp_t* ended) {
  if (ended == &r->peer)
    r->peer_ended = true;
  else
    r->caf_ended = true;
  read_off(r, ended);
  if (r->peer_ended && r->caf_ended)
    return close_relay(r);
  r->shut.data = r;
  if (uv_shutdown(&r->shut, stream(r->other(ended)), [](uv_shutdown_t* req, int) {
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

void caf_front::impl::close_relay(relay* r) {
  if (r->closed)
    return;
  r->closed = true;
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

void caf_front::impl::read_on(relay* r, uv_tcp_t* t) {
  bool& on = r->reading(t);
  if (!on && !r->closed && !r->ended(t)
      && uv_read_start(stream(t), &impl::on_alloc, &impl::on_read) == 0)
    on = true;
}

void caf_front::impl::read_off(relay* r, uv_tcp_t* t) {
  bool& on = r->reading(t);
  if (on)
    uv_read_stop(stream(t));
  on = false;
}

// -- public API -----------------------------------------------------------------

caf_front::caf_front(event_loop& loop, caf_front_options opts)
  : impl_(std::make_shared<impl>(loop, std::move(opts))) {}

caf_front::~caf_front() {
  close();
}

status caf_front::listen() {
  try {
    impl_->listen_called = true;
    if (impl_->loop.in_loop_thread())
      return impl_->do_listen(impl_->loop.raw());
    if (!impl_->loop.running())
      return status::fail(impl_->where() + ": the event loop is not running");
    auto done = std::make_shared<std::promise<status>>();
    auto result = done->get_future();
    impl_->post([done](impl& f) {
      status st = status::fail(f.where() + ": out of memory");
      try {
        st = f.do_listen(f.loop.raw());
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

uint16_t caf_front::port() const {
  return impl_->bound_port;
}

size_t caf_front::connections() const {
  return impl_->open_relays;
}

void caf_front::close() {
  try {
    if (impl_->stopped.exchange(true))
      return;
    // Nothing on the loop to close, or no loop left to close it (it closed
    // every handle when it stopped).
    if (!impl_->listen_called || !impl_->loop.running())
      return;
    if (impl_->loop.in_loop_thread())
      return impl_->do_close();
    auto done = std::make_shared<std::promise<void>>();
    auto closed = done->get_future();
    impl_->post([done](impl& f) {
      f.do_close();
      done->set_value();
    });
    closed.wait_for(call_timeout); // bounded: the loop may stop before it gets to this
  } catch (...) {
  }
}

} // namespace atlas
