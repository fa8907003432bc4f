#include "messages/types.hpp"

#include <caf/actor_system_config.hpp>

#include "messages/actors.hpp"
#include "messages/errors.hpp"

namespace atlas {

const char* to_string(ec x) {
  switch (x) {
    case ec::unspecified: return "unspecified";
    case ec::not_found: return "not_found";
    case ec::invalid_argument: return "invalid_argument";
    case ec::conflict: return "conflict";
    case ec::unavailable: return "unavailable";
    case ec::illegal_transition: return "illegal_transition";
    case ec::forbidden: return "forbidden";
  }
  return "unknown";
}

caf::error make_error(ec code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), caf::atom("atlas"),
                    caf::make_message(std::move(message))};
}

std::string error_message(const caf::error& err) {
  if (err.category() == caf::atom("atlas") && err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  if (err.category() == caf::atom("atlas"))
    return to_string(static_cast<ec>(err.code()));
  return caf::to_string(err);
}

uint16_t http_status_of(const caf::error& err) {
  if (err.category() != caf::atom("atlas"))
    return 503; // CAF's own errors: timeouts, dead peers
  switch (static_cast<ec>(err.code())) {
    case ec::not_found: return 404;
    case ec::invalid_argument: return 400;
    case ec::conflict:
    case ec::illegal_transition: return 409;
    case ec::unavailable: return 503;
    case ec::forbidden: return 403;
    case ec::unspecified: return 500;
  }
  return 500;
}

void register_message_types(caf::actor_system_config& cfg) {
  // job_state travels inside job_record and job_report (as its underlying
  // integer); it is not registered alone since it only crosses local actors.
  cfg.add_message_type<job_record>("atlas::job_record");
  cfg.add_message_type<job_report>("atlas::job_report");
  cfg.add_message_type<bundle_chunk>("atlas::bundle_chunk");
  cfg.add_message_type<slot_info>("atlas::slot_info");
  cfg.add_message_type<node_info>("atlas::node_info");
  cfg.add_message_type<job_transition>("atlas::job_transition");
  cfg.add_message_type<job_dependency>("atlas::job_dependency");
  cfg.add_message_type<actor_stats>("atlas::actor_stats");
  cfg.add_message_type<node_view>("atlas::node_view");
  cfg.add_message_type<queue_entry>("atlas::queue_entry");
  cfg.add_message_type<job_page>("atlas::job_page");
  cfg.add_message_type<project_view>("atlas::project_view");
  cfg.add_message_type<project_views>("atlas::project_views");
  cfg.add_message_type<http_request>("atlas::http_request");
  cfg.add_message_type<http_response>("atlas::http_response");
  cfg.add_message_type<std::map<std::string, std::string>>("atlas::string_map");
  cfg.add_message_type<lookup_actor>("atlas::lookup_actor");
  cfg.add_message_type<worker_slot_actor>("atlas::worker_slot_actor");
  cfg.add_message_type<job_actor>("atlas::job_actor");
  cfg.add_message_type<master_actor>("atlas::master_actor");
  cfg.add_message_type<http_gateway_actor>("atlas::http_gateway_actor");
  cfg.add_message_type<tracking_actor>("atlas::tracking_actor");
  cfg.add_message_type<cluster_actor>("atlas::cluster_actor");
  cfg.add_message_type<node_actor>("atlas::node_actor");
  cfg.add_error_category(caf::atom("atlas"), [](uint8_t code, caf::atom_value,
                                                const caf::message& ctx) {
    std::string out = "atlas::";
    out += to_string(static_cast<ec>(code));
    if (ctx.match_elements<std::string>())
      out += ": " + ctx.get_as<std::string>(0);
    return out;
  });
}

} // namespace atlas
