#pragma once

// What the actors tell atlas-ctl about themselves and the cluster.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/cluster.hpp"
#include "messages/job.hpp"

namespace atlas {

/// One actor's own account of itself (CAF 0.17 has no telemetry: each
/// actor answers stats_atom with this).
struct actor_stats {
  std::string name;        // its role: master, worker-slot, job, lookup, http-gateway, node, ...
  uint64_t id = 0;         // CAF actor id
  std::string node;        // node id it runs on
  uint64_t mailbox = 0;    // messages waiting in its mailbox
  uint64_t handled = 0;    // messages it handled so far
  double last_message = 0; // epoch seconds of the last one; 0 = none yet
  std::string summary;     // one line about its state
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_stats& x) {
  return f(caf::meta::type_name("atlas::actor_stats"), x.name, x.id, x.node, x.mailbox,
           x.handled, x.last_message, x.summary, finite_on_load(x.last_message));
}

/// A node as the master sees it.
struct node_view {
  node_info info;
  std::string role;         // "master" or "worker"
  bool drained = false;     // no new jobs go there
  double last_seen = 0;     // epoch seconds of its last heartbeat to the master
  std::vector<slot_info> slots;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_view& x) {
  return f(caf::meta::type_name("atlas::node_view"), x.info, x.role, x.drained, x.last_seen,
           x.slots, finite_on_load(x.last_seen));
}

/// A queued job and why it is not running yet.
struct queue_entry {
  job_record job;
  uint64_t position = 0;
  std::string reason; // "no free slot", "needs 2 GPUs", "fair-share turn", "nodes drained", ...
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_entry& x) {
  return f(caf::meta::type_name("atlas::queue_entry"), x.job, x.position, x.reason);
}

/// One page of a job listing, newest first (library/job_index.hpp).
struct job_page {
  std::vector<job_record> jobs;
  uint64_t total = 0;   // jobs in the whole list
  std::string next;     // the next page's cursor; "" on the last page
  uint64_t version = 0; // the listing version it was read at (?since=)
  bool indexed = true;  // false: the indexes are still being built (read everything)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_page& x) {
  return f(caf::meta::type_name("atlas::job_page"), x.jobs, x.total, x.next, x.version, x.indexed);
}

/// A project as the dashboard's project list shows it, read from the
/// indexes (library/job_index.hpp) without its jobs' records.
struct project_view {
  std::string name;
  std::string owner;        // who submitted its first job
  double created_at = 0;    // when (epoch seconds)
  double last_activity = 0; // its newest submission, start or end
  uint64_t jobs = 0;
  uint64_t active_jobs = 0; // not finished
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, project_view& x) {
  return f(caf::meta::type_name("atlas::project_view"), x.name, x.owner, x.created_at,
           x.last_activity, x.jobs, x.active_jobs);
}

/// Every project; `indexed` false while the indexes are being built.
struct project_views {
  std::vector<project_view> projects;
  bool indexed = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, project_views& x) {
  return f(caf::meta::type_name("atlas::project_views"), x.projects, x.indexed);
}

} // namespace atlas
