#pragma once

// Who sent the message an actor is handling, from the connection it came on
// (the peer's certificate, bound to its CAF node id by the cluster port's
// guard), never from a field of the message. Every handler a peer can reach
// checks this before it touches any state.

#include <string>
#include <string_view>

#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "adapters/tls.hpp"

namespace atlas {

struct message_sender {
  bool local = false; ///< this process (anonymous messages are local: basp_guard)
  peer_identity peer; ///< a cluster peer; role "" when nothing vouches for it

  bool is(std::string_view role) const { return !local && peer.role == role; }
  /// This process, or a peer in `role`.
  bool local_or(std::string_view role) const { return local || is(role); }
  std::string describe() const;
};

/// The sender of the message `self` is handling now.
message_sender sender_of(caf::local_actor* self);

/// Whether `handle` lives on the same node as the current sender (an actor
/// a peer hands over must be its own).
bool on_sender_node(caf::local_actor* self, const caf::actor_addr& handle);

/// A refused message: one warning naming the sender and what it tried,
/// and the error it is answered with.
caf::error refuse(caf::local_actor* self, const message_sender& who, std::string_view what);

/// A plaintext peer (cluster.tls: false, loopback only) names itself when
/// it joins (a node as a worker, atlas-ctl as an operator once it showed
/// the secret): false when the sender has another name or role already.
bool name_plaintext_sender(caf::local_actor* self, const std::string& name,
                           const std::string& role);

/// Whether the current message comes from this process; a message from a
/// peer is refused (logged) for handlers that only the node itself uses.
bool local_only(caf::local_actor* self, std::string_view what);

/// This node's own CAF node id, as BASP writes it (peer_directory::add_local).
std::string local_node_bytes(caf::actor_system& sys);

} // namespace atlas
