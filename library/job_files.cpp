#include "library/job_files.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include "adapters/archive.hpp"

namespace fs = std::filesystem;

namespace atlas {

std::string read_file_range(const std::string& path, uint64_t offset, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return {};
  // Size the buffer by what the file holds, not by the cap (64 MiB by
  // default): zero-filling the cap on every read cost ~150 ms per request.
  auto size = static_cast<uint64_t>(std::max<std::streamoff>(in.tellg(), 0));
  if (offset >= size)
    return {};
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in)
    return {};
  std::string out(std::min(max_bytes, size - offset), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

namespace {

std::string random_suffix() {
  std::random_device rd;
  return std::to_string(rd()) + std::to_string(rd());
}

/// Writes `data` to a new file `path` and flushes it to disk.
bool write_synced(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return false;
  size_t done = 0;
  while (done < data.size()) {
    auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  bool ok = ::fsync(fd) == 0;
  return ::close(fd) == 0 && ok;
}

/// Gives `from` the name `to` unless `to` exists (link() never replaces),
/// then drops the name `from`. errno is kept from link().
bool link_new(const std::string& from, const std::string& to) {
  bool linked = ::link(from.c_str(), to.c_str()) == 0;
  int err = errno;
  ::unlink(from.c_str());
  errno = err;
  return linked;
}

bundle_stored refused(bundle_refusal why, std::string message) {
  return {why, std::move(message)};
}

bundle_stored taken(const std::string& upload_path) {
  std::error_code ec;
  fs::remove(upload_path, ec);
  return refused(bundle_refusal::taken,
                 "a bundle for this job id was already uploaded; a job's bundle cannot be "
                 "replaced (submit under a new job id)");
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return std::move(buf).str();
}

/// Moves the spooled file next to `dest` (a copy when the spool is on
/// another file system), to be linked into place from there.
bool move_aside(const std::string& upload_path, const std::string& aside, std::error_code& ec) {
  fs::rename(upload_path, aside, ec);
  if (!ec)
    return true;
  ec.clear();
  fs::copy_file(upload_path, aside, ec);
  std::error_code ignored;
  fs::remove(upload_path, ignored);
  return !ec;
}

} // namespace

bundle_stored store_bundle(const std::string& upload_path, const job_paths& paths,
                           const std::string& owner) {
  std::error_code ec;
  if (fs::exists(paths.bundle, ec))
    return taken(upload_path);
  auto st = archive::check_tgz(upload_path);
  if (!st) {
    fs::remove(upload_path, ec);
    return refused(bundle_refusal::invalid, "Invalid job bundle: " + st.error());
  }
  fs::create_directories(fs::path(paths.bundle).parent_path(), ec);
  // First the claim: <id>.owner, written aside and linked into place.
  auto suffix = ".upload-" + random_suffix();
  auto owner_aside = paths.bundle_owner + suffix;
  if (!write_synced(owner_aside, owner)) {
    fs::remove(owner_aside, ec);
    fs::remove(upload_path, ec);
    return refused(bundle_refusal::io, "cannot record the bundle's owner at "
                                         + paths.bundle_owner + ": " + std::strerror(errno));
  }
  bool claimed = link_new(owner_aside, paths.bundle_owner);
  if (!claimed && errno != EEXIST) {
    fs::remove(upload_path, ec);
    return refused(bundle_refusal::io, "cannot record the bundle's owner at "
                                         + paths.bundle_owner + ": " + std::strerror(errno));
  }
  // An existing claim of the same uploader without its bundle is an upload
  // cut off half way (a crash): that uploader may finish it.
  if (!claimed && (read_whole(paths.bundle_owner) != owner || fs::exists(paths.bundle, ec)))
    return taken(upload_path);
  auto drop_claim = [&] {
    if (claimed)
      fs::remove(paths.bundle_owner, ec);
  };
  // Then the bundle, the same way.
  auto bundle_aside = paths.bundle + suffix;
  if (!move_aside(upload_path, bundle_aside, ec)) {
    auto why = ec.message();
    fs::remove(bundle_aside, ec);
    drop_claim();
    return refused(bundle_refusal::io, "cannot store job bundle at " + paths.bundle + ": " + why);
  }
  if (!link_new(bundle_aside, paths.bundle)) {
    bool exists = errno == EEXIST; // a bundle stored before owners were recorded
    auto why = std::string(std::strerror(errno));
    drop_claim();
    if (exists)
      return taken(upload_path);
    return refused(bundle_refusal::io, "cannot store job bundle at " + paths.bundle + ": " + why);
  }
  return {};
}

bundle_info read_bundle(const job_paths& paths) {
  bundle_info b;
  std::error_code ec;
  b.exists = fs::exists(paths.bundle, ec);
  if (b.exists && fs::exists(paths.bundle_owner, ec))
    b.owner = read_whole(paths.bundle_owner);
  return b;
}

status keep_schedule_bundle(const job_paths& uploaded, const std::string& kept) {
  std::error_code ec;
  fs::create_directories(fs::path(kept).parent_path(), ec);
  fs::rename(uploaded.bundle, kept, ec);
  if (ec)
    return status::fail("cannot keep the bundle at " + kept + ": " + ec.message());
  fs::remove(uploaded.bundle_owner, ec);
  return status::success();
}

void return_schedule_bundle(const std::string& kept, const job_paths& uploaded,
                            const std::string& owner) {
  std::error_code ec;
  if (write_synced(uploaded.bundle_owner, owner))
    fs::rename(kept, uploaded.bundle, ec);
}

status give_run_bundle(const std::string& kept, const job_paths& run, const std::string& owner) {
  std::error_code ec;
  if (fs::exists(run.bundle, ec))
    return status::success();
  auto suffix = ".run-" + random_suffix();
  auto owner_aside = run.bundle_owner + suffix;
  if (!write_synced(owner_aside, owner) || (!link_new(owner_aside, run.bundle_owner) && errno != EEXIST)) {
    fs::remove(owner_aside, ec);
    return status::fail("cannot record the run's bundle owner at " + run.bundle_owner + ": "
                        + std::strerror(errno));
  }
  if (::link(kept.c_str(), run.bundle.c_str()) == 0 || errno == EEXIST)
    return status::success();
  auto aside = run.bundle + suffix; // another file system: a copy, linked into place
  fs::copy_file(kept, aside, ec);
  if (ec || (!link_new(aside, run.bundle) && errno != EEXIST)) {
    fs::remove(aside, ec);
    return status::fail("cannot give the run its bundle at " + run.bundle);
  }
  return status::success();
}

void delete_job_files(const job_paths& paths) {
  std::error_code ec;
  fs::remove(paths.bundle, ec);
  fs::remove(paths.bundle_owner, ec);
  fs::remove_all(paths.work_dir, ec);
  fs::remove(paths.log, ec);
  fs::remove_all(paths.archive_dir, ec);
}

status pack_artifacts(const job_paths& paths, const std::string& job_id,
                      const std::string& temp_dir, std::string& out, const std::string& folder) {
  std::error_code ec;
  if (!fs::is_directory(paths.artifacts, ec))
    return status::fail("job '" + job_id + "' has no artifacts");
  fs::path source = paths.artifacts;
  if (!folder.empty()) {
    // Relative to the job's own folder (job_source/ when the bundle had one,
    // as the CLI's --source_dir is). The job wrote its artifacts: resolve
    // links before trusting the folder.
    auto base = fs::canonical(paths.artifacts, ec);
    if (fs::is_directory(paths.artifacts + "/job_source", ec) && !fs::is_symlink(paths.artifacts + "/job_source", ec))
      base /= "job_source";
    auto wanted = fs::weakly_canonical(base / fs::path(folder).relative_path(), ec);
    auto rel = wanted.lexically_relative(base);
    bool inside = !ec && fs::path(folder).is_relative() && !rel.empty() && *rel.begin() != ".."
                  && rel != ".";
    if (!inside || !fs::is_directory(wanted, ec))
      return status::fail("job '" + job_id + "' has no folder '" + folder + "' in its artifacts");
    source = wanted;
  }
  fs::create_directories(temp_dir, ec);
  std::random_device rd;
  auto tmp = temp_dir + "/" + job_id + "-" + std::to_string(rd()) + ".tgz";
  auto st = archive::create_tgz(source.string(), tmp, job_id);
  if (st) {
    std::ifstream in(tmp, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();
    out = std::move(buf).str();
  }
  fs::remove(tmp, ec);
  return st;
}

} // namespace atlas

namespace atlas {

namespace {

std::string process_note(const std::string& node_dir, const std::string& job_id) {
  return node_dir + "/jobs/" + job_id + ".pgid";
}

/// True when process `pid` runs with FOUNDATIONS_JOB_ID=<job_id>.
bool runs_job(int pid, const std::string& job_id) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string entry;
  auto wanted = "FOUNDATIONS_JOB_ID=" + job_id;
  while (std::getline(in, entry, '\0'))
    if (entry == wanted)
      return true;
  return false;
}

} // namespace

void record_job_process(const std::string& node_dir, const std::string& job_id, int pgid) {
  std::error_code ec;
  fs::create_directories(node_dir + "/jobs", ec);
  std::ofstream(process_note(node_dir, job_id)) << pgid << "\n";
}

void forget_job_process(const std::string& node_dir, const std::string& job_id) {
  std::error_code ec;
  fs::remove(process_note(node_dir, job_id), ec);
}

size_t kill_leftover_jobs(const std::string& node_dir) {
  size_t killed = 0;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(node_dir + "/jobs", ec)) {
    auto job_id = entry.path().stem().string();
    int pgid = 0;
    std::ifstream(entry.path()) >> pgid;
    if (pgid > 1 && runs_job(pgid, job_id) && ::kill(-pgid, SIGKILL) == 0)
      ++killed;
    fs::remove(entry.path(), ec);
  }
  return killed;
}

} // namespace atlas
