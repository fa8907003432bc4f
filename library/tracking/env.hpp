#pragma once

// What a job's environment carries for the in-job SDK (sdk/python/foundations).
// Plain C++, used by make_launch (actors/policy/job_runtime.cpp).

#include <map>
#include <string>

#include "messages/job.hpp"
#include "library/config.hpp"

namespace atlas {

/// Adds ATLAS_JOB_SECRET (the job's tracking secret, when it has one),
/// ATLAS_API_URL (this node's HTTP API, no trailing '/') and puts
/// `cfg.sdk_dir` (when set) in front of PYTHONPATH.
void add_tracking_env(const node_config& cfg, const job_record& job,
                      std::map<std::string, std::string>& env);

} // namespace atlas
