#pragma once

// How long finished jobs are kept (actors/retention.cpp): retention: of
// atlas.config.yaml. Off unless set: the original kept every job, and a
// team's finished work must not disappear because it upgraded.

#include <cstdint>
#include <map>
#include <string>

namespace atlas {

/// A project's rule: its finished jobs older than max_age_s (by end time),
/// and all but its newest max_jobs finished jobs, are removed. 0: no limit.
struct retention_rule {
  double max_age_s = 0;
  uint64_t max_jobs = 0;
  bool removes_any() const { return max_age_s > 0 || max_jobs > 0; }
};

struct retention_settings {
  retention_rule retention;                                 // retention.max_age, retention.max_jobs
  std::map<std::string, retention_rule> project_retention;  // retention.projects.<name>: its own
  int retention_interval_s = 60; // retention.interval_s: between passes
  int retention_batch = 200;     // retention.batch: most jobs removed per pass
  // retention.unused_bundles: a stored content bundle (library/bundle_store.hpp)
  // that no job holds and nobody used for this long goes (0: kept forever).
  // On by default: each job keeps its own link, and a client uploads again.
  double unused_bundles_s = 7 * 86400.0;

  /// The rule of `project`: its own, else everyone's.
  const retention_rule& retention_of(const std::string& project) const {
    auto own = project_retention.find(project);
    return own == project_retention.end() ? retention : own->second;
  }
  bool removes_any() const {
    if (retention.removes_any())
      return true;
    for (auto& [name, rule] : project_retention)
      if (rule.removes_any())
        return true;
    return false;
  }
};

} // namespace atlas
