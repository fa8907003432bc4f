#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "adapters/peer_directory.hpp"

namespace atlas {

/// What a cluster peer may say to this node's CAF, checked message by
/// message before CAF sees it (CAF 0.17's BASP trusts whatever a peer
/// writes). No CAF in here: the layout is CAF 0.17.6's (basp_framer.hpp,
/// caf/io/basp/instance.cpp).
///
/// - The peer's first message is its handshake; the node id it announces is
///   bound to the connection's identity in the directory (refused when that
///   id is this node's or another identity's).
/// - Messages name that node as their source and this node as their
///   destination: routed messages (which carry a claimed source and would
///   be forwarded) are refused, and so are monitor and down messages for
///   any other pair of nodes.
/// - A direct message carries no forwarding stages (which would hand the
///   receiver's answer to a third actor in its name). A response answers a
///   request this node sent over this very connection (CAF matches a
///   response by its id alone, so another peer could otherwise answer in a
///   third node's name); one that does not is dropped. Anything else comes
///   from an actor: anonymous messages, which local code could not tell from
///   its own, are refused.
/// - Messages to CAF's named system actors (SpawnServ, ConfigServ: remote
///   spawning and configuration) are dropped, not refused: every CAF node
///   asks a new peer's SpawnServ once, and that question stays unanswered.
///
/// One per connection, on the loop thread.
class basp_guard {
  struct pair_hash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& p) const {
      return std::hash<uint64_t>{}(p.first * 0x9e3779b97f4a7c15ull ^ p.second);
    }
  };

public:
  /// `peer_is_client`: the peer connected to us (it sends the client
  /// handshake); otherwise we dialled it (it sends the server handshake).
  basp_guard(peer_directory& dir, peer_identity who, bool peer_is_client)
    : dir_(dir), who_(std::move(who)), peer_is_client_(peer_is_client) {}

  /// Checks whole messages, concatenated as basp_framer passes them, and
  /// appends those that may pass to `out`; "" when the connection may stay,
  /// else why it must close.
  std::string check(std::string_view messages, std::string& out);

  /// Whole messages CAF sends to the peer: remembers the requests among
  /// them, which only this peer may answer.
  void sent(std::string_view messages);

  /// The peer's node id bytes (after its handshake).
  const std::string& node() const { return node_; }

private:
  enum class verdict { pass, drop, refuse };
  verdict check_one(std::string_view header, std::string_view payload, std::string& why);
  std::string node_at(std::string_view payload, size_t offset, size_t& used) const;

  peer_directory& dir_;
  peer_identity who_;
  bool peer_is_client_;
  std::string node_; // bound after the handshake
  // Requests sent to the peer and not answered yet: (actor id, request id).
  std::unordered_set<std::pair<uint64_t, uint64_t>, pair_hash> asked_;
};

} // namespace atlas
