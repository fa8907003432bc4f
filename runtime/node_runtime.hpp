#pragma once

// A running node: its event loop, process supervisor, actor system and
// actors, and the HTTP servers in front of them. atlas-server brings it up
// once and tears it down once; CAF stays out of this header.

#include <chrono>
#include <memory>
#include <string>

#include "adapters/status.hpp"

#include "runtime/version.hpp"

namespace atlas {

struct node_config;

/// The version a node reports when it joins and `atlas-server version` prints.
inline constexpr const char* server_version = atlas_version;

/// Everything a running node owns. Its parts live until the destructor,
/// which runs after tear_down. Copying is deleted: it owns the actor system.
class node_runtime {
public:
  /// What it owns: defined, and used, only in node_runtime.cpp.
  struct parts;

  explicit node_runtime(std::shared_ptr<node_config> cfg);
  ~node_runtime();

  node_runtime(const node_runtime&) = delete;
  node_runtime& operator=(const node_runtime&) = delete;

  /// Brings the node up: event loop, actor system, Redis (managed or
  /// configured), the master's door or the way to the master, the HTTP
  /// servers and the worker slots. Returns an error line when the node
  /// cannot serve; call tear_down then as well.
  /// A master that finds another master holding the lease (runtime/
  /// master_lease.hpp) comes up as its hot standby instead: see standby().
  status bring_up();

  /// Where this master stands: the one-line summary of a standby
  /// ("standby master: active master is <node> (epoch N)"), or empty for
  /// the active master and for workers.
  std::string standby_line() const;

  /// What tick() found.
  enum class lease_news { none, took_over, lost };

  /// Called every tick_interval() by the main thread: the active master
  /// renews its lease (`lost`: another master holds it now, this process
  /// must step down), a standby tries to take it (`took_over`: it is the
  /// active master now).
  lease_news tick();
  std::chrono::milliseconds tick_interval() const;

  /// Drains, then tears the node down in the reverse order of bring_up.
  /// False when part of it could not be stopped in time: threads may still
  /// be blocked inside CAF, so the caller must leave with std::_Exit.
  bool tear_down();

private:
  std::unique_ptr<parts> parts_;
};

} // namespace atlas
