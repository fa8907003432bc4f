// The cluster port: TLS to the peer, a socketpair to CAF, and between them
// the framer and the guard. Everything runs on the loop thread.
//
//   peer (TCP, TLS) --decrypt--> basp_framer --> basp_guard --> CAF (socketpair)
//   peer (TCP, TLS) <--encrypt-------------------------------- CAF

#include "adapters/caf_front.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "adapters/basp_guard.hpp"
#include "adapters/tcp_listen.hpp"

namespace atlas {

namespace {

constexpr auto call_timeout = std::chrono::seconds(10); // listen()/close() waiting on the loop
constexpr uint64_t flush_ms = 5000; // after one side ended, the other gets this long to drain
constexpr size_t read_size = 64 << 10;

std::string address_of(const sockaddr_storage& sa) {
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

bool is_loopback(const sockaddr_storage& sa) {
  if (sa.ss_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&sa)->sin_addr.s_addr) >> 24) == 127;
  if (sa.ss_family != AF_INET6)
    return false;
  auto& a = reinterpret_cast<const sockaddr_in6*>(&sa)->sin6_addr;
  static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return IN6_IS_ADDR_LOOPBACK(&a) || (std::memcmp(a.s6_addr, v4_mapped, 12) == 0 && a.s6_addr[12] == 127);
}

uv_stream_t* stream(void* h) {
  return static_cast<uv_stream_t*>(h);
}

} // namespace

// All members below the atomics belong to the loop thread.
struct caf_front::impl : std::enable_shared_from_this<caf_front::impl> {
  struct relay;
  using ready_fn = std::function<void(int, const peer_identity&)>;
  using failed_fn = std::function<void(const std::string&)>;

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
  relay* make_relay(uv_loop_t* l, bool inbound);
  void accept(uv_stream_t* server);
  void start_dial(uv_loop_t* l, const sockaddr* addr, std::string name, std::string role,
                  ready_fn ready, failed_fn failed);
  void start_tls(relay* r);
  std::shared_ptr<tls_context> tls_now(std::string& error);
  bool admit(relay* r);
  void attach(relay* r);
  void from_peer(relay* r, const char* data, size_t n);
  void to_caf(relay* r, std::string_view plain);
  void from_caf(relay* r, const char* data, size_t n);
  void send(relay* r, uv_stream_t* to, std::string_view data);
  void side_ended(relay* r, uv_stream_t* ended);
  void close_relay(relay* r, const std::string& why = {});
  void pause_if_full(relay* r, uv_stream_t* to);
  void read_on(relay* r, uv_stream_t* s);
  void read_off(relay* r, uv_stream_t* s);

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
  relay(impl* f, bool in) : front(f), keep(f->shared_from_this()), inbound(in),
                            framer(f->opts.limits), out_framer({UINT32_MAX, UINT32_MAX}) {}

  impl* front;
  std::shared_ptr<impl> keep; // close callbacks may run after ~caf_front
  bool inbound;               // the peer connected to us
  uv_tcp_t peer{};
  uv_pipe_t caf{};            // our end of CAF's socketpair, once attached
  uv_timer_t timer{};         // the handshake's deadline, then the flush's
  uv_connect_t connect{};
  uv_shutdown_t shut{};
  int open_handles = 3;
  basp_framer framer;     // peer -> CAF
  basp_framer out_framer; // CAF -> peer
  std::unique_ptr<tls_session> tls;
  std::unique_ptr<basp_guard> guard;
  peer_identity who;
  std::string name;      // the peer's address (and identity, once known), for the log
  std::string want_role; // dialled: the role the server must show
  ready_fn ready;
  failed_fn failed;
  bool admitted = false; // its certificate's role may be here
  bool attached = false;
  bool peer_reading = false, caf_reading = false, peer_ended = false, caf_ended = false;
  bool closed = false;

  uv_stream_t* peer_s() { return stream(&peer); }
  uv_stream_t* caf_s() { return stream(&caf); }
  bool ended(const uv_stream_t* s) const {
    return s == reinterpret_cast<const uv_stream_t*>(&peer) ? peer_ended : caf_ended;
  }
  bool& reading(const uv_stream_t* s) {
    return s == reinterpret_cast<const uv_stream_t*>(&peer) ? peer_reading : caf_reading;
  }
  uv_stream_t* other(const uv_stream_t* s) {
    return s == reinterpret_cast<const uv_stream_t*>(&peer) ? caf_s() : peer_s();
  }
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
    close_relay(r, "the node is closing its cluster port");
}

// -- relays ---------------------------------------------------------------------

caf_front::impl::relay* caf_front::impl::make_relay(uv_loop_t* l, bool inbound) {
  auto* r = new relay(this, inbound);
  uv_tcp_init(l, &r->peer);
  uv_pipe_init(l, &r->caf, 0);
  uv_timer_init(l, &r->timer);
  r->peer.data = r->caf.data = r->timer.data = r;
  relays.insert(r);
  ++open_relays;
  uv_tcp_nodelay(&r->peer, 1); // BASP heartbeats and handshakes are small
  // A peer that does not complete its handshake in time holds nothing.
  uv_timer_start(&r->timer, [](uv_timer_t* t) {
    auto* x = static_cast<relay*>(t->data);
    if (!x->closed && !x->attached)
      x->front->close_relay(x, "no TLS handshake within "
                                 + std::to_string(x->front->opts.handshake_ms / 1000) + " s");
  }, opts.handshake_ms, 0);
  return r;
}

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
  relay* r = make_relay(server->loop, true);
  if (uv_accept(server, r->peer_s()) != 0)
    return close_relay(r);
  sockaddr_storage sa{};
  int len = sizeof sa;
  if (uv_tcp_getpeername(&r->peer, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return close_relay(r);
  r->name = address_of(sa);
  if (!opts.tls) {
    if (!is_loopback(sa)) // cluster.tls: false is for one machine only
      return close_relay(r, "plaintext (cluster.tls: false) is refused from other machines");
    r->who = {"", "worker", false}; // named by its join (peer_directory::name_unverified)
    return attach(r);
  }
  start_tls(r);
}

void caf_front::impl::start_dial(uv_loop_t* l, const sockaddr* addr, std::string name,
                                 std::string role, ready_fn ready, failed_fn failed) {
  relay* r = make_relay(l, false);
  r->name = std::move(name);
  r->want_role = std::move(role);
  r->ready = std::move(ready);
  r->failed = std::move(failed);
  r->connect.data = r;
  if (int rc = uv_tcp_connect(&r->connect, &r->peer, addr, &impl::on_connected); rc != 0)
    close_relay(r, uv_strerror(rc));
}

void caf_front::impl::on_connected(uv_connect_t* req, int status) {
  auto* r = static_cast<relay*>(req->data);
  if (r->closed)
    return;
  impl& f = *r->front;
  if (status < 0)
    return f.close_relay(r, uv_strerror(status));
  if (!f.opts.tls) {
    sockaddr_storage sa{};
    int len = sizeof sa;
    uv_tcp_getpeername(&r->peer, reinterpret_cast<sockaddr*>(&sa), &len);
    if (!is_loopback(sa))
      return f.close_relay(r, "plaintext (cluster.tls: false) is refused to other machines");
    r->who = {"", "master", false};
    return f.attach(r);
  }
  f.start_tls(r);
}

std::shared_ptr<tls_context> caf_front::impl::tls_now(std::string& error) {
  return opts.tls(error);
}

void caf_front::impl::start_tls(relay* r) {
  std::string error;
  auto ctx = tls_now(error);
  if (!ctx)
    return close_relay(r, error);
  r->tls = std::make_unique<tls_session>(std::move(ctx), r->inbound);
  std::string hello;
  if (auto st = r->tls->start(hello); !st)
    return close_relay(r, st.error());
  if (!hello.empty())
    send(r, r->peer_s(), hello);
  read_on(r, r->peer_s());
}

// TLS is up: the peer's certificate must show a role that may be here.
bool caf_front::impl::admit(relay* r) {
  r->who = r->tls->peer();
  bool allowed = r->inbound ? opts.roles.count(r->who.role) > 0 : r->who.role == r->want_role;
  if (!allowed) {
    close_relay(r, "its certificate's role '" + r->who.role + "' "
                     + (r->inbound ? "may not connect here" : "is not '" + r->want_role + "'"));
    return false;
  }
  r->admitted = true;
  r->name += " (" + r->who.name + ", " + r->who.role + ")";
  return true;
}

// The peer is known: CAF gets its end of a new socketpair.
void caf_front::impl::attach(relay* r) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return close_relay(r, std::string("socketpair: ") + std::strerror(errno));
  if (uv_pipe_open(&r->caf, fds[0]) != 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return close_relay(r, "cannot open CAF's end of the connection");
  }
  r->attached = true;
  uv_timer_stop(&r->timer);
  r->guard = std::make_unique<basp_guard>(*opts.peers, r->who, r->inbound);
  if (r->inbound) {
    if (opts.attach)
      opts.attach(fds[1], r->who);
    else
      ::close(fds[1]);
  } else {
    auto ready = std::exchange(r->ready, nullptr);
    r->failed = nullptr;
    ready(fds[1], r->who);
  }
  read_on(r, r->peer_s());
  read_on(r, r->caf_s());
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
  std::string passed;
  if (auto why = r->guard->check(whole, passed); !why.empty())
    return close_relay(r, "refused " + why);
  if (!passed.empty())
    send(r, r->caf_s(), passed);
}

void caf_front::impl::from_caf(relay* r, const char* data, size_t n) {
  std::string whole; // CAF's own messages: cut only to see the requests in them
  if (r->out_framer.feed({data, n}, whole) == basp_framer::verdict::too_large)
    return close_relay(r, "CAF wrote a message larger than 4 GiB");
  if (whole.empty())
    return;
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

namespace {

struct resolve_req {
  uv_getaddrinfo_t req;
  std::shared_ptr<caf_front::impl> front;
  std::string name, role;
  caf_front::impl::ready_fn ready;
  caf_front::impl::failed_fn failed;
};

} // namespace

void caf_front::dial(std::string host, uint16_t port, std::string role,
                     std::function<void(int, const peer_identity&)> ready,
                     std::function<void(const std::string&)> failed) {
  impl_->listen_called = true; // close() has relays to close
  auto* q = new resolve_req{uv_getaddrinfo_t{}, impl_, host + ":" + std::to_string(port),
                            std::move(role), std::move(ready), std::move(failed)};
  impl_->post([q, host = std::move(host), port](impl& f) {
    q->req.data = q;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    auto done = [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
      std::unique_ptr<resolve_req> q{static_cast<resolve_req*>(req->data)};
      impl& f = *q->front;
      if (status < 0 || res == nullptr || f.stopped) {
        q->failed(q->name + ": " + (f.stopped ? "closed" : uv_strerror(status)));
      } else {
        f.start_dial(req->loop, res->ai_addr, q->name, q->role, std::move(q->ready),
                     std::move(q->failed));
      }
      uv_freeaddrinfo(res);
    };
    // Brackets from an IPv6 endpoint are not part of the address.
    auto name = host.size() > 1 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
    if (int rc = uv_getaddrinfo(f.loop.raw(), &q->req, done, name.c_str(),
                                std::to_string(port).c_str(), &hints); rc != 0) {
      std::unique_ptr<resolve_req> owned{q};
      owned->failed(owned->name + ": " + uv_strerror(rc));
    }
  });
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
