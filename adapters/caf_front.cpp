// The cluster port's public calls (caf_front.hpp): listening and closing
// through tcp_listener, dialling after an asynchronous address lookup. The
// connections themselves are in caf_front_handshake.cpp and
// caf_front_relay.cpp.

#include "adapters/caf_front.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adapters/caf_front_impl.hpp"

namespace atlas {

namespace {

// "cannot listen on CAF port [host:]port": how listen()'s errors begin.
std::string listen_error_prefix(const caf_front_options& o) {
  return "cannot listen on CAF port "
         + (o.host.empty() ? std::to_string(o.port) : host_port(o.host, o.port));
}

} // namespace

caf_front::impl::impl(event_loop& l, caf_front_options o)
  : tcp_listener(l, o.host, o.port, listen_error_prefix(o), "closed"), opts(std::move(o)) {}

void caf_front::impl::close_connections() {
  for (relay* r : std::vector<relay*>(relays.begin(), relays.end()))
    close_relay(r, "the node is closing its cluster port");
}

// -- public API -----------------------------------------------------------------

caf_front::caf_front(event_loop& loop, caf_front_options opts)
  : impl_(std::make_shared<impl>(loop, std::move(opts))) {}

caf_front::~caf_front() {
  close();
}

status caf_front::listen() {
  return impl_->listen();
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
  impl_->post<impl>([q, host = std::move(host), port](impl& f) {
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
  impl_->close();
}

} // namespace atlas
