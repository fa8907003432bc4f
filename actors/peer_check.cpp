#include "actors/peer_check.hpp"

#include <vector>

#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/local_actor.hpp>
#include <caf/node_id.hpp>
#include <spdlog/spdlog.h>

#include "adapters/peer_directory.hpp"
#include "messages/errors.hpp"

namespace atlas {

namespace {

/// A node id as BASP writes it in a handshake: the directory's key.
std::string node_bytes(caf::actor_system& sys, const caf::node_id& node) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  if (sink(const_cast<caf::node_id&>(node)))
    return {};
  return std::string(buf.begin(), buf.end());
}

} // namespace

std::string message_sender::describe() const {
  if (local)
    return "this node";
  if (peer.role.empty())
    return "an unknown peer";
  return (peer.name.empty() ? std::string{"an unnamed peer"} : "node '" + peer.name + "'") + " ("
         + peer.role + (peer.verified ? "" : ", no certificate") + ")";
}

message_sender sender_of(caf::local_actor* self) {
  const auto& src = self->current_sender();
  if (!src || src->node() == self->system().node())
    return {true, {}};
  auto known = cluster_peers().lookup(node_bytes(self->system(), src->node()));
  return {false, known ? *known : peer_identity{}};
}

bool on_sender_node(caf::local_actor* self, const caf::actor_addr& handle) {
  if (!handle)
    return false;
  const auto& src = self->current_sender();
  auto node = src ? src->node() : self->system().node();
  return handle.node() == node;
}

caf::error refuse(caf::local_actor* self, const message_sender& who, std::string_view what) {
  spdlog::warn("refused {} from {} (actor {})", what, who.describe(), self->name());
  return make_error(ec::forbidden, "refused: " + std::string(what) + " is not allowed from "
                                     + who.describe());
}

bool name_plaintext_sender(caf::local_actor* self, const std::string& name,
                           const std::string& role) {
  const auto& src = self->current_sender();
  return src
         && cluster_peers().name_unverified(node_bytes(self->system(), src->node()), name, role);
}

bool local_only(caf::local_actor* self, std::string_view what) {
  auto who = sender_of(self);
  if (who.local)
    return true;
  refuse(self, who, what);
  return false;
}

std::string local_node_bytes(caf::actor_system& sys) {
  return node_bytes(sys, sys.node());
}

} // namespace atlas
