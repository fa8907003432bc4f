#pragma once

// Queue order as plain C++ (no actors), so it can be tested and benchmarked
// alone. Order: jobs placed by hand (pinned) first, then priority (higher
// first), then fair share across users (the user with the fewest running and
// already-chosen jobs goes next), then submission order.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

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
};

class queue_policy {
public:
  /// Adds a job. A job id already queued is replaced.
  void push(queued_job job);

  /// Removes a job; false when it was not queued.
  bool remove(const std::string& job_id);

  /// The next job for a slot with `free_gpus` GPUs, removed from the queue.
  /// Counts it as running for its user.
  std::optional<queued_job> pop_for(int64_t free_gpus);

  /// The whole queue in the order pop_for would hand it out.
  std::vector<queued_job> ordered() const;

  /// Moves the job at position `from` to position `to` (positions as in
  /// ordered()). The jobs queued now keep that order by hand from then on;
  /// later arrivals are ordered by policy behind them. Returns the new pins.
  std::optional<std::vector<queued_job>> move(size_t from, size_t to);

  /// A job of `user` started or finished running (fair-share input).
  void running_changed(const std::string& user, int delta);

  /// GPU jobs (num_gpus > 0) queued at or before `cutoff`, oldest first.
  std::vector<queued_job> gpu_jobs_queued_before(double cutoff) const;

  /// Removes the job like pop_for would hand it out (counted as running);
  /// nullopt when it is not queued.
  std::optional<queued_job> take(const std::string& job_id);

  size_t size() const { return index_.size(); }
  bool contains(const std::string& job_id) const { return index_.count(job_id) > 0; }

private:
  using user_queues = std::map<std::string, std::deque<queued_job>>;

  std::optional<queued_job> pick(std::map<std::string, int64_t>& running,
                                 int64_t free_gpus, bool take);

  std::vector<queued_job> pinned_;          // sorted by pin
  std::map<int64_t, user_queues> levels_;   // key: -priority
  std::unordered_map<std::string, int64_t> index_; // job id -> pin or level key
  std::map<std::string, int64_t> running_;  // running jobs per user
  // Queued GPU jobs by (queued_time, id), for reservations against starvation.
  std::map<std::pair<double, std::string>, queued_job> gpu_waiting_;
};

} // namespace atlas
