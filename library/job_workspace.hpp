#pragma once

// A job's files on the node that runs it, in plain C++: its bundle
// extracted into a working directory, a bundle fetched chunk by chunk from
// the master, and the working directory moved into the archive at the end.
// These block (disk), so a slot runs them on the thread pool.

#include <cstdint>
#include <string>

#include "library/job_paths.hpp"

namespace atlas {

/// The outcome of preparing a job's working directory.
struct workspace {
  std::string error;  // "" when ready
  std::string cwd;    // where the job runs: <work_dir>/job_source when packed so
  bool fetch = false; // the bundle is not on this node: fetch it from the master first
};

/// Extracts the job's bundle into its working directory (replacing one left
/// from an earlier run). `shared_fs` is the cluster setting (auto, yes,
/// no); `fetched`: the bundle was just fetched into this node's job store.
/// `job_id` is the prefix the bundle was packed under (a scheduled run's:
/// its schedule's id). `params` (a JSON object, "" for none) is written to the working directory
/// as foundations_job_parameters.json, where the SDK's load_parameters() reads it.
/// With `cache_dir`, a bundle of the content store is extracted there once
/// and copied for each job (library/bundle_cache.hpp).
workspace prepare_workspace(const job_paths& paths, const std::string& job_id,
                            const std::string& shared_fs, bool fetched,
                            const std::string& params = "", const std::string& cache_dir = "");

/// Writes a chunk of the bundle fetched from the master at `offset` of the
/// partial file `<bundle>.part`; the last one (offset + size reaches
/// `total`) renames it into place. Returns "" or what went wrong.
std::string store_bundle_chunk(const std::string& bundle, uint64_t offset, uint64_t total,
                               const std::string& bytes);

/// Moves the working directory to <archive_dir>/artifacts (copies when it
/// is on another file system). Returns "" or what went wrong.
std::string archive_workspace(const job_paths& paths);

} // namespace atlas
