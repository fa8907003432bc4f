#pragma once

// Quotas across the cluster, in plain C++: what each user and group holds
// now (dispatched, unfinished jobs) and whether one more job stays within
// their limits (library/settings/scheduling.hpp). A job over quota waits in
// the queue; it never fails for it.

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
  /// ("alice: 2 of 2 running jobs").
  std::string blocks(const queued_job& job) const;

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
};

} // namespace atlas
