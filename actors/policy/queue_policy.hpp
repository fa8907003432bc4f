#pragma once

// Queue order as plain C++ (no actors), so it can be tested and benchmarked
// alone. Order: jobs placed by hand (pinned) first, then priority (higher
// first); within a priority, preempted jobs first, then fair share across
// users (the user with the fewest running and already-chosen jobs goes
// next), then submission order. A job over its quota (quotas.hpp), or a
// trial of a sweep running its cap of trials, is passed over until its
// owners (or its sweep) hold less.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/policy/quotas.hpp"

namespace atlas {

/// What the policy needs to know about a queued job.
struct queued_job {
  std::string job_id;
  std::string username;
  int64_t priority = 0;
  int64_t num_gpus = 0;
  int64_t pin = 0; // > 0: placed by hand, lower first
  uint64_t seq = 0;
  double queued_time = 0; // epoch seconds: how long a GPU job has waited
  std::vector<std::string> groups; // quota groups of its user
  double cpus = 0;        // what it asks of its node (0: not counted)
  uint64_t memory_bytes = 0;
  bool preempted = false; // made way for a higher priority: first of its class
  std::string sweep_id;   // the sweep it is a trial of ("" = none)
  int64_t sweep_limit = 0; // most trials of that sweep running at once (0 = no cap)
};

/// Whether a job fits where the caller is placing (GPUs, CPUs, memory).
using fits_fn = std::function<bool(const queued_job&)>;

class queue_policy {
public:
  /// Adds a job. A job id already queued is replaced.
  void push(queued_job job);

  /// Removes a job; false when it was not queued.
  bool remove(const std::string& job_id);

  /// The next job for a slot with `free_gpus` GPUs, removed from the queue.
  /// Counts it as running for its user.
  std::optional<queued_job> pop_for(int64_t free_gpus);

  /// The next job that `fits` and is within its quota, removed from the
  /// queue and counted as running for its user and quota.
  std::optional<queued_job> pop_if(const fits_fn& fits);

  /// The quotas jobs are held to (none by default).
  void set_quotas(std::map<std::string, quota_limits> users,
                  std::map<std::string, quota_limits> groups) {
    quotas_.configure(std::move(users), std::move(groups));
  }
  const quota_ledger& quotas() const { return quotas_; }

  /// The whole queue in the order pop_for would hand it out.
  std::vector<queued_job> ordered() const { return ordered(0, SIZE_MAX); }

  /// Positions [first, first + count) of that order.
  std::vector<queued_job> ordered(size_t first, size_t count) const;

  /// Moves the job at position `from` to position `to` (positions as in
  /// ordered()). The jobs queued now keep that order by hand from then on;
  /// later arrivals are ordered by policy behind them. Returns the new pins.
  std::optional<std::vector<queued_job>> move(size_t from, size_t to);

  /// A job of `user` started or finished running (fair-share input).
  void running_changed(const std::string& user, int delta);

  /// `job` started (+1) or ended (-1) outside pop_if: fair share and quotas.
  void running_changed(const queued_job& job, int delta);

  /// Up to `max` jobs of the highest priority queued (pinned ones first)
  /// whose owners are within quota: the candidates for preemption.
  std::vector<queued_job> top_priority_jobs(size_t max) const;

  /// GPU jobs (num_gpus > 0) queued at or before `cutoff`, oldest first.
  std::vector<queued_job> gpu_jobs_queued_before(double cutoff) const;

  /// Removes the job like pop_if would hand it out (counted as running);
  /// nullopt when it is not queued, does not fit or is over quota.
  std::optional<queued_job> take(const std::string& job_id, const fits_fn& fits = {});

  size_t size() const { return index_.size(); }
  bool contains(const std::string& job_id) const { return index_.count(job_id) > 0; }

private:
  using user_queues = std::map<std::string, std::deque<queued_job>>;

  std::optional<queued_job> pick(const fits_fn& fits);

  std::vector<queued_job> pinned_;          // sorted by pin
  std::map<int64_t, user_queues> levels_;   // key: -priority
  std::unordered_map<std::string, int64_t> index_; // job id -> pin or level key
  std::map<std::string, int64_t> running_;  // running jobs per user
  // Queued GPU jobs by (queued_time, id), for reservations against starvation.
  std::map<std::pair<double, std::string>, queued_job> gpu_waiting_;
  quota_ledger quotas_;
};

} // namespace atlas
