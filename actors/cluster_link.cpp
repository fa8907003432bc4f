#include "actors/cluster_link.hpp"

#include <set>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/multiplexer.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "messages/errors.hpp"

namespace atlas {

namespace {

caf::actor basp_broker(caf::actor_system& sys) {
  return sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
}

} // namespace

void attach_inbound(caf::actor_system& sys, int fd, const cluster_actor& door, uint16_t port) {
  // The broker's "publish over an existing connection" message: it writes
  // the server handshake naming `door`, then reads BASP from `fd`.
  auto scribe = sys.middleman().backend().new_scribe(fd);
  caf::anon_send(basp_broker(sys), caf::publish_atom::value, std::move(scribe), port,
                 caf::actor_cast<caf::strong_actor_ptr>(door),
                 sys.message_types<cluster_actor>());
}

caf::expected<cluster_actor> attach_outbound(caf::actor_system& sys, int fd, uint16_t port,
                                             std::chrono::seconds timeout) {
  auto scribe = sys.middleman().backend().new_scribe(fd);
  caf::scoped_actor self{sys};
  caf::expected<cluster_actor> result = make_error(ec::unavailable, "no answer from CAF");
  self->request(basp_broker(sys), timeout, caf::connect_atom::value, std::move(scribe), port)
    .receive(
      [&](caf::node_id&, caf::strong_actor_ptr& door, std::set<std::string>& sigs) {
        if (!door)
          result = make_error(ec::unavailable, "the master published no door");
        else if (!sys.assignable(sigs, sys.message_types<cluster_actor>()))
          result = make_error(ec::unavailable, "the master's door speaks another protocol "
                                               "(a different Atlas version?)");
        else
          result = caf::actor_cast<cluster_actor>(std::move(door));
      },
      [&](caf::error& err) { result = std::move(err); });
  return result;
}

} // namespace atlas
