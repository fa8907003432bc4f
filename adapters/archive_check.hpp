#pragma once

// The entry checker behind archive::extract_tgz: decides, header by header,
// whether a bundle entry may be written below the job directory. Internal to
// the archive adapter (archive.cpp and its test build); no libarchive state
// is kept here beyond the entry being looked at.
//
// A validator or limits object belongs to one pass over one archive and to
// the thread running it. Nothing here throws except std::bad_alloc.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/archive.hpp"

struct archive_entry;

namespace atlas::archive::detail {

/// Entry names come from strangers: `name` made readable and short for errors.
std::string shown(std::string_view name);

/// A relative path split into its parts.
using parts = std::vector<std::string>;

enum class path_form { relative, absolute, dotdot };

/// Splits `p` on '/' into `out`, dropping empty and "." parts.
path_form split(std::string_view p, parts& out);

/// The first `count` parts joined with '/'.
std::string join(const parts& p, size_t count);

/// Whether `p` starts with the (non-empty) `prefix`.
bool has_prefix(const parts& p, const parts& prefix);

/// "bundle refused: entry '<name>' <why>".
std::string refused(const char* name, const std::string& why);

/// What one entry becomes once checked: its path below the destination
/// (empty: nothing to write) and, for hard links, the target's path.
struct checked {
  std::string path;
  std::string link_target;
};

/// Checks entries in archive order for one choice of prefix stripping. It
/// remembers what earlier entries made of each path, which is what hard
/// links, symlinks and "through a symlink" rules depend on.
class validator {
public:
  /// `strip`: the leading parts removed from every entry (empty: none).
  explicit validator(parts strip) : strip_(std::move(strip)) {}

  /// Returns an empty string when the entry is fine, else the rule broken
  /// (to be completed by `refused`); fills `out` for a fine entry.
  std::string check(archive_entry* e, checked& out);

private:
  enum class kind : uint8_t { dir, file, symlink };

  // `depth`: how many directories the link sits below the destination.
  static std::string check_symlink(archive_entry* e, size_t depth);

  parts strip_;
  std::unordered_map<std::string, kind> seen_;
};

/// Counts entries and bytes against the limits; the same in every pass.
struct limits {
  const extract_options& opts;
  uint64_t entries = 0;
  uint64_t bytes = 0;

  /// Returns an empty string while within the limits, else the whole error.
  std::string check(archive_entry* e, const std::string& name);
};

} // namespace atlas::archive::detail
