#include "actors/gateway/bridge.hpp"

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "adapters/http_server.hpp"
#include "messages/errors.hpp"
#include "library/http_answers.hpp"
#include "library/metrics.hpp"

namespace atlas {

namespace {

/// How long a followed log waits before asking again when nothing was new.
constexpr auto follow_pause = std::chrono::milliseconds(100);

struct bridge_state {
  static inline const char* name = "http-bridge";
  http_server* server = nullptr;
  http_gateway_actor gateway;
};

using bridge_ptr = http_bridge_actor::stateful_pointer<bridge_state>;

/// Replaces or adds `key=value` in a query string.
std::string with_param(const std::string& query, const std::string& key, const std::string& value) {
  std::string out;
  for (auto& [k, v] : parse_query(query))
    if (k != key)
      out += (out.empty() ? "" : "&") + k + "=" + v;
  return out + (out.empty() ? "" : "&") + key + "=" + value;
}

/// The time since a request arrived, for /metrics.
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void ask(bridge_ptr self, http_request req, uint64_t token, bool first) {
  auto arrived = std::chrono::steady_clock::now();
  self->request(self->state.gateway, caf::infinite, req)
    .then(
      [=](http_response& r) mutable {
        auto* server = self->state.server;
        if (first)
          metrics::http_answered(req.listener, req.path, r.status, seconds_since(arrived));
        if (!r.stream) {
          server->respond(token, std::move(r));
          return;
        }
        if (first)
          server->begin_stream(token, r.status, r.content_type, std::move(r.headers));
        bool empty = r.body.empty();
        if (!empty)
          server->send_chunk(token, std::move(r.body));
        if (r.stream_done) {
          server->end_stream(token);
          return;
        }
        req.query = r.stream_cursor.empty()
                      ? with_param(req.query, "offset", std::to_string(r.stream_offset))
                      : with_param(req.query, "after", r.stream_cursor);
        if (empty)
          self->delayed_send(self, follow_pause, next_atom::value, std::move(req), token);
        else
          self->send(self, next_atom::value, std::move(req), token);
      },
      [=](caf::error& err) {
        auto* server = self->state.server;
        if (first) {
          auto answer = error_answer(http_status_of(err), error_message(err));
          metrics::http_answered(req.listener, req.path, answer.status, seconds_since(arrived));
          server->respond(token, std::move(answer));
        }
        else
          server->end_stream(token);
      });
}

http_bridge_actor::behavior_type bridge_impl(bridge_ptr self, http_server* server,
                                             http_gateway_actor gateway) {
  self->state.server = server;
  self->state.gateway = std::move(gateway);
  return {
    [=](http_request& req, uint64_t token) { ask(self, std::move(req), token, true); },
    [=](next_atom, http_request& req, uint64_t token) {
      if (self->state.server->is_open(token)) // the client may have gone
        ask(self, std::move(req), token, false);
    },
  };
}

} // namespace

http_bridge_actor spawn_http_bridge(caf::actor_system& sys, http_server* server,
                                    http_gateway_actor gateway) {
  return sys.spawn(bridge_impl, server, std::move(gateway));
}

} // namespace atlas
