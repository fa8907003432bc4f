#pragma once

// Quotas across the cluster, in plain C++: what each user and group holds
// now (dispatched, unfinished jobs) and whether one more job stays within
// their limits (library/settings/scheduling.hpp). A job over quota waits in
// the queue; it never fails for it. The ledger also counts the running
// trials of each sweep, held to the sweep's own cap (sweep_limit).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "library/settings/scheduling.hpp"

namespace atlas {

struct queued_job;

class quota_ledger {
public:
  /// The limits; "*" in `users` applies to every user without their own.
  void configure(std::map<std::string, quota_limits> users,
                 std::map<std::string, quota_limits> groups);

  /// No limit configured: every job may start.
  bool unlimited() const { return users_.empty() && groups_.empty(); }

  /// "" when `job` may start now; else why not, naming whose quota
  /// ("alice: 2 of 2 running jobs") or the sweep's cap.
  std::string blocks(const queued_job& job) const;

  /// "" unless `job` is a trial of a sweep already running its cap of
  /// trials: then "sweep cap (4 running)".
  std::string sweep_blocks(const queued_job& job) const;

  /// Trials of `sweep_id` running now.
  int64_t sweep_running(const std::string& sweep_id) const;

  /// "" when `job` could start once its owners hold nothing; else why it
  /// never can ("asks 4 GPUs; group ml may hold 2").
  std::string never_fits(const queued_job& job) const;

  /// `job` started (sign +1) or ended (-1).
  void add(const queued_job& job, int sign);

private:
  struct held {
    int64_t jobs = 0;
    int64_t gpus = 0;
  };
  const quota_limits* user_limits(const std::string& user) const;
  static std::string over(const std::string& who, const quota_limits& l, const held& h,
                          const queued_job& job);

  std::map<std::string, quota_limits> users_;
  std::map<std::string, quota_limits> groups_;
  std::map<std::string, held> user_held_;
  std::map<std::string, held> group_held_;
  std::map<std::string, int64_t> sweep_running_; // sweep id -> running trials
};

} // namespace atlas
