#pragma once

// One active master per cluster: a lease in Redis, set with NX and a TTL,
// renewed well inside it, carrying an epoch that grows with every new
// holder. The holder's lease value is also its fence: every write the
// master makes checks it first (actors/lookup.cpp), so a master that lost
// the lease (frozen, partitioned) changes nothing when it wakes.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/redis_client.hpp"

namespace atlas {

/// Who holds the lease: its value is "<epoch> <node_id> <host_address>".
struct lease_holder {
  uint64_t epoch = 0;
  std::string node_id;
  std::string host_address;
  std::string value; // as stored: the fence token
  static lease_holder parse(const std::string& value);
};

/// A master that stands by, as listed for atlas-ctl.
struct standby_master {
  std::string node_id;
  std::string host_address;
};

class master_lease {
public:
  enum class outcome { ours, held, unreachable };

  /// With `min_replica_acks`, a new lease (and its epoch) counts only once
  /// that many replicas have it, so that a Redis failover never hands out
  /// an epoch twice.
  master_lease(redis_target target, std::string node_id, std::string host_address,
               std::chrono::milliseconds ttl, int min_replica_acks = 0,
               int wait_timeout_ms = 1000);

  /// Takes the lease when it is free or held by this node's previous run
  /// (same node id: that process is gone, its pid file says so); else
  /// `held`, with `holder` saying who has it.
  outcome acquire(lease_holder& holder, std::string& error);

  /// Extends the lease this node holds. `held` means it was lost to
  /// `holder`. A lease that lapsed while Redis was away, or that a Redis
  /// restarted empty forgot, is taken back when no later epoch was handed
  /// out since.
  outcome renew(lease_holder& holder, std::string& error);

  /// Gives the lease up (clean stop), so that a standby takes over at once.
  void release();

  /// Standbys say so every renewal period; listed while recent.
  void announce_standby();
  void withdraw_standby();

  const lease_holder& mine() const { return mine_; }
  std::chrono::milliseconds ttl() const { return ttl_; }

private:
  redis_client redis_;
  std::string node_id_;
  std::string host_address_;
  std::chrono::milliseconds ttl_;
  int min_replica_acks_;
  int wait_timeout_ms_;
  lease_holder mine_;
};

/// Renews `lease` every third of its TTL on a thread of its own while it
/// lives: for work on the thread that otherwise renews it (node_runtime's
/// tick) that may outlast the TTL. Meanwhile that work may read the lease
/// (mine()), nothing else. A loss is logged; the next tick acts on it.
class lease_keeper {
public:
  explicit lease_keeper(master_lease& lease);
  ~lease_keeper();
  lease_keeper(const lease_keeper&) = delete;
  lease_keeper& operator=(const lease_keeper&) = delete;

private:
  master_lease& lease_;
  std::mutex mtx_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

/// The holder and the standbys seen within the last three TTLs, read
/// through `redis` (atlas-ctl, the master's node view). False when Redis
/// did not answer.
bool read_masters(redis_client& redis, std::chrono::milliseconds ttl, lease_holder& active,
                  std::vector<standby_master>& standbys);

} // namespace atlas
