#pragma once

// /metrics: the node's counters and histograms (prometheus-cpp's registry,
// one per process) and the exposition in the Prometheus text format. Actors
// count through the functions here; the adapters' counters
// (adapters/wire_counters.hpp) and the process's own figures are read at
// scrape time. Label values come from small fixed sets or from node ids and
// priorities, never from job ids, so the number of series stays bounded.

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "messages/job_state.hpp"

namespace atlas::metrics {

/// Names this process in atlas_build_info (call once at start).
void set_identity(const std::string& node, const std::string& role, const std::string& version);

// --- HTTP (the gateway's bridge, once an answer is handed to the server)

/// A bounded name for the route of `path`: "root", "healthz", "metrics",
/// "queued_jobs", "running_jobs", "completed_jobs", "failed_jobs", "jobs",
/// "job_bundle", "workers", "api_v1_<known>", "dashboard_api", "auth",
/// "page" (the dashboard's files) or "other".
std::string_view route_class(std::string_view path, std::string_view listener);

void http_answered(std::string_view listener, std::string_view path, int status, double seconds);

// --- jobs (the master and its job actors; the worker slots)

void submitted();
void dispatched();
/// A job started: its wait since submission and since the dispatch decision.
void started(double wait_seconds, double since_dispatch_seconds);
/// A job ended in `state` for `reason` (classified by reason_class).
void ended(job_state state, std::string_view reason);
/// A bounded class of a final state's reason: ok, exit_code, out_of_memory,
/// lost, start_error, time_limit, stopped, other.
std::string_view reason_class(job_state state, std::string_view reason);
/// A slot of this node started a job's process or container.
void slot_started();

// --- notifications (library/notifier.hpp): sinks are the configured ones

/// One event's outcome at `sink`: "sent", "failed" (its tries spent) or
/// "dropped" (the sink's queue was full).
void notification(std::string_view sink, std::string_view outcome);

// --- actors (counted_actor, on every message it handles)

struct actor_counters {
  std::atomic<uint64_t> handled{0};
  std::atomic<uint64_t> mailbox{0}; // as last seen by any actor of this name
  std::atomic<int64_t> live{0};
};
/// The counters of every actor called `name` (a fixed set of names).
actor_counters& actor(const char* name);

// --- the master's view (it answers metrics_atom with cluster_text())

struct cluster_snapshot {
  bool active = true;                  // the active master (standbys have no view)
  std::vector<uint64_t> jobs_by_state; // in job_state order
  struct queue_row {
    int64_t priority = 0;
    uint64_t depth = 0;
    double oldest_age = 0; // seconds since its oldest job was submitted
  };
  std::vector<queue_row> queue;
  struct node_row {
    std::string node;
    uint64_t busy = 0, free = 0, draining = 0;
    uint64_t gpus_busy = 0, gpus_free = 0;
    double heartbeat_age = 0;
  };
  std::vector<node_row> nodes;
};

/// The most priorities the queue gauges name; the others add up in "other".
constexpr size_t max_priority_labels = 16;

std::string cluster_text(const cluster_snapshot& s);

/// Everything this process counts, in the text format (version 0.0.4).
std::string exposition();

/// The content type of exposition().
constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

} // namespace atlas::metrics
