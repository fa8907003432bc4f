#include "library/bundle_store.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include <fcntl.h>
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
  return valid_bundle_hash(hash) && fs::exists(owner_mark(store_dir, hash, owner), ec)
         && fs::exists(store_dir + "/" + hash + ".tgz", ec);
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

} // namespace atlas
