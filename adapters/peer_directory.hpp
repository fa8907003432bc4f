#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/tls.hpp"

namespace atlas {

/// Which cluster peer each CAF node id belongs to: the node id a peer's
/// BASP handshake announced (its serialized bytes), bound to the identity
/// of the connection it came on (the peer's certificate). Actors ask it who
/// sent a message; the front fills it. A binding is permanent for the life
/// of this process: once an id was a peer's, no other identity can claim
/// it, even after that peer disconnected.
///
/// Thread-safe: the front binds on the loop thread, actors look up on
/// theirs. One per process (cluster_peers()).
class peer_directory {
public:
  /// An id of this process's own (one per actor system: atlas-sim-nodes
  /// runs many nodes in one process): no peer may claim it.
  void add_local(std::string bytes);
  /// The first id added: what a node id looks like here (its size and kind).
  std::string local() const;
  bool is_local(std::string_view node) const;

  /// Binds `node` to `who`; false when it is this node's id or is bound to
  /// another identity already.
  bool bind(const std::string& node, const peer_identity& who);

  /// The identity bound to `node`, if any.
  std::optional<peer_identity> lookup(std::string_view node) const;

  /// A plaintext peer (cluster.tls: false) names itself when it joins:
  /// sets the name and role of an unverified binding that has no name yet;
  /// true when the binding has this name and role now.
  bool name_unverified(const std::string& node, const std::string& name, const std::string& role);

private:
  mutable std::mutex mtx_;
  std::vector<std::string> locals_;
  std::unordered_map<std::string, peer_identity> peers_;
};

/// The process's directory.
peer_directory& cluster_peers();

} // namespace atlas
