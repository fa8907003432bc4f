#include "library/bundle_store.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "adapters/archive.hpp"

namespace fs = std::filesystem;

namespace atlas {

namespace {

/// SHA-256 of a file in hex; "" when it cannot be read.
std::string sha256_of_file(const std::string& path, uint64_t& size) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return {};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return {};
  std::string buf(1 << 16, '\0');
  size = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto n = static_cast<size_t>(in.gcount());
    size += n;
    if (n > 0 && EVP_DigestUpdate(ctx.get(), buf.data(), n) != 1)
      return {};
  }
  if (in.bad())
    return {};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1)
    return {};
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex += digits[md[i] >> 4];
    hex += digits[md[i] & 15];
  }
  return hex;
}

/// One file per uploader under <hash>.owners/, named by the user name in
/// hex (any user name is a safe file name that way); "-" without -p.
std::string owner_mark(const std::string& store_dir, const std::string& hash,
                       const std::string& owner) {
  static const char* digits = "0123456789abcdef";
  std::string name = owner.empty() ? "-" : "";
  for (unsigned char c : owner) {
    name += digits[c >> 4];
    name += digits[c & 15];
  }
  return store_dir + "/" + hash + ".owners/" + name;
}

std::string aside_name(const std::string& dir) {
  std::random_device rd;
  return dir + "/.incoming-" + std::to_string(rd()) + std::to_string(rd());
}

/// Marks a use of a stored bundle: its inode's change time, which every
/// link and unlink (a job given it, a job removed) moves as well. Through
/// the access time: the modification time keys the nodes' extraction
/// cache (bundle_cache.hpp), which a use must not empty.
void touch(const std::string& path) {
  const struct timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  ::utimensat(AT_FDCWD, path.c_str(), times, 0);
}

content_bundle refused(bundle_refusal why, std::string message) {
  content_bundle b;
  b.result = {why, std::move(message)};
  return b;
}

} // namespace

std::string bundle_store_dir(const std::string& job_store_dir_root) {
  return job_store_dir_root + "/bundles";
}

content_bundle store_content_bundle(const std::string& upload_path, const std::string& store_dir,
                                    const std::string& owner) {
  std::error_code ec;
  auto drop_upload = [&] { fs::remove(upload_path, ec); };
  if (auto st = archive::check_tgz(upload_path); !st) {
    drop_upload();
    return refused(bundle_refusal::invalid, "Invalid job bundle: " + st.error());
  }
  content_bundle b;
  b.hash = sha256_of_file(upload_path, b.size);
  if (b.hash.empty()) {
    drop_upload();
    return refused(bundle_refusal::io, "cannot read the uploaded bundle");
  }
  fs::create_directories(store_dir + "/" + b.hash + ".owners", ec);
  auto target = store_dir + "/" + b.hash + ".tgz";
  if (fs::exists(target, ec)) {
    drop_upload(); // the same content is stored: nothing to keep
    touch(target);
  } else {
    // Moved next to its name, then linked: link() never replaces, so of two
    // uploads of one content racing, one file stays and both are right.
    auto aside = aside_name(store_dir);
    fs::rename(upload_path, aside, ec);
    if (ec) { // the spool is on another file system
      ec.clear();
      fs::copy_file(upload_path, aside, ec);
      drop_upload();
    }
    if (ec)
      return refused(bundle_refusal::io, "cannot store the bundle in " + store_dir + ": " + ec.message());
    b.stored = ::link(aside.c_str(), target.c_str()) == 0;
    int err = errno;
    ::unlink(aside.c_str());
    if (!b.stored && err != EEXIST)
      return refused(bundle_refusal::io, "cannot store the bundle at " + target + ": " + std::strerror(err));
  }
  // The mark comes after the bundle, so a mark always means a whole bundle.
  int fd = ::open(owner_mark(store_dir, b.hash, owner).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return refused(bundle_refusal::io, "cannot record the bundle's uploader in " + store_dir + ": "
                                         + std::strerror(errno));
  ::close(fd);
  return b;
}

bool has_content_bundle(const std::string& store_dir, const std::string& hash,
                        const std::string& owner) {
  std::error_code ec;
  auto target = store_dir + "/" + hash + ".tgz";
  if (!valid_bundle_hash(hash) || !fs::exists(owner_mark(store_dir, hash, owner), ec)
      || !fs::exists(target, ec))
    return false;
  touch(target);
  return true;
}

bundle_stored use_content_bundle(const std::string& store_dir, const std::string& hash,
                                 const std::string& owner, const job_paths& paths) {
  if (!has_content_bundle(store_dir, hash, owner))
    return {bundle_refusal::invalid,
            "Bad bundle: no bundle " + hash.substr(0, 80) + " was uploaded"
              + (owner.empty() ? std::string{} : " by user '" + owner + "'")
              + " (POST /api/v1/bundles first)"};
  if (read_bundle(paths).exists)
    return {bundle_refusal::taken, "a bundle for this job id was already uploaded; a job's bundle "
                                   "cannot be replaced (submit under a new job id)"};
  // A hard link to the stored file, as a scheduled job's runs get theirs.
  if (auto st = give_run_bundle(store_dir + "/" + hash + ".tgz", paths, owner); !st)
    return {bundle_refusal::io, "cannot give the job its bundle: " + st.error()};
  return {};
}

uint64_t prune_content_bundles(const std::string& store_dir, double unused_s, double now) {
  std::error_code ec;
  auto cutoff = static_cast<time_t>(now - unused_s);
  auto crashed = static_cast<time_t>(now - 86400); // an upload takes no day
  uint64_t removed = 0;
  for (fs::directory_iterator it(store_dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) != 0)
      continue;
    if (name.starts_with(".incoming-")) {
      if (st.st_ctime < crashed)
        fs::remove(it->path(), ec);
      continue;
    }
    auto hash = name.substr(0, name.find('.'));
    if (!valid_bundle_hash(hash))
      continue; // not the store's
    auto bundle = store_dir + "/" + hash + ".tgz";
    if (name.ends_with(".tgz")) {
      if (S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_ctime < cutoff
          && ::unlink(bundle.c_str()) == 0) {
        ++removed;
        fs::remove_all(store_dir + "/" + hash + ".owners", ec);
      }
    } else if (name.ends_with(".owners") && st.st_ctime < cutoff && !fs::exists(bundle, ec)) {
      fs::remove_all(it->path(), ec); // its bundle never came, or went
    }
    ec.clear();
  }
  return removed;
}

} // namespace atlas
