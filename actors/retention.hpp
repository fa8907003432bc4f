#pragma once

#include <memory>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "library/config.hpp"
#include "library/redis_writer.hpp"
#include "messages/actors.hpp"

namespace atlas {

/// The keeper of the listing indexes and of retention, on the active master
/// (local to its process, like the scheduler). Detached, with its own Redis
/// connection, so its batches never wait behind dispatch nor hold it up.
using retention_actor = caf::typed_actor<
  // From itself: the next pass is due.
  caf::reacts_to<tick_atom>,
  // Its own account of itself, for atlas-ctl.
  caf::replies_to<stats_atom>::with<actor_stats>>;

/// Spawns it. First it indexes the jobs of a store from before the sorted
/// indexes (library/job_index.hpp), a batch at a time, then marks them
/// built so listings page from them. Then, every retention.interval_s,
/// it removes the finished jobs past their project's retention rule
/// (library/settings/retention.hpp), oldest first, at most
/// retention.batch per pass (the next pass follows at once while more are
/// due): record, indexes, routing entry, tracking data, log, working
/// directory, bundle and archive, as `foundations delete job` does. Writes
/// are fenced by the lease (`opts`).
retention_actor spawn_retention(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                                const redis_target& target, redis_write_options opts);

} // namespace atlas
