#include "actors/cluster_door.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/peer_check.hpp"
#include "messages/errors.hpp"

namespace atlas {

namespace {

struct door_state {
  static inline const char* name = "cluster-door";
};

/// Compares without an early exit, so timing tells nothing about the secret.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

cluster_actor::behavior_type door_impl(cluster_actor::stateful_pointer<door_state> self,
                                       std::string secret, master_actor master) {
  return {
    [=](join_atom, const std::string& shown, const node_info& node,
        const http_gateway_actor& gateway, const caf::actor& node_handle)
      -> caf::result<master_actor> {
      if (secret.empty() || !same_secret(shown, secret)) {
        spdlog::error("node refused: wrong cluster secret node={} address={}", node.node_id,
                      node.host_address);
        return make_error(ec::forbidden, "refused by the master: wrong cluster secret");
      }
      // The node is who its certificate says, and hands over its own actors.
      auto who = sender_of(self);
      bool named = who.local || (who.peer.verified ? who.peer.name == node.node_id
                                                   : name_plaintext_sender(self, node.node_id,
                                                                           "worker"));
      if (!named || !(who.local_or("worker") || who.is("master"))
          || !on_sender_node(self, gateway.address()) || !on_sender_node(self, node_handle.address()))
        return refuse(self, who, "joining as node '" + node.node_id + "'");
      self->send(master, join_atom::value, node, caf::actor_cast<caf::actor>(gateway),
                 node_handle);
      return master;
    },
    [=](join_atom, const std::string& shown) -> caf::result<master_actor> {
      // A tool: its operator certificate is its credential; without TLS
      // (loopback only) the secret is.
      auto who = sender_of(self);
      if (who.peer.verified) {
        if (!who.is("operator"))
          return refuse(self, who, "joining as a tool");
        spdlog::info("operator {} connected", who.peer.name);
        return master;
      }
      if (secret.empty() || !same_secret(shown, secret)) {
        spdlog::error("tool refused: wrong cluster secret");
        return make_error(ec::forbidden, "refused by the master: wrong cluster secret");
      }
      if (!who.local && !name_plaintext_sender(self, "atlas-ctl", "operator"))
        return refuse(self, who, "joining as a tool");
      return master;
    },
  };
}

} // namespace

cluster_actor spawn_cluster_door(caf::actor_system& sys, std::string secret,
                                 master_actor master) {
  return sys.spawn(door_impl, std::move(secret), std::move(master));
}

} // namespace atlas
