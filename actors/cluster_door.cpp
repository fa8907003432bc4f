#include "actors/cluster_door.hpp"

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

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
      self->send(master, join_atom::value, node, caf::actor_cast<caf::actor>(gateway),
                 node_handle);
      return master;
    },
    [=](join_atom, const std::string& shown) -> caf::result<master_actor> {
      if (secret.empty() || !same_secret(shown, secret)) {
        spdlog::error("tool refused: wrong cluster secret");
        return make_error(ec::forbidden, "refused by the master: wrong cluster secret");
      }
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
