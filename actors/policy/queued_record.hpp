#pragma once

// Transitions of a job that has no lifecycle actor: while it is queued the
// master holds its record alone (the actor is spawned at dispatch, see
// master.cpp), so the master applies these itself. Plain C++, no CAF.

#include <string>

#include "actors/policy/queue_policy.hpp"
#include "messages/job.hpp"

namespace atlas {

/// The reason a job stopped before it ever ran carries.
inline constexpr const char* stopped_while_queued = "stopped by user while queued";

/// Ends a queued record as cancelled by its user, history included. False
/// when it is not queued (the record is left as it was).
bool cancel_queued_record(job_record& rec, double now);

/// A record found `lost` (a previous master lost its slot and stopped before
/// acting on it): back to queued while retries remain, else failed. The
/// retry limit is the record's own, else `default_max_retries`. True when it
/// is queued again.
bool requeue_lost_record(job_record& rec, const std::string& reason, int default_max_retries,
                         double now);

/// What the queue policy knows of a record. A job requeued after it was
/// preempted goes first in its class.
queued_job queue_entry_of(const job_record& rec);

} // namespace atlas
