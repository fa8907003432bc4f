#pragma once

// The dashboard's sweep answers: a project's sweeps, and one sweep's trials
// side by side (params and final metrics as columns, the best trial
// marked). Plain C++, built from job records (params, sweep_id, metadata's
// sweep_metric/sweep_goal) and the tracking "summary" op's answer.

#include <string>
#include <vector>

#include "adapters/json.hpp"
#include "messages/job.hpp"

namespace atlas::dashboard {

/// GET /api/v2beta/projects/<p>/sweeps: [{sweep_id, trials, queued, running,
/// completed, failed, max_concurrent, metric, goal, created}], newest first.
std::string sweeps_json(const std::vector<job_record>& recs);

/// GET /api/v2beta/projects/<p>/sweeps/<id>: {sweep_id, project, metric,
/// goal, max_concurrent, counts, param_names, metric_names, best, trials:
/// [{job_id, status, state, params, metrics, start_ts, completed_ts,
/// duration_s, best}]} in submission order. `recs`: the sweep's trials.
/// `best` is the trial with the lowest (minimize) or highest (maximize)
/// final value of the sweep's metric; null when there is none.
std::string sweep_json(const std::string& sweep_id, const std::vector<job_record>& recs,
                       const json::value& summary, double now);

} // namespace atlas::dashboard
