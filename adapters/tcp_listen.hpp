#pragma once

// Opening a listening TCP socket on a libuv loop, shared by the HTTP server
// and the CAF port's front. Loop thread only.

#include <cstdint>
#include <string>

#include <uv.h>

namespace atlas {

/// Binds `host`:`port` and listens, with `data` on the handle and
/// `on_connection` for new connections. An empty host means every
/// interface: IPv6 "::" (which also takes IPv4) where the system has IPv6,
/// else 0.0.0.0. Returns the handle (closed again on failure) or nullptr
/// with `error` set ("not an IP address" or libuv's message).
uv_tcp_t* listen_tcp(uv_loop_t* loop, const std::string& host, uint16_t port, void* data,
                     uv_connection_cb on_connection, std::string& error);

/// The port a listening handle is bound to (the one chosen for port 0).
uint16_t bound_port(const uv_tcp_t* tcp);

} // namespace atlas
