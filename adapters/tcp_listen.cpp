#include "adapters/tcp_listen.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace atlas {

namespace {

int bind_and_listen(uv_loop_t* loop, const sockaddr* addr, void* data, uv_connection_cb cb,
                    uv_tcp_t*& out) {
  auto* tcp = new uv_tcp_t{};
  uv_tcp_init(loop, tcp);
  tcp->data = data;
  int r = uv_tcp_bind(tcp, addr, 0); // IPv6 "::" also takes IPv4 (not IPV6ONLY)
  if (r == 0) // libuv reports most bind errors (address in use) only here
    r = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 511, cb);
  if (r != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return r;
  }
  out = tcp;
  return 0;
}

} // namespace

uv_tcp_t* listen_tcp(uv_loop_t* loop, const std::string& host, uint16_t port, void* data,
                     uv_connection_cb on_connection, std::string& error) {
  uv_tcp_t* tcp = nullptr;
  int r = 0;
  if (host.empty()) {
    sockaddr_in6 any6{};
    uv_ip6_addr("::", port, &any6);
    r = bind_and_listen(loop, reinterpret_cast<const sockaddr*>(&any6), data, on_connection, tcp);
    if (r == UV_EAFNOSUPPORT || r == UV_EADDRNOTAVAIL) {
      sockaddr_in any4{};
      uv_ip4_addr("0.0.0.0", port, &any4);
      r = bind_and_listen(loop, reinterpret_cast<const sockaddr*>(&any4), data, on_connection,
                          tcp);
    }
  } else {
    sockaddr_storage addr{};
    r = host.find(':') != std::string::npos
          ? uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr))
          : uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
    if (r != 0) {
      error = "not an IP address";
      return nullptr;
    }
    r = bind_and_listen(loop, reinterpret_cast<const sockaddr*>(&addr), data, on_connection, tcp);
  }
  if (r != 0)
    error = uv_strerror(r);
  return tcp;
}

uint16_t bound_port(const uv_tcp_t* tcp) {
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

} // namespace atlas
