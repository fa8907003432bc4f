#pragma once

// Blocking file work on a job's files. Called on the thread pool only, never
// on an actor thread.

#include <cstdint>
#include <string>

#include "adapters/status.hpp"
#include "library/job_paths.hpp"

namespace atlas {

/// Up to `max_bytes` of a file (a log, a bundle) from `offset`; empty when
/// there is no such file.
std::string read_file_range(const std::string& path, uint64_t offset, uint64_t max_bytes);

/// Why store_bundle() did not store a bundle.
enum class bundle_refusal : uint8_t {
  none,
  invalid, // not a gzip tar
  taken,   // the job id already has a bundle (or another uploader's claim)
  io,      // the job store could not be written
};

struct bundle_stored {
  bundle_refusal why = bundle_refusal::none;
  std::string message; // says what is wrong, fit for an answer
  bool ok() const { return why == bundle_refusal::none; }
};

/// Moves an uploaded bundle into the job store as paths.bundle after
/// checking that it is a gzip tar, and records `owner` (the uploader; empty
/// without -p) in paths.bundle_owner. A job id's bundle is never replaced:
/// both files are put in place with link(), which refuses an existing name,
/// so of two uploads racing for one id only one stores anything. The owner
/// record is a whole file (written aside, then linked), so it is there in
/// full or not at all, and it survives a restart. The spooled file is
/// removed either way.
bundle_stored store_bundle(const std::string& upload_path, const job_paths& paths,
                           const std::string& owner);

/// A stored bundle and who uploaded it.
struct bundle_info {
  bool exists = false;
  std::string owner; // empty: uploaded without -p (or before owners were recorded)
};

/// Reads what store_bundle() recorded for a job.
bundle_info read_bundle(const job_paths& paths);

/// A scheduled job's bundle, kept apart from jobs' bundles so that no job
/// id can claim or replace it: <job_store_dir_root>/schedules/<id>.tgz.
inline std::string schedule_bundle_path(const node_config& cfg, const std::string& schedule_id) {
  return cfg.job_store_dir_root + "/schedules/" + schedule_id + ".tgz";
}

/// Moves the bundle uploaded for a new scheduled job (its id's job bundle)
/// to `kept`, and drops its owner record (the schedule keeps the owner).
status keep_schedule_bundle(const job_paths& uploaded, const std::string& kept);

/// Puts a kept bundle back where it was uploaded (a schedule not stored).
void return_schedule_bundle(const std::string& kept, const job_paths& uploaded,
                            const std::string& owner);

/// Gives a job (a scheduled run, a job of a content bundle) its own copy of
/// a kept bundle without an upload:
/// a hard link (a copy across file systems) at run.bundle, with `owner` as
/// its uploader. A bundle the run already has (fired before a restart) is
/// left as it is.
status give_run_bundle(const std::string& kept, const job_paths& run, const std::string& owner);

/// Removes the bundle (and its owner record), working directory, log and
/// archive of a job.
void delete_job_files(const job_paths& paths);

/// Packs the job's archived artifacts into a tgz held in memory, entries
/// named "<job_id>/...". With `folder` (a relative path inside the
/// job's folder in the artifacts, job_source/ when there is one, e.g.
/// "atlas_tensorboard"), only that folder is packed, its
/// content still under "<job_id>/"; a folder that leaves the artifacts (by
/// "..", an absolute path or a symlink) is refused as missing.
status pack_artifacts(const job_paths& paths, const std::string& job_id,
                      const std::string& temp_dir, std::string& out,
                      const std::string& folder = {});

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
