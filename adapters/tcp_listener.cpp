#include "adapters/tcp_listener.hpp"

#include <chrono>
#include <future>
#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace atlas {

namespace {

constexpr auto call_timeout = std::chrono::seconds(10); // listen()/close() waiting on the loop

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

std::string host_port(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// -- tcp_listener -----------------------------------------------------------------

tcp_listener::tcp_listener(event_loop& l, std::string host, uint16_t port, std::string w,
                           std::string closed_reason)
  : loop(l), where(std::move(w)), host_(std::move(host)), port_(port),
    closed_reason_(std::move(closed_reason)) {}

status tcp_listener::listen() {
  try {
    listen_called = true;
    if (loop.in_loop_thread())
      return listen_here();
    if (!loop.running())
      return status::fail(where + ": the event loop is not running");
    auto done = std::make_shared<std::promise<status>>();
    auto result = done->get_future();
    post_here([this, done] {
      status st = status::fail(where + ": out of memory");
      try {
        st = listen_here();
      } catch (...) {
      }
      done->set_value(std::move(st));
    });
    if (result.wait_for(call_timeout) != std::future_status::ready)
      return status::fail(where + ": the event loop is not running");
    return result.get();
  } catch (...) {
    return status::fail(where + ": out of memory");
  }
}

void tcp_listener::close() {
  try {
    if (stopped.exchange(true))
      return;
    stopping();
    // Nothing on the loop to close, or no loop left to close it (it closed
    // every handle when it stopped).
    if (!listen_called || !loop.running())
      return;
    if (loop.in_loop_thread())
      return close_here();
    auto done = std::make_shared<std::promise<void>>();
    auto closed = done->get_future();
    post_here([this, done] {
      close_here();
      done->set_value();
    });
    closed.wait_for(call_timeout); // bounded: the loop may stop before it gets to this
  } catch (...) {
  }
}

status tcp_listener::listen_here() {
  if (stopped)
    return status::fail(where + ": " + closed_reason_);
  if (tcp_ != nullptr)
    return status::fail(where + ": already listening");
  if (auto st = prepare(); !st)
    return st;
  std::string error;
  tcp_ = listen_tcp(loop.raw(), host_, port_, this, &tcp_listener::on_connection, error);
  if (tcp_ == nullptr)
    return status::fail(where + ": " + error);
  bound_port = atlas::bound_port(tcp_);
  return status::success();
}

void tcp_listener::close_here() {
  if (tcp_ != nullptr)
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(tcp_, nullptr)),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  close_connections();
}

void tcp_listener::post_here(std::function<void()> fn) {
  try {
    loop.post([self = shared_from_this(), fn = std::move(fn)](uv_loop_t*) {
      try {
        fn();
      } catch (...) {
      }
    });
  } catch (...) {
  }
}

void tcp_listener::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<tcp_listener*>(server->data);
  if (status < 0 || self->stopped)
    return;
  try {
    self->accept(server);
  } catch (...) {
  }
}

} // namespace atlas
