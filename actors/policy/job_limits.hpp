#pragma once

// What the cluster's settings add to a job at submission, in plain C++: its
// quota groups from quotas.members, and its time limit from the project's
// or the cluster's default, refused above their maximum.

#include <string>

#include "library/settings/scheduling.hpp"
#include "messages/job.hpp"

namespace atlas {

/// Adds the groups quotas.members gives the record's user to those it has
/// (from its token with -p); sorted, each once.
void add_config_groups(job_record& rec, const scheduling_settings& s);

/// Gives a record without a time limit the default of its project (else of
/// the cluster). "" when done; else why the limit it asks is refused.
std::string apply_time_limit(job_record& rec, const scheduling_settings& s);

} // namespace atlas
