#pragma once

// `atlas-ctl schedules`: the scheduled jobs as Redis keeps them (hash
// atlas:schedules), as a table or as JSON. Pure formatting, unit-tested.

#include <cstdint>
#include <string>
#include <vector>

#include "library/schedules.hpp"
#include "runtime/ctl/render.hpp"

namespace atlas::ctl {

/// One row per scheduled job, by id: its project, owner, cron expression,
/// state (active / paused / no schedule), next run (local time and how far
/// ahead), runs fired and the last run's job id.
std::string schedules_text(std::vector<scheduled_job> list, const render_options& r);

/// {"schedules": [{id, project, owner, cron, status, next_run (epoch s or
/// null), runs, last_job, created}], "unreadable": N}.
std::string schedules_json(std::vector<scheduled_job> list, const render_options& r,
                           uint64_t unreadable = 0);

} // namespace atlas::ctl
