#pragma once

#include <memory>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "library/config.hpp"
#include "library/redis_writer.hpp"
#include "messages/actors.hpp"

namespace atlas {

using schedule_atom = caf::atom_constant<caf::atom("schedule")>;

/// Scheduled jobs (the original's /scheduled_jobs) on the active master:
/// kept in Redis (writes fenced by the lease), each due run submitted
/// through the master. Local to the master's process (never crosses
/// nodes), so its interface lives here rather than in messages/actors.hpp,
/// which every actor file includes.
using scheduler_actor = caf::typed_actor<
  // A /scheduled_jobs request the gateway's auth gate checked (the user
  // and admin headers are set from the token in -p mode).
  caf::replies_to<schedule_atom, http_request>::with<http_response>,
  // From itself: the timer set for the next due run (its generation).
  caf::reacts_to<tick_atom, uint64_t>,
  // Its own account of itself, for atlas-ctl.
  caf::replies_to<stats_atom>::with<actor_stats>>;

/// Spawns the scheduler of scheduled jobs on the active master (only there:
/// a standby spawns it when it takes over). It reads the schedules from
/// Redis, writes them fenced by the lease (`opts`, as the lookup's), keeps
/// their bundles under <job_store_dir_root>/schedules/ and submits each due
/// run to `master` with a timer set to the next due time. A run missed
/// while no master was active is fired once when one is, never once per
/// missed time; a run's id comes from its schedule and due time, so firing
/// it again after a crash is refused as a job that exists. Detached: it
/// blocks on Redis and on file calls.
scheduler_actor spawn_scheduler(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                                const redis_target& target, redis_write_options opts,
                                master_actor master);

} // namespace atlas
