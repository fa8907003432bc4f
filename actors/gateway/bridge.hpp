#pragma once

#include "messages/actors.hpp"

namespace atlas {

class http_server;

/// Spawns the bridge between one libuv HTTP server and the gateway: the
/// server's handler sends each request here; answers go back through the
/// server's thread-safe respond/stream calls. The server must outlive it.
http_bridge_actor spawn_http_bridge(caf::actor_system& sys, http_server* server,
                                    http_gateway_actor gateway);

} // namespace atlas
