#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/finite.hpp"

#include "messages/job_state.hpp"

namespace atlas {

/// One step of a job's lifecycle: the state it entered, when, and where.
struct job_transition {
  job_state state = job_state::queued;
  double time = 0;   // epoch seconds
  std::string slot;  // slot key, when it concerned a slot
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_transition& x) {
  return f(caf::meta::type_name("atlas::job_transition"), x.state, x.time, x.slot,
           finite_on_load(x.time));
}

/// A job that must end a certain way before another may start.
struct job_dependency {
  std::string job_id;
  std::string when = "ok"; // ok (completed) | failed | any (any final state)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_dependency& x) {
  return f(caf::meta::type_name("atlas::job_dependency"), x.job_id, x.when);
}

/// Everything the system knows about one job. Persisted in Redis as JSON
/// (see library/job_codec.hpp) and carried between actors and nodes.
struct job_record {
  std::string job_id;       // validated: UUID or [A-Za-z0-9_-]{1,64}
  std::string spec;         // JSON object as the client sent it (Docker-style)
  std::string metadata;     // JSON object: project_name, username, ...
  std::string project_name; // from metadata, for listings
  std::string username;     // from metadata (or the token in -p mode)
  int64_t num_gpus = 0;     // gpu_spec.num_gpus
  int64_t priority = 0;     // higher runs first
  job_state state = job_state::queued;
  double queued_time = 0;   // epoch seconds; 0 = not yet
  double start_time = 0;
  double end_time = 0;
  int64_t return_code = 0;
  bool has_return_code = false;
  std::string reason;       // why it failed, was cancelled or lost
  std::string node;         // node id of the slot that ran it
  std::string host_address; // that node's HOST_ADDRESS
  std::string slot;         // slot key "<node>/<index>"
  int64_t retries = 0;      // times it was requeued after being lost
  int64_t max_retries = -1; // requeues allowed; -1 = the cluster's default
  int64_t pin = 0;          // manual queue position (0 = ordered by policy)
  uint64_t seq = 0;         // submission order, assigned by the master
  std::vector<job_transition> history; // every state it entered, in order
  std::vector<std::string> gpus; // GPU ids of its node given to it at dispatch
  std::string gpu_model;    // their model name (nvidia-smi), for usage by model
  double cpu_seconds = 0;   // user + system CPU time of its processes, once ended
  uint64_t peak_memory_bytes = 0; // its largest resident memory, once ended
  /// How many entries of `history` are in the event stream; kept by the
  /// lookup actor, which publishes the others with the record's write.
  uint64_t published = 0;
  double time_limit_s = 0;  // its run time limit; 0 = none (defaults applied at submit)
  double cpus = 0;          // CPUs it asks for (0: none counted in placement)
  uint64_t memory_bytes = 0; // memory it asks for (0: none counted)
  std::vector<job_dependency> after; // jobs that must end first
  std::vector<std::string> groups;   // its user's quota groups at submission
  int64_t preemptions = 0;  // times it was preempted (its later runs see ATLAS_PREEMPTED=1)
  int64_t preempted_by = 0; // priority of the job it last made way for
  std::string params;       // JSON object the job reads with load_parameters() ("" = none)
  std::string sweep_id;     // the sweep it is a trial of ("" = none)
  std::string schedule_id;  // the scheduled job that started it ("" = none)
  int64_t sweep_limit = 0;  // most trials of its sweep running at once (0 = no cap)
  /// A plain `python main.py` run outside the cluster that records what it
  /// tracks (as the original did with an execution config): no slot runs
  /// it, the SDK reports its end (actors/master_local_runs.cpp).
  bool local_run = false;
  /// The job's tracking secret for this dispatch (the SDK's credential).
  /// Travels to the slot only; never persisted (Redis keeps its digest),
  /// never written to an answer or a log.
  std::string job_secret;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_record& x) {
  return f(caf::meta::type_name("atlas::job_record"), x.job_id, x.spec, x.metadata,
           x.project_name, x.username, x.num_gpus, x.priority, x.state,
           x.queued_time, x.start_time, x.end_time, x.return_code,
           x.has_return_code, x.reason, x.node, x.host_address, x.slot,
           x.retries, x.max_retries, x.pin, x.seq, x.history, x.gpus,
           x.gpu_model, x.cpu_seconds, x.peak_memory_bytes, x.published, x.time_limit_s, x.cpus, x.memory_bytes, x.after,
           x.groups, x.preemptions, x.preempted_by, x.params, x.sweep_id,
           x.schedule_id, x.sweep_limit, x.local_run, x.job_secret,
           finite_on_load(x.queued_time, x.start_time, x.end_time, x.cpu_seconds,
                          x.time_limit_s, x.cpus));
}

/// What a slot reports about the job it runs.
struct job_report {
  std::string job_id;
  job_state state = job_state::running;
  int64_t return_code = 0;
  bool has_return_code = false;
  std::string reason;
  double cpu_seconds = 0;         // what its processes used, in a final report
  uint64_t peak_memory_bytes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_report& x) {
  return f(caf::meta::type_name("atlas::job_report"), x.job_id, x.state,
           x.return_code, x.has_return_code, x.reason, x.cpu_seconds,
           x.peak_memory_bytes, finite_on_load(x.cpu_seconds));
}

/// A piece of a job's bundle, for nodes that do not share the master's
/// file system: they fetch the bundle from the master chunk by chunk.
struct bundle_chunk {
  uint64_t offset = 0; // where `bytes` start in the bundle
  uint64_t total = 0;  // the bundle's size
  std::string bytes;   // at most bundle_chunk_bytes
};

/// The most bytes one chunk carries.
constexpr uint64_t bundle_chunk_bytes = 1 << 20;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bundle_chunk& x) {
  return f(caf::meta::type_name("atlas::bundle_chunk"), x.offset, x.total, x.bytes);
}

} // namespace atlas
