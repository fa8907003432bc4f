#pragma once

// How a node's detached Redis actors (the lookup, the tracking actor) call
// Redis: every call retried with backoff for a while, so that a restarted
// Redis or a Sentinel failover is waited out; writes fenced by the active
// master's lease and confirmed by replicas when configured. Blocking: for
// the one thread of the actor that owns it.

#include <optional>
#include <string>
#include <vector>

#include "adapters/redis_client.hpp"
#include "adapters/status.hpp"

namespace atlas {

struct redis_write_options {
  /// Failed Redis calls are retried with backoff this long, then reported
  /// as failed (long enough for a Sentinel failover there).
  int retry_s = 10;
  /// The active master's lease value (runtime/master_lease.hpp): every
  /// write runs in a script that first checks the lease still holds it.
  /// Empty on workers, which hold no lease.
  std::string fence;
  /// Writes count once this many replicas confirm them (Redis WAIT).
  int min_replica_acks = 0;
  int wait_timeout_ms = 1000;
};

class redis_writer {
public:
  using cmd = std::vector<std::string>;

  /// A command whose first word is this runs only when the command before it
  /// (in the same call) succeeded; its reply is nil otherwise. A call with
  /// one is atomic. E.g. {"SET", k, v, "NX"}, {if_ok, "XADD", ...}.
  static constexpr const char* if_ok = "IFOK";

  /// `who` names the owner in log lines. Does not connect yet.
  redis_writer(redis_target target, redis_write_options opts, std::string who);

  /// Connects now (a failure is retried on first use).
  status connect() { return redis_.connect(); }

  /// Atomic: fenced, or MULTI/EXEC. Nullopt once the retries are spent.
  std::optional<std::vector<redis_reply>> transaction(const std::vector<cmd>& cmds);

  /// One round trip, not atomic unless fenced. Error replies (a key of the
  /// wrong type) are logged: the write is not repeated for them.
  std::optional<std::vector<redis_reply>> pipeline(const std::vector<cmd>& cmds);

  /// Reads only: writes go through pipeline() or transaction(), fenced.
  std::optional<redis_reply> command(const cmd& c);

  /// Several reads in one round trip (not fenced, not atomic).
  std::optional<std::vector<redis_reply>> reads(const std::vector<cmd>& cmds);

  /// "Redis 127.0.0.1:6379 connected, fenced by lease epoch 3" for atlas-ctl.
  std::string describe() const;

  const redis_write_options& options() const { return opts_; }

private:
  template <class F>
  auto with_retry(F attempt) -> decltype(attempt(std::declval<std::string&>()));
  std::optional<std::vector<redis_reply>> write_once(const std::vector<cmd>& cmds, bool atomic,
                                                     std::string& err);

  redis_client redis_;
  redis_write_options opts_;
  std::string who_;
};

} // namespace atlas
