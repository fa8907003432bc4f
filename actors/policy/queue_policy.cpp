#include "actors/policy/queue_policy.hpp"

#include <algorithm>
#include <limits>

namespace atlas {

namespace {

/// Preempted jobs wait in their level under this key, ahead of every user.
const std::string preempted_key = "\x01preempted";

const std::string& queue_key(const queued_job& j) {
  return j.preempted ? preempted_key : j.username;
}

} // namespace

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
  auto& q = levels_[-job.priority][queue_key(job)];
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

std::optional<queued_job> queue_policy::pick(const fits_fn& fits_here) {
  auto fits = [&](const queued_job& j) { return fits_here(j) && quotas_.blocks(j).empty(); };
  auto taken = [&](const queued_job& job) {
    ++running_[job.username];
    quotas_.add(job, 1);
    index_.erase(job.job_id);
    if (job.num_gpus > 0)
      gpu_waiting_.erase({job.queued_time, job.job_id});
    return job;
  };
  for (auto i = pinned_.begin(); i != pinned_.end(); ++i) {
    if (!fits(*i))
      continue;
    auto job = *i;
    pinned_.erase(i);
    return taken(job);
  }
  for (auto lvl = levels_.begin(); lvl != levels_.end(); ++lvl) {
    // Preempted jobs first; then fair share: the user with the fewest
    // running jobs whose first fitting job is next; ties go to the earliest
    // submission.
    std::deque<queued_job>* best_q = nullptr;
    std::deque<queued_job>::iterator best;
    int64_t best_running = std::numeric_limits<int64_t>::max();
    for (auto& [key, q] : lvl->second) {
      auto i = std::find_if(q.begin(), q.end(), fits);
      if (i == q.end())
        continue;
      if (key == preempted_key) {
        best_q = &q;
        best = i;
        break;
      }
      auto r = running_.count(key) ? running_[key] : 0;
      if (best_q == nullptr || r < best_running || (r == best_running && i->seq < best->seq)) {
        best_q = &q;
        best = i;
        best_running = r;
      }
    }
    if (best_q == nullptr)
      continue;
    auto job = *best;
    best_q->erase(best);
    if (best_q->empty())
      lvl->second.erase(queue_key(job));
    if (lvl->second.empty())
      levels_.erase(lvl);
    return taken(job);
  }
  return std::nullopt;
}

std::optional<queued_job> queue_policy::pop_for(int64_t free_gpus) {
  return pop_if([free_gpus](const queued_job& j) { return j.num_gpus <= free_gpus; });
}

std::optional<queued_job> queue_policy::pop_if(const fits_fn& fits) {
  return pick(fits);
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

std::optional<queued_job> queue_policy::take(const std::string& job_id, const fits_fn& fits) {
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
  if (found && ((fits && !fits(*found)) || !quotas_.blocks(*found).empty()))
    return std::nullopt;
  remove(job_id);
  if (found)
    running_changed(*found, 1);
  return found;
}

std::vector<queued_job> queue_policy::ordered(size_t first, size_t count) const {
  // The pops pick() would make for slots that fit every job, quotas aside
  // (they only delay a job), followed with a read position per user's queue
  // rather than made on a copy: a page costs what is before its end, not
  // the whole queue.
  std::vector<queued_job> out;
  if (count == 0)
    return out;
  auto running = running_;
  size_t pos = 0;
  auto take = [&](const queued_job& j) { // false once the slice is full
    ++running[j.username];
    if (pos++ >= first)
      out.push_back(j);
    return out.size() < count;
  };
  for (auto& j : pinned_)
    if (!take(j))
      return out;
  using position = std::pair<std::deque<queued_job>::const_iterator, std::deque<queued_job>::const_iterator>;
  for (auto& [level, users] : levels_) {
    std::vector<std::pair<const std::string*, position>> heads; // in the map's order, as pick() reads
    for (auto& [key, q] : users)
      heads.push_back({&key, {q.begin(), q.end()}});
    while (true) {
      decltype(heads)::value_type* best = nullptr;
      int64_t best_running = std::numeric_limits<int64_t>::max();
      for (auto& h : heads) {
        auto& [at, end] = h.second;
        if (at == end)
          continue;
        if (*h.first == preempted_key) {
          best = &h;
          break;
        }
        auto r = running.count(*h.first) ? running[*h.first] : 0;
        if (best == nullptr || r < best_running
            || (r == best_running && at->seq < best->second.first->seq)) {
          best = &h;
          best_running = r;
        }
      }
      if (best == nullptr)
        break;
      if (!take(*best->second.first++))
        return out;
    }
  }
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

void queue_policy::running_changed(const queued_job& job, int delta) {
  running_changed(job.username, delta);
  quotas_.add(job, delta);
}

std::vector<queued_job> queue_policy::top_priority_jobs(size_t max) const {
  std::vector<queued_job> out;
  auto usable = [&](const queued_job& j) { return quotas_.blocks(j).empty(); };
  for (auto& j : pinned_)
    if (out.size() < max && usable(j))
      out.push_back(j);
  if (!levels_.empty())
    for (auto& [key, q] : levels_.begin()->second)
      for (auto& j : q)
        if (out.size() < max && usable(j))
          out.push_back(j);
  return out;
}

void queue_policy::running_changed(const std::string& user, int delta) {
  auto& r = running_[user];
  r += delta;
  if (r <= 0)
    running_.erase(user);
}

} // namespace atlas
