#pragma once

// Blocking file work on a job's files. Called on the thread pool only, never
// on an actor thread.

#include <cstdint>
#include <string>

#include "adapters/status.hpp"
#include "runtime/job_paths.hpp"

namespace atlas {

/// Up to `max_bytes` of the log from `offset`; empty when there is no log.
std::string read_log(const std::string& path, uint64_t offset, uint64_t max_bytes);

/// Moves an uploaded bundle into the job store as <id>.tgz after checking
/// that it is a gzip tar. The spooled file is removed either way.
status store_bundle(const std::string& upload_path, const std::string& dest);

/// Removes the bundle, working directory, log and archive of a job.
void delete_job_files(const job_paths& paths);

/// Packs the job's archived artifacts into a tgz held in memory.
status pack_artifacts(const job_paths& paths, const std::string& job_id,
                      const std::string& temp_dir, std::string& out);

} // namespace atlas
