#pragma once

// What the HTTP server and the CAF port's front share: one listening TCP
// socket on an event_loop, listen() and close() callable from any thread,
// and post() to reach the loop. Each server's loop-side state derives from
// tcp_listener and adds its connections.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <uv.h>

#include "adapters/event_loop.hpp"
#include "adapters/status.hpp"

namespace atlas {

/// Binds `host`:`port` and listens, with `data` on the handle and
/// `on_connection` for new connections. An empty host means every
/// interface: IPv6 "::" (which also takes IPv4) where the system has IPv6,
/// else 0.0.0.0. Returns the handle (closed again on failure) or nullptr
/// with `error` set ("not an IP address" or libuv's message). Loop thread.
uv_tcp_t* listen_tcp(uv_loop_t* loop, const std::string& host, uint16_t port, void* data,
                     uv_connection_cb on_connection, std::string& error);

/// The port a listening handle is bound to (the one chosen for port 0).
uint16_t bound_port(const uv_tcp_t* tcp);

/// "host:port", with brackets around an IPv6 host.
std::string host_port(const std::string& host, uint16_t port);

/// The loop-side base of a TCP server. Owned by a shared_ptr: posted work
/// and open connections keep it alive, since libuv's close callbacks may run
/// after the server object is gone. Members belong to the loop thread unless
/// they are atomic or say otherwise.
class tcp_listener : public std::enable_shared_from_this<tcp_listener> {
public:
  tcp_listener(const tcp_listener&) = delete;
  tcp_listener& operator=(const tcp_listener&) = delete;
  virtual ~tcp_listener() = default;

  /// Any thread: prepare()s, binds and listens; inline on the loop thread,
  /// elsewhere waiting for the loop at most 10 s. Every error but
  /// prepare()'s starts with `where`.
  status listen();

  /// Any thread, once: stopping(), then on the loop the listener closes and
  /// close_connections() runs. Waits for the loop at most 10 s.
  void close();

  /// Any thread: runs `fn(self)` on the loop thread, where `self` is this as
  /// a `Self&`, kept alive until then. Exceptions (also from posting) are
  /// dropped: nothing unwinds into libuv or the caller.
  template <class Self, class F>
  void post(F fn) {
    post_here([self = static_cast<Self*>(this), fn = std::move(fn)]() mutable { fn(*self); });
  }

  event_loop& loop;
  const std::string where; // "cannot listen on …": how listen()'s errors begin
  std::atomic<uint16_t> bound_port{0};
  std::atomic<bool> stopped{false};
  std::atomic<bool> listen_called{false}; // close() has something on the loop to close

protected:
  /// `closed_reason` ends listen()'s error after close() ("closed").
  tcp_listener(event_loop& loop, std::string host, uint16_t port, std::string where,
               std::string closed_reason);

  /// Loop thread, before binding: what the server needs first.
  virtual status prepare() { return status::success(); }
  /// Loop thread: a connection waits on `server` for uv_accept(). Not
  /// called once stopped; exceptions are dropped (the listener stays).
  virtual void accept(uv_stream_t* server) = 0;
  /// Any thread, as close() begins, before anything is posted.
  virtual void stopping() {}
  /// Loop thread, after the listener closed: closes every connection.
  virtual void close_connections() = 0;

private:
  status listen_here();
  void close_here();
  void post_here(std::function<void()> fn);
  static void on_connection(uv_stream_t* server, int status);

  const std::string host_;
  const uint16_t port_;
  const std::string closed_reason_;
  uv_tcp_t* tcp_ = nullptr;
};

} // namespace atlas
