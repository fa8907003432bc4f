#pragma once

// Bundles stored once by content. A sweep or a Python loop submits hundreds
// of jobs with the same code: the client uploads the bundle once (named by
// its SHA-256), and each job's bundle is a hard link to that file, so the
// job store holds one copy and the rest of the pipeline (fetch by job id,
// extraction, ownership checks) is unchanged. Blocking file work: call on
// the thread pool only.

#include <cstdint>
#include <string>
#include <string_view>

#include "library/job_files.hpp"

namespace atlas {

/// <job_store_dir_root>/bundles: on the job store's file system, so a
/// job's bundle can be a hard link into it.
std::string bundle_store_dir(const std::string& job_store_dir_root);

/// 64 lowercase hex digits (a SHA-256 as the store names it).
inline bool valid_bundle_hash(std::string_view hash) {
  if (hash.size() != 64)
    return false;
  for (char c : hash)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

/// What storing an uploaded bundle did.
struct content_bundle {
  bundle_stored result;  // why it was refused, if it was
  std::string hash;      // SHA-256 of the file, hex
  uint64_t size = 0;
  bool stored = false;   // false: the store already had this content
};

/// Checks the upload is a gzip tar, names it by its SHA-256 and keeps it in
/// `store_dir` unless the same content is there, and notes `owner` (the
/// uploader; empty without -p) as one who may use it. The spooled file is
/// removed either way.
content_bundle store_content_bundle(const std::string& upload_path, const std::string& store_dir,
                                    const std::string& owner);

/// Whether `owner` uploaded the bundle `hash` (so may submit jobs with it).
/// A yes counts as a use of the bundle (prune_content_bundles): a client
/// asks just before it submits jobs with it.
bool has_content_bundle(const std::string& store_dir, const std::string& hash,
                        const std::string& owner);

/// Gives job `paths` the stored bundle `hash` as its bundle, uploaded by
/// `owner`: refused (invalid) when `owner` never uploaded that content,
/// (taken) when the job id already has a bundle.
bundle_stored use_content_bundle(const std::string& store_dir, const std::string& hash,
                                 const std::string& owner, const job_paths& paths);

/// Removes the stored bundles no job holds (no hard link but the store's)
/// that nobody uploaded, used or asked for in the last `unused_s` seconds,
/// with their uploaders' marks, and uploads left half way by a crash. A job
/// keeps its own link, so nothing a job needs goes; a client whose bundle
/// went uploads it again. `now`: seconds since the epoch. Returns how many
/// bundles went.
uint64_t prune_content_bundles(const std::string& store_dir, double unused_s, double now);

} // namespace atlas
