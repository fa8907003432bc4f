#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "adapters/status.hpp"

/// Job bundles: gzip tars packed from a directory and unpacked into a job
/// directory, refusing anything that could write outside it.
///
/// All functions block (run them on a thread pool, never on the event loop
/// or a CAF worker), may be called from any thread, keep no state between
/// calls and never throw: failures come back as a status.
namespace atlas::archive {

/// Packs `src_dir` into a gzip tar at `out_file` (replaced if present; removed
/// again on failure). Entries are named "<prefix>/<relative path>" (just the
/// relative path when `prefix` is empty), with a directory entry for the
/// prefix itself. Directories, regular files and symlinks (stored as links,
/// never followed) are packed, in name order; other file types are skipped.
/// Entries whose name equals one of `exclude` (e.g. ".git", "__pycache__")
/// are skipped with everything below them. `progress(bytes_so_far)`, when
/// given, is called after each chunk of file data.
status create_tgz(const std::string& src_dir, const std::string& out_file,
                  const std::string& prefix, const std::vector<std::string>& exclude = {},
                  const std::function<void(uint64_t)>& progress = {});

struct extract_options {
  /// When every entry starts with "<strip_prefix>/" (or is exactly it), that
  /// leading part is removed; otherwise nothing is stripped.
  std::string strip_prefix;
  /// Upper bound on the sum of the entries' sizes; beyond it: refused (bomb).
  uint64_t max_total_bytes = 8ull << 30;
  /// Upper bound on the number of entries.
  uint64_t max_entries = 200000;
};

/// Extracts a gzip (or plain) tar into `dest_dir` (created if missing).
///
/// The whole bundle is refused on any hostile entry: ".." components,
/// absolute paths, symlinks whose target is absolute or may resolve outside
/// `dest_dir`, hard links whose target is outside or not extracted before
/// them, device files, FIFOs, sockets, entries through a symlink, too many
/// bytes or entries. The error names the entry and the rule, e.g.
/// "bundle refused: entry '../evil' leaves the job directory".
///
/// All headers are checked before anything is written, and again while
/// writing. On failure nothing is written outside `dest_dir`; what was
/// written inside may stay (the caller deletes `dest_dir`). File modes are
/// masked to 0777 (no setuid/setgid/sticky), directories keep owner rwx so
/// the tree can be removed, owners are not restored, times are.
status extract_tgz(const std::string& archive_path, const std::string& dest_dir,
                   const extract_options& opts = {});

/// Cheap check that `path` is a gzip-compressed tar: the gzip magic plus a
/// readable first tar header (an empty tar counts). Fails with an error
/// starting "not a gzip tar archive".
status check_tgz(const std::string& path);

} // namespace atlas::archive
