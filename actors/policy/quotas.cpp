#include "actors/policy/quotas.hpp"

#include "actors/policy/queue_policy.hpp"

namespace atlas {

void quota_ledger::configure(std::map<std::string, quota_limits> users,
                             std::map<std::string, quota_limits> groups) {
  users_ = std::move(users);
  groups_ = std::move(groups);
}

const quota_limits* quota_ledger::user_limits(const std::string& user) const {
  if (auto u = users_.find(user); u != users_.end())
    return &u->second;
  if (auto all = users_.find("*"); all != users_.end())
    return &all->second;
  return nullptr;
}

std::string quota_ledger::over(const std::string& who, const quota_limits& l, const held& h,
                               const queued_job& job) {
  auto jobs_limit = l.running_jobs;
  const char* what = "running jobs";
  if (l.slots >= 0 && (jobs_limit < 0 || l.slots < jobs_limit)) {
    jobs_limit = l.slots; // one slot per job: the lower of the two counts
    what = "slots";
  }
  if (jobs_limit >= 0 && h.jobs + 1 > jobs_limit)
    return who + ": " + std::to_string(h.jobs) + " of " + std::to_string(jobs_limit) + " " + what;
  if (l.gpus >= 0 && job.num_gpus > 0 && h.gpus + job.num_gpus > l.gpus)
    return who + ": " + std::to_string(h.gpus) + " of " + std::to_string(l.gpus)
           + " GPUs, asks " + std::to_string(job.num_gpus);
  return {};
}

int64_t quota_ledger::sweep_running(const std::string& sweep_id) const {
  auto r = sweep_running_.find(sweep_id);
  return r == sweep_running_.end() ? 0 : r->second;
}

std::string quota_ledger::sweep_blocks(const queued_job& job) const {
  if (job.sweep_id.empty() || job.sweep_limit <= 0)
    return {};
  auto running = sweep_running(job.sweep_id);
  if (running < job.sweep_limit)
    return {};
  return "sweep cap (" + std::to_string(running) + " running)";
}

std::string quota_ledger::blocks(const queued_job& job) const {
  if (auto why = sweep_blocks(job); !why.empty())
    return why;
  if (unlimited())
    return {};
  static const held none;
  if (auto l = user_limits(job.username)) {
    auto h = user_held_.find(job.username);
    if (auto why = over(job.username, *l, h == user_held_.end() ? none : h->second, job); !why.empty())
      return why;
  }
  for (auto& g : job.groups) {
    auto l = groups_.find(g);
    if (l == groups_.end())
      continue;
    auto h = group_held_.find(g);
    if (auto why = over("group " + g, l->second, h == group_held_.end() ? none : h->second, job);
        !why.empty())
      return why;
  }
  return {};
}

std::string quota_ledger::never_fits(const queued_job& job) const {
  auto check = [&](const std::string& who, const quota_limits& l) -> std::string {
    if (l.running_jobs == 0 || l.slots == 0)
      return who + " may run no jobs";
    if (l.gpus >= 0 && job.num_gpus > l.gpus)
      return "asks " + std::to_string(job.num_gpus) + " GPUs; " + who + " may hold "
             + std::to_string(l.gpus);
    return {};
  };
  if (auto l = user_limits(job.username))
    if (auto why = check(job.username, *l); !why.empty())
      return why;
  for (auto& g : job.groups)
    if (auto l = groups_.find(g); l != groups_.end())
      if (auto why = check("group " + g, l->second); !why.empty())
        return why;
  return {};
}

void quota_ledger::add(const queued_job& job, int sign) {
  if (!job.sweep_id.empty()) { // counted whatever the quotas: the cap is the sweep's own
    auto& n = sweep_running_[job.sweep_id];
    n += sign;
    if (n <= 0)
      sweep_running_.erase(job.sweep_id);
  }
  if (unlimited())
    return;
  auto apply = [&](std::map<std::string, held>& table, const std::string& key) {
    auto& h = table[key];
    h.jobs += sign;
    h.gpus += sign * job.num_gpus;
    if (h.jobs <= 0)
      table.erase(key);
  };
  apply(user_held_, job.username);
  for (auto& g : job.groups)
    apply(group_held_, g);
}

} // namespace atlas
