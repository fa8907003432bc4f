#pragma once

#include "messages/actors.hpp"

namespace atlas {

/// Spawns the lifecycle actor of one job whose record is already persisted,
/// at its dispatch (a queued job is only a record in the master). It persists
/// every transition through `lookup` before acting on it, tells `master`
/// when the job is done or must be requeued (with its record), and then
/// exits.
job_actor spawn_job(caf::actor_system& sys, job_record rec, lookup_actor lookup,
                    master_actor master, int max_retries);

} // namespace atlas
