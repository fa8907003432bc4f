#pragma once

// CAF's side of the cluster port (adapters/caf_front.hpp): connections the
// front has checked reach CAF's BASP broker as socketpair ends, so CAF
// itself listens on no port and dials nobody.

#include <chrono>
#include <cstdint>

#include <caf/expected.hpp>

#include "messages/actors.hpp"

namespace atlas {

/// An accepted peer: CAF greets it as the server that published `door`
/// (its handshake names the door) and owns `fd` from now on.
void attach_inbound(caf::actor_system& sys, int fd, const cluster_actor& door, uint16_t port);

/// A dialled master: CAF handshakes as the client over `fd` (which it owns
/// from now on) and answers the door the master published. Blocks up to
/// `timeout`: call it off the actor threads.
caf::expected<cluster_actor> attach_outbound(caf::actor_system& sys, int fd, uint16_t port,
                                             std::chrono::seconds timeout);

} // namespace atlas
