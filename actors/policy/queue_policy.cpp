#include "actors/policy/queue_policy.hpp"

#include <algorithm>
#include <limits>

namespace atlas {

void queue_policy::push(queued_job job) {
  remove(job.job_id);
  index_[job.job_id] = 0;
  if (job.num_gpus > 0)
    gpu_waiting_[{job.queued_time, job.job_id}] = job;
  if (job.pin > 0) {
    auto pos = std::upper_bound(pinned_.begin(), pinned_.end(), job.pin,
                                [](int64_t p, const queued_job& j) { return p < j.pin; });
    pinned_.insert(pos, std::move(job));
    return;
  }
  auto& q = levels_[-job.priority][job.username];
  auto pos = std::upper_bound(q.begin(), q.end(), job.seq,
                              [](uint64_t s, const queued_job& j) { return s < j.seq; });
  q.insert(pos, std::move(job));
}

bool queue_policy::remove(const std::string& job_id) {
  if (index_.erase(job_id) == 0)
    return false;
  std::erase_if(gpu_waiting_, [&](auto& w) { return w.first.second == job_id; });
  auto same = [&](const queued_job& j) { return j.job_id == job_id; };
  if (auto i = std::find_if(pinned_.begin(), pinned_.end(), same); i != pinned_.end()) {
    pinned_.erase(i);
    return true;
  }
  for (auto lvl = levels_.begin(); lvl != levels_.end(); ++lvl) {
    for (auto u = lvl->second.begin(); u != lvl->second.end(); ++u) {
      if (auto i = std::find_if(u->second.begin(), u->second.end(), same);
          i != u->second.end()) {
        u->second.erase(i);
        if (u->second.empty())
          lvl->second.erase(u);
        if (lvl->second.empty())
          levels_.erase(lvl);
        return true;
      }
    }
  }
  return true;
}

std::optional<queued_job> queue_policy::pick(std::map<std::string, int64_t>& running,
                                             int64_t free_gpus, bool take) {
  auto fits = [&](const queued_job& j) { return j.num_gpus <= free_gpus; };
  for (auto i = pinned_.begin(); i != pinned_.end(); ++i) {
    if (!fits(*i))
      continue;
    auto job = *i;
    if (take)
      pinned_.erase(i);
    ++running[job.username];
    return job;
  }
  for (auto lvl = levels_.begin(); lvl != levels_.end(); ++lvl) {
    // Fair share: the user with the fewest running jobs whose first fitting
    // job is next; ties go to the earliest submission.
    const queued_job* best = nullptr;
    int64_t best_running = std::numeric_limits<int64_t>::max();
    for (auto& [user, q] : lvl->second) {
      auto i = std::find_if(q.begin(), q.end(), fits);
      if (i == q.end())
        continue;
      auto r = running.count(user) ? running[user] : 0;
      if (best == nullptr || r < best_running || (r == best_running && i->seq < best->seq)) {
        best = &*i;
        best_running = r;
      }
    }
    if (best == nullptr)
      continue;
    auto job = *best;
    ++running[job.username];
    if (take) {
      auto& q = lvl->second[job.username];
      q.erase(std::find_if(q.begin(), q.end(),
                           [&](const queued_job& j) { return j.job_id == job.job_id; }));
      if (q.empty())
        lvl->second.erase(job.username);
      if (lvl->second.empty())
        levels_.erase(lvl);
    }
    return job;
  }
  return std::nullopt;
}

std::optional<queued_job> queue_policy::pop_for(int64_t free_gpus) {
  auto job = pick(running_, free_gpus, true);
  if (job) {
    index_.erase(job->job_id);
    gpu_waiting_.erase({job->queued_time, job->job_id});
  }
  return job;
}

std::vector<queued_job> queue_policy::gpu_jobs_queued_before(double cutoff) const {
  std::vector<queued_job> out;
  for (auto& [key, job] : gpu_waiting_) {
    if (key.first > cutoff)
      break;
    out.push_back(job);
  }
  return out;
}

std::optional<queued_job> queue_policy::take(const std::string& job_id) {
  if (!contains(job_id))
    return std::nullopt;
  std::optional<queued_job> found;
  auto same = [&](const queued_job& j) { return j.job_id == job_id; };
  if (auto i = std::find_if(pinned_.begin(), pinned_.end(), same); i != pinned_.end())
    found = *i;
  for (auto& [level, users] : levels_)
    for (auto& [user, q] : users)
      if (auto i = std::find_if(q.begin(), q.end(), same); !found && i != q.end())
        found = *i;
  remove(job_id);
  if (found)
    ++running_[found->username];
  return found;
}

std::vector<queued_job> queue_policy::ordered() const {
  // Simulate the pops on a copy: the listing is exactly the dispatch order
  // for slots that fit every job.
  queue_policy copy = *this;
  std::vector<queued_job> out;
  out.reserve(size());
  while (auto job = copy.pop_for(std::numeric_limits<int64_t>::max()))
    out.push_back(std::move(*job));
  return out;
}

std::optional<std::vector<queued_job>> queue_policy::move(size_t from, size_t to) {
  auto order = ordered();
  if (from >= order.size() || to >= order.size())
    return std::nullopt;
  auto job = order[from];
  order.erase(order.begin() + static_cast<std::ptrdiff_t>(from));
  order.insert(order.begin() + static_cast<std::ptrdiff_t>(to), job);
  pinned_.clear();
  levels_.clear();
  index_.clear();
  gpu_waiting_.clear();
  int64_t pin = 1;
  for (auto& j : order) {
    j.pin = pin++;
    push(j);
  }
  return order;
}

void queue_policy::running_changed(const std::string& user, int delta) {
  auto& r = running_[user];
  r += delta;
  if (r <= 0)
    running_.erase(user);
}

} // namespace atlas
