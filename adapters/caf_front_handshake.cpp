// A new connection of caf_front, on the loop thread: accepted or dialled,
// then TLS (or, without it, a loopback peer only), the peer's role checked,
// and CAF handed its end of a socketpair. A peer gets opts.handshake_ms for
// all of it.

#include "adapters/caf_front_impl.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace atlas {

namespace {

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

} // namespace

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

void caf_front::impl::start_tls(relay* r) {
  std::string error;
  auto ctx = opts.tls(error);
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

} // namespace atlas
