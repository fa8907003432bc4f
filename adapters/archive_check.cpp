#include "adapters/archive_check.hpp"

#include <algorithm>
#include <utility>

#include <archive.h>
#include <archive_entry.h>

namespace atlas::archive::detail {

std::string shown(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 200))
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (name.size() > 200)
    out += "...";
  return out;
}

path_form split(std::string_view p, parts& out) {
  out.clear();
  if (!p.empty() && p[0] == '/')
    return path_form::absolute;
  bool dotdot = false;
  size_t begin = 0;
  while (begin <= p.size()) {
    size_t end = std::min(p.find('/', begin), p.size());
    std::string_view part = p.substr(begin, end - begin);
    begin = end + 1;
    if (part.empty() || part == ".")
      continue;
    dotdot = dotdot || part == "..";
    out.emplace_back(part);
  }
  return dotdot ? path_form::dotdot : path_form::relative;
}

std::string join(const parts& p, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i)
    (out += i ? "/" : "") += p[i];
  return out;
}

bool has_prefix(const parts& p, const parts& prefix) {
  return !prefix.empty() && p.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), p.begin());
}

std::string refused(const char* name, const std::string& why) {
  return "bundle refused: entry '" + shown(name ? name : "?") + "' " + why;
}

std::string validator::check(archive_entry* e, checked& out) {
  const char* raw = archive_entry_pathname(e);
  if (raw == nullptr)
    return "has a name that cannot be read";
  parts p;
  if (auto form = split(raw, p); form != path_form::relative)
    return form == path_form::absolute ? "has an absolute path" : "leaves the job directory";
  if (!strip_.empty() && !p.empty()) {
    if (!has_prefix(p, strip_)) // only if the file changed between passes
      return "is outside the stripped prefix";
    p.erase(p.begin(), p.begin() + static_cast<long>(strip_.size()));
  }

  const char* hardlink = archive_entry_hardlink(e);
  const mode_t type = archive_entry_filetype(e);
  kind k = kind::file;
  if (hardlink != nullptr) {
    parts t;
    if (split(hardlink, t) != path_form::relative)
      return "is a hard link that leaves the job directory";
    if (!strip_.empty()) {
      if (!has_prefix(t, strip_))
        return "is a hard link to a file not extracted before it";
      t.erase(t.begin(), t.begin() + static_cast<long>(strip_.size()));
    }
    out.link_target = join(t, t.size());
    auto it = seen_.find(out.link_target);
    if (it == seen_.end() || it->second != kind::file)
      return "is a hard link to a file not extracted before it";
  } else if (type == AE_IFDIR) {
    k = kind::dir;
  } else if (type == AE_IFLNK) {
    k = kind::symlink;
  } else if (type == AE_IFCHR || type == AE_IFBLK) {
    return "is a device file";
  } else if (type == AE_IFIFO) {
    return "is a FIFO";
  } else if (type == AE_IFSOCK) {
    return "is a socket";
  } else if (type != AE_IFREG) {
    return "has an unsupported file type";
  }

  out.path.clear();
  if (p.empty()) // "./" or the stripped prefix itself: the destination
    return k == kind::dir ? "" : "has an empty name";

  // Every parent must be a real directory of this bundle (or a new one).
  for (size_t i = 1; i < p.size(); ++i) {
    auto [it, added] = seen_.emplace(join(p, i), kind::dir);
    if (it->second == kind::symlink)
      return "passes through the symlink '" + shown(it->first) + "'";
    if (it->second == kind::file)
      return "is inside the file '" + shown(it->first) + "'";
  }
  if (k == kind::symlink) {
    if (auto why = check_symlink(e, p.size() - 1); !why.empty())
      return why;
  }
  out.path = join(p, p.size());
  auto [it, added] = seen_.emplace(out.path, k);
  if (!added && it->second != k)
    return "conflicts with an earlier entry of another type";
  return "";
}

std::string validator::check_symlink(archive_entry* e, size_t depth) {
  const char* target = archive_entry_symlink(e);
  if (target == nullptr || *target == '\0')
    return "is a symlink with an empty target";
  if (target[0] == '/')
    return "is a symlink to an absolute path";
  // Leading ".." parts climb real directories (entries never pass through
  // symlinks), so counting them is exact. A ".." after a name could climb
  // out of wherever a symlink led, so it is not allowed at all.
  parts t;
  split(target, t);
  size_t up = 0;
  while (up < t.size() && t[up] == "..")
    ++up;
  if (std::find(t.begin() + static_cast<long>(up), t.end(), "..") != t.end())
    return "is a symlink whose target has '..' after a name";
  if (up > depth)
    return "is a symlink that leaves the job directory";
  return "";
}

std::string limits::check(archive_entry* e, const std::string& name) {
  if (++entries > opts.max_entries)
    return "bundle refused: more than " + std::to_string(opts.max_entries) + " entries";
  int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  bytes += size > 0 ? static_cast<uint64_t>(size) : 0;
  if (bytes > opts.max_total_bytes)
    return "bundle refused: entry '" + shown(name) + "' takes the bundle past " +
           std::to_string(opts.max_total_bytes) + " bytes";
  return "";
}

} // namespace atlas::archive::detail
