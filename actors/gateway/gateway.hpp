#pragma once

#include <memory>

#include "actors/scheduler.hpp"
#include "messages/actors.hpp"
#include "library/config.hpp"

namespace atlas {

class event_loop;

/// Spawns the gateway: answers the scheduler API (DESIGN.md §6) by reading
/// through `lookup` and acting through `master`; the dashboard's data goes
/// through `tracking`; /scheduled_jobs through `schedules` (the active
/// master's; null elsewhere, where those requests go to the master). File work (logs, bundles,
/// artifacts) runs on `loop`'s thread pool and comes back as messages.
http_gateway_actor spawn_http_gateway(caf::actor_system& sys,
                                      std::shared_ptr<const node_config> cfg,
                                      event_loop* loop, lookup_actor lookup,
                                      tracking_actor tracking, master_actor master,
                                      scheduler_actor schedules = {});

} // namespace atlas
