#pragma once

// Blocking file work on a job's files. Called on the thread pool only, never
// on an actor thread.

#include <cstdint>
#include <string>

#include "adapters/status.hpp"
#include "runtime/job_paths.hpp"

namespace atlas {

/// Up to `max_bytes` of a file (a log, a bundle) from `offset`; empty when
/// there is no such file.
std::string read_file_range(const std::string& path, uint64_t offset, uint64_t max_bytes);

/// Moves an uploaded bundle into the job store as <id>.tgz after checking
/// that it is a gzip tar. The spooled file is removed either way.
status store_bundle(const std::string& upload_path, const std::string& dest);

/// Removes the bundle, working directory, log and archive of a job.
void delete_job_files(const job_paths& paths);

/// Packs the job's archived artifacts into a tgz held in memory.
status pack_artifacts(const job_paths& paths, const std::string& job_id,
                      const std::string& temp_dir, std::string& out);

} // namespace atlas

namespace atlas {

/// Notes that `job_id` runs as process group `pgid` on this node, so that a
/// node restarted after a crash can end what its previous run left behind.
void record_job_process(const std::string& node_dir, const std::string& job_id, int pgid);

/// Forgets that note once the job's process ended.
void forget_job_process(const std::string& node_dir, const std::string& job_id);

/// Kills the process groups noted by a previous run of this node that still
/// run their job (checked through /proc, so a reused pid is left alone).
/// Returns how many were killed.
size_t kill_leftover_jobs(const std::string& node_dir);

} // namespace atlas
