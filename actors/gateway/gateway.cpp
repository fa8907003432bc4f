// The HTTP gateway actor: takes requests from the bridges and from other
// nodes' gateways, checks who sends them, and hands them to the route table
// (routes.cpp) through the token check (auth_check.cpp). Its operations on
// jobs are in job_operations.cpp; file work goes to the thread pool.

#include "actors/gateway/gateway.hpp"

#include <functional>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/gateway/gateway_state.hpp"
#include "actors/peer_check.hpp"
#include "adapters/event_loop.hpp"
#include "messages/errors.hpp"
#include "library/auth_rules.hpp"
#include "library/http_answers.hpp"
#include "library/job_codec.hpp"

namespace atlas {

namespace gateway {

/// Runs `work` on the thread pool; `then` gets its answer on this actor.
void offload(gateway_ptr self, std::function<http_response()> work, continuation then) {
  auto ticket = self->state.next_ticket++;
  self->state.parked.emplace(ticket, std::move(then));
  http_gateway_actor me = self;
  self->state.loop->post_work([me, ticket, work = std::move(work)] {
    caf::anon_send(me, done_atom::value, ticket, work());
  });
}

/// Delivers an answer; returns void so that routes can `return give(...)`.
void give(answer& rp, http_response r) {
  rp.deliver(std::move(r));
}

/// An actor error as an HTTP answer.
http_response from_error(const caf::error& err) {
  return error_answer(http_status_of(err), error_message(err));
}

void forward_to_master(gateway_ptr self, answer rp, const http_request& req) {
  auto& st = self->state;
  if (!st.master)
    return give(rp, error_answer(503, "this node has not joined a master yet"));
  // Asked by a worker, the master names its own gateway.
  self->request(st.master, std::chrono::seconds(10), get_atom::value, node_atom::value,
                std::string{})
    .then(
      [=](caf::actor& gateway) mutable {
        auto fwd = req;
        fwd.headers[forwarded_header] = self->state.cfg->node_id;
        self->request(caf::actor_cast<http_gateway_actor>(gateway), std::chrono::seconds(60), fwd)
          .then([=](http_response& r) mutable { rp.deliver(std::move(r)); },
                [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
      },
      [=](caf::error& err) mutable { rp.deliver(from_error(err)); });
}

} // namespace gateway

namespace {

using namespace gateway;

http_gateway_actor::behavior_type gateway_impl(gateway_ptr self,
                                               std::shared_ptr<const node_config> cfg,
                                               event_loop* loop, lookup_actor lookup,
                                               tracking_actor tracking, master_actor master,
                                               scheduler_actor schedules) {
  self->state.cfg = std::move(cfg);
  self->state.schedules = std::move(schedules);
  self->state.loop = loop;
  self->state.lookup = std::move(lookup);
  self->state.tracking = std::move(tracking);
  self->state.master = std::move(master);
  self->set_down_handler([=](caf::down_msg& dm) {
    std::erase_if(self->state.owners,
                  [&](const auto& o) { return o.second.address() == dm.source; });
  });
  return {
    [=](http_request& req) -> caf::result<http_response> {
      // The master's gateway takes requests other nodes forward; a worker's
      // only those the master forwards.
      auto who = sender_of(self);
      bool from_node = self->state.cfg->is_master ? who.is("worker") || who.is("master")
                                                  : who.is("master");
      if (!who.local && !from_node)
        return refuse(self, who, "an HTTP request");
      if (who.local) {
        req.headers.erase(forwarded_header); // a client's, not a node's
      } else {
        // Forwarded by a node: what only this node may set never comes from
        // the wire. The bearer token travels along and is verified again.
        req.upload_path.clear();
        req.upload_filename.clear();
        req.upload_field.clear();
        req.listener = "forwarded";
        req.headers[forwarded_header] = who.peer.name;
      }
      auto rp = self->make_response_promise<http_response>();
      if (!self->state.cfg->is_master && acts_through_master(req))
        forward_to_master(self, rp, req);
      else
        route(self, rp, req);
      return rp;
    },
    [=](register_atom, master_actor& master) {
      if (!local_only(self, "register"))
        return;
      self->state.master = master;
      self->state.owners.clear(); // a new master: ask it again
    },
    [=](stats_atom) -> caf::result<actor_stats> {
      if (auto who = sender_of(self); !who.local_or("master"))
        return refuse(self, who, "stats");
      auto& st = self->state;
      return self->stats(st.cfg->node_id, std::to_string(st.parked.size()) + " file task(s) in flight"
                                            + (st.master ? "" : ", no master"));
    },
    [=](done_atom, uint64_t ticket, http_response& r) {
      if (!local_only(self, "done"))
        return;
      auto i = self->state.parked.find(ticket);
      if (i == self->state.parked.end())
        return;
      auto then = std::move(i->second);
      self->state.parked.erase(i);
      then(std::move(r));
    },
    [=](fetch_atom, const std::string& id, uint64_t offset) -> caf::result<bundle_chunk> {
      // Only its own master reads the job store for other nodes; it checks
      // that the asking node holds the job.
      if (auto who = sender_of(self); !who.local)
        return refuse(self, who, "fetching the bundle of job '" + id + "'");
      return read_bundle_chunk(self, id, offset);
    },
    [=](done_atom, uint64_t ticket, bundle_chunk& chunk, const std::string& error) {
      if (!local_only(self, "done"))
        return;
      auto i = self->state.fetches.find(ticket);
      if (i == self->state.fetches.end())
        return;
      auto rp = std::move(i->second);
      self->state.fetches.erase(i);
      if (error.empty())
        rp.deliver(std::move(chunk));
      else
        rp.deliver(make_error(ec::not_found, error));
    },
  };
}

} // namespace

http_gateway_actor spawn_http_gateway(caf::actor_system& sys,
                                      std::shared_ptr<const node_config> cfg,
                                      event_loop* loop, lookup_actor lookup,
                                      tracking_actor tracking, master_actor master,
                                      scheduler_actor schedules) {
  return sys.spawn(gateway_impl, std::move(cfg), loop, std::move(lookup), std::move(tracking),
                   std::move(master), std::move(schedules));
}

} // namespace atlas
