#include "adapters/archive.hpp"

#include "adapters/archive_check.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace atlas::archive {

namespace {

// The entry checker and the path helpers it shares with packing.
using detail::checked;
using detail::has_prefix;
using detail::join;
using detail::limits;
using detail::parts;
using detail::path_form;
using detail::refused;
using detail::shown;
using detail::split;
using detail::validator;

using reader = std::unique_ptr<struct ::archive, decltype(&archive_read_free)>;
using writer = std::unique_ptr<struct ::archive, decltype(&archive_write_free)>;
using entry_ptr = std::unique_ptr<archive_entry, decltype(&archive_entry_free)>;

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

std::string lib_error(struct ::archive* a) {
  const char* msg = archive_error_string(a);
  return msg ? msg : "unknown error";
}

// ---------------------------------------------------------------- extract

// Tar only, gzip or not: no other format or filter is ever parsed.
status open_reader(const std::string& path, reader& r,
                   const std::string& what = "bundle unreadable: ") {
  if (!r)
    return status::fail("out of memory");
  archive_read_support_filter_gzip(r.get());
  archive_read_support_format_tar(r.get());
  if (archive_read_open_filename(r.get(), path.c_str(), 64 * 1024) != ARCHIVE_OK)
    return status::fail(what + lib_error(r.get()));
  return status::success();
}

// Pass 1: reads every header, writes nothing. Decides whether the prefix is
// stripped (it must match every entry) and refuses a hostile bundle before
// a single file exists.
status scan(const std::string& path, const extract_options& opts, const parts& strip,
            bool& use_strip) {
  reader in{archive_read_new(), &archive_read_free};
  if (auto s = open_reader(path, in); !s)
    return s;
  validator plain{{}};
  validator stripped{strip};
  std::string plain_error, stripped_error;
  bool all_match = !strip.empty();
  bool any_match = false;
  limits lim{opts};
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(in.get(), &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    const char* name = archive_entry_pathname(e);
    if (auto why = lim.check(e, name ? name : "?"); !why.empty())
      return status::fail(why);
    checked c;
    if (plain_error.empty())
      if (auto why = plain.check(e, c); !why.empty())
        plain_error = refused(name, why);
    parts p;
    if (all_match && name && split(name, p) == path_form::relative && !p.empty()) {
      all_match = has_prefix(p, strip);
      any_match = true;
    }
    if (all_match && stripped_error.empty())
      if (auto why = stripped.check(e, c); !why.empty())
        stripped_error = refused(name, why);
    if (!plain_error.empty() && !all_match)
      return status::fail(plain_error);
  }
  if (rc != ARCHIVE_EOF)
    return status::fail("bundle unreadable: " + lib_error(in.get()));
  use_strip = all_match && any_match;
  const std::string& error = use_strip ? stripped_error : plain_error;
  return error.empty() ? status::success() : status::fail(error);
}

status copy_data(struct ::archive* in, struct ::archive* out, const char* name) {
  const void* buf = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  int rc;
  while ((rc = archive_read_data_block(in, &buf, &size, &offset)) == ARCHIVE_OK) {
    if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_OK)
      return status::fail("cannot extract entry '" + shown(name) + "': " + lib_error(out));
  }
  if (rc != ARCHIVE_EOF)
    return status::fail("bundle unreadable at entry '" + shown(name) + "': " + lib_error(in));
  return status::success();
}

// Pass 2: the same checks again (the file could have changed), then writes.
status unpack(const std::string& path, const std::string& root, const extract_options& opts,
              const parts& strip) {
  reader in{archive_read_new(), &archive_read_free};
  if (auto s = open_reader(path, in); !s)
    return s;
  writer out{archive_write_disk_new(), &archive_write_free};
  if (!out)
    return status::fail("out of memory");
  // Paths handed to libarchive are absolute (root + checked relative path),
  // so SECURE_NOABSOLUTEPATHS cannot be set: absolute entry names are
  // refused by the validator instead.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                              ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                              ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM);
  validator v{strip};
  limits lim{opts};
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(in.get(), &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    const std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "?";
    if (auto why = lim.check(e, name); !why.empty())
      return status::fail(why);
    checked c;
    if (auto why = v.check(e, c); !why.empty())
      return status::fail(refused(name.c_str(), why));
    if (c.path.empty())
      continue;
    archive_entry_set_pathname(e, (root + "/" + c.path).c_str());
    if (!c.link_target.empty())
      archive_entry_set_hardlink(e, (root + "/" + c.link_target).c_str());
    const mode_t perm = archive_entry_perm(e) & 0777;
    archive_entry_set_perm(e, archive_entry_filetype(e) == AE_IFDIR ? (perm | 0700) : perm);
    if (archive_write_header(out.get(), e) < ARCHIVE_WARN)
      return status::fail("cannot extract entry '" + shown(name) + "': " + lib_error(out.get()));
    if (archive_entry_size(e) > 0)
      if (auto s = copy_data(in.get(), out.get(), name.c_str()); !s)
        return s;
    if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN)
      return status::fail("cannot extract entry '" + shown(name) + "': " + lib_error(out.get()));
  }
  if (rc != ARCHIVE_EOF)
    return status::fail("bundle unreadable: " + lib_error(in.get()));
  if (archive_write_close(out.get()) != ARCHIVE_OK) // applies directory modes and times
    return status::fail("cannot finish extraction: " + lib_error(out.get()));
  return status::success();
}

// ----------------------------------------------------------------- create

struct packer {
  struct ::archive* out;
  std::string prefix;
  const std::vector<std::string>& exclude;
  const std::function<void(uint64_t)>& progress;
  struct stat self {}; // the archive being written, never packed into itself
  uint64_t bytes = 0;
  std::vector<char> buf = std::vector<char>(64 * 1024);

  std::string entry_name(const std::string& rel) const {
    return prefix.empty() ? rel : rel.empty() ? prefix : prefix + "/" + rel;
  }

  // Adds one directory, regular file or symlink found at `full` with `st`.
  status add(const std::string& full, struct stat st, const std::string& rel) {
    fd_guard f;
    std::string target;
    if (S_ISREG(st.st_mode)) {
      // Size and mode from the open file, so the header matches what is read.
      f.fd = ::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (f.fd < 0 || ::fstat(f.fd, &st) != 0)
        return status::fail("cannot read '" + full + "': " + std::strerror(errno));
      if (st.st_dev == self.st_dev && st.st_ino == self.st_ino)
        return status::success();
    } else if (S_ISLNK(st.st_mode)) {
      target.resize(static_cast<size_t>(st.st_size) + 256);
      ssize_t n = ::readlink(full.c_str(), target.data(), target.size());
      if (n < 0)
        return status::fail("cannot read link '" + full + "': " + std::strerror(errno));
      target.resize(static_cast<size_t>(n));
    }
    entry_ptr e{archive_entry_new(), &archive_entry_free};
    archive_entry_set_pathname(e.get(), entry_name(rel).c_str());
    archive_entry_set_filetype(e.get(), st.st_mode & S_IFMT);
    archive_entry_set_perm(e.get(), S_ISLNK(st.st_mode) ? 0777 : st.st_mode & 0777);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    archive_entry_set_size(e.get(), S_ISREG(st.st_mode) ? st.st_size : 0);
    if (S_ISLNK(st.st_mode))
      archive_entry_set_symlink(e.get(), target.c_str());
    if (archive_write_header(out, e.get()) < ARCHIVE_WARN)
      return status::fail("cannot add '" + full + "': " + lib_error(out));
    // The header promised st_size bytes: libarchive pads a file that shrank
    // meanwhile and cuts one that grew.
    for (int64_t left = S_ISREG(st.st_mode) ? st.st_size : 0; left > 0;) {
      ssize_t n = ::read(f.fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return status::fail("cannot read '" + full + "': " + std::strerror(errno));
      if (n == 0)
        break;
      if (archive_write_data(out, buf.data(), static_cast<size_t>(n)) < 0)
        return status::fail("cannot write archive: " + lib_error(out));
      left -= n;
      bytes += static_cast<uint64_t>(n);
      if (progress)
        progress(bytes);
    }
    return status::success();
  }

  // Packs the contents of `dir` (whose path below the source is `rel`).
  status walk(const std::string& dir, const std::string& rel) {
    std::vector<std::string> names;
    {
      std::unique_ptr<DIR, int (*)(DIR*)> d{::opendir(dir.c_str()), &::closedir};
      if (!d)
        return status::fail("cannot list '" + dir + "': " + std::strerror(errno));
      while (dirent* de = ::readdir(d.get())) {
        std::string n = de->d_name;
        if (n != "." && n != ".." &&
            std::find(exclude.begin(), exclude.end(), n) == exclude.end())
          names.push_back(std::move(n));
      }
    }
    std::sort(names.begin(), names.end()); // same tree, same archive
    for (const auto& n : names) {
      const std::string full = dir + "/" + n;
      const std::string child = rel.empty() ? n : rel + "/" + n;
      struct stat st {};
      if (::lstat(full.c_str(), &st) != 0) {
        if (errno == ENOENT)
          continue; // removed while we were packing
        return status::fail("cannot stat '" + full + "': " + std::strerror(errno));
      }
      // Devices, FIFOs and sockets have no place in a bundle.
      if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        continue;
      status s = add(full, st, child);
      if (s && S_ISDIR(st.st_mode))
        s = walk(full, child);
      if (!s)
        return s;
    }
    return status::success();
  }
};

status create(const std::string& src_dir, const std::string& out_file,
              const std::string& prefix, const std::vector<std::string>& exclude,
              const std::function<void(uint64_t)>& progress, bool& opened) {
  struct stat src {};
  if (::stat(src_dir.c_str(), &src) != 0 || !S_ISDIR(src.st_mode))
    return status::fail("cannot pack '" + src_dir + "': not a directory");
  parts pre;
  if (split(prefix, pre) != path_form::relative)
    return status::fail("invalid bundle prefix '" + shown(prefix) + "'");
  writer out{archive_write_new(), &archive_write_free};
  if (!out)
    return status::fail("out of memory");
  if (archive_write_add_filter_gzip(out.get()) != ARCHIVE_OK ||
      archive_write_set_format_pax_restricted(out.get()) != ARCHIVE_OK ||
      archive_write_open_filename(out.get(), out_file.c_str()) != ARCHIVE_OK)
    return status::fail("cannot write '" + out_file + "': " + lib_error(out.get()));
  opened = true;
  packer p{out.get(), join(pre, pre.size()), exclude, progress};
  ::stat(out_file.c_str(), &p.self);
  if (!p.prefix.empty())
    if (auto s = p.add(src_dir, src, ""); !s)
      return s;
  if (auto s = p.walk(src_dir, ""); !s)
    return s;
  if (archive_write_close(out.get()) != ARCHIVE_OK)
    return status::fail("cannot write '" + out_file + "': " + lib_error(out.get()));
  return status::success();
}

} // namespace

status create_tgz(const std::string& src_dir, const std::string& out_file,
                  const std::string& prefix, const std::vector<std::string>& exclude,
                  const std::function<void(uint64_t)>& progress) {
  status result = status::fail("cannot pack '" + src_dir + "': internal error");
  bool opened = false; // only then is out_file ours to remove on failure
  try {
    result = create(src_dir, out_file, prefix, exclude, progress, opened);
  } catch (const std::exception& e) { // bad_alloc, or thrown by `progress`
    result = status::fail("cannot pack '" + src_dir + "': " + e.what());
  } catch (...) {
  }
  if (!result && opened)
    ::unlink(out_file.c_str());
  return result;
}

status extract_tgz(const std::string& archive_path, const std::string& dest_dir,
                   const extract_options& opts) {
  try {
    parts strip;
    if (split(opts.strip_prefix, strip) != path_form::relative)
      return status::fail("invalid strip prefix '" + shown(opts.strip_prefix) + "'");
    bool use_strip = false;
    if (auto s = scan(archive_path, opts, strip, use_strip); !s)
      return s;
    std::error_code ec;
    std::filesystem::create_directories(dest_dir, ec);
    // A symlink-free absolute root: libarchive's SECURE_SYMLINKS checks every
    // component of the paths we hand it, this one included.
    auto root = std::filesystem::canonical(dest_dir, ec);
    if (ec)
      return status::fail("cannot create '" + dest_dir + "': " + ec.message());
    return unpack(archive_path, root.string(), opts, use_strip ? strip : parts{});
  } catch (const std::exception& e) {
    return status::fail("cannot extract '" + archive_path + "': " + e.what());
  } catch (...) {
    return status::fail("cannot extract '" + archive_path + "': internal error");
  }
}

status check_tgz(const std::string& path) {
  try {
    fd_guard f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0)
      return status::fail("cannot open '" + path + "': " + std::strerror(errno));
    unsigned char magic[2] = {0, 0};
    ssize_t n = ::pread(f.fd, magic, sizeof magic, 0);
    if (n == 0)
      return status::fail("not a gzip tar archive: the file is empty");
    if (n != 2 || magic[0] != 0x1f || magic[1] != 0x8b)
      return status::fail("not a gzip tar archive: no gzip header");
    reader in{archive_read_new(), &archive_read_free};
    if (auto s = open_reader(path, in, "not a gzip tar archive: "); !s)
      return s;
    archive_entry* e = nullptr;
    if (archive_read_next_header(in.get(), &e) < ARCHIVE_WARN) // EOF: an empty tar
      return status::fail("not a gzip tar archive: " + lib_error(in.get()));
    return status::success();
  } catch (...) {
    return status::fail("not a gzip tar archive: internal error");
  }
}

} // namespace atlas::archive
