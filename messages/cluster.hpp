#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "messages/job.hpp"

namespace atlas {

/// One job slot of a node, as the master sees it.
struct slot_info {
  std::string key;          // "<node_id>/<index>", unique in the cluster
  std::string node_id;
  std::string host_address; // the node's HOST_ADDRESS
  int32_t index = 0;
  std::vector<std::string> gpus; // GPU ids handed to this slot's jobs
  std::string current_job;  // empty when free
  uint64_t jobs_run = 0;
  std::string last_error;
  /// When the slot lost its master while holding a job: what it last knew of
  /// it (running, or a final state it could not deliver yet).
  bool has_report = false;
  job_report report;
  std::vector<std::string> job_gpus; // the GPUs of its node its current job holds
  std::string gpu_model;    // model name of its GPUs ("" without)
  double node_cpus = 0;     // its node's CPUs for jobs (0: not counted)
  uint64_t node_memory_bytes = 0; // its node's memory for jobs (0: not counted)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, slot_info& x) {
  return f(caf::meta::type_name("atlas::slot_info"), x.key, x.node_id,
           x.host_address, x.index, x.gpus, x.current_job, x.jobs_run,
           x.last_error, x.has_report, x.report, x.job_gpus, x.gpu_model,
           x.node_cpus, x.node_memory_bytes, finite_on_load(x.node_cpus));
}

/// A node as it introduces itself to the master.
struct node_info {
  std::string node_id;
  std::string host_address; // its HOST_ADDRESS
  std::string version;
  int32_t num_slots = 0;
  double started = 0;       // epoch seconds
  std::vector<std::string> gpus; // -g: "<index> <name> (<memory>, <uuid>)" each
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("atlas::node_info"), x.node_id, x.host_address,
           x.version, x.num_slots, x.started, x.gpus, finite_on_load(x.started));
}

} // namespace atlas
