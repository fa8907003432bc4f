#include "actors/policy/job_limits.hpp"

#include <algorithm>
#include <cstdio>

namespace atlas {

void add_config_groups(job_record& rec, const scheduling_settings& s) {
  for (auto& [group, members] : s.group_members)
    if (std::find(members.begin(), members.end(), rec.username) != members.end())
      rec.groups.push_back(group);
  std::sort(rec.groups.begin(), rec.groups.end());
  rec.groups.erase(std::unique(rec.groups.begin(), rec.groups.end()), rec.groups.end());
}

std::string apply_time_limit(job_record& rec, const scheduling_settings& s) {
  auto fallback = s.time_limit_s, most = s.max_time_limit_s;
  std::string whose = "the cluster's limits.max_time_limit_s";
  if (auto p = s.projects.find(rec.project_name); p != s.projects.end()) {
    if (p->second.time_limit_s >= 0)
      fallback = p->second.time_limit_s;
    if (p->second.max_time_limit_s >= 0) {
      most = p->second.max_time_limit_s;
      whose = "projects." + rec.project_name + ".max_time_limit_s";
    }
  }
  if (rec.time_limit_s <= 0)
    rec.time_limit_s = static_cast<double>(fallback);
  if (most > 0 && rec.time_limit_s > static_cast<double>(most)) {
    char asked[32];
    std::snprintf(asked, sizeof asked, "%g", rec.time_limit_s);
    return "time_limit " + std::string(asked) + " s is over " + whose + " (" + std::to_string(most)
           + " s)";
  }
  return {};
}

} // namespace atlas
