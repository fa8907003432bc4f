#include "runtime/job_files.hpp"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

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

status store_bundle(const std::string& upload_path, const std::string& dest) {
  std::error_code ec;
  auto st = archive::check_tgz(upload_path);
  if (!st) {
    fs::remove(upload_path, ec);
    return status::fail("Invalid job bundle: " + st.error());
  }
  fs::create_directories(fs::path(dest).parent_path(), ec);
  fs::rename(upload_path, dest, ec);
  if (ec) { // spool dir on another file system
    ec.clear();
    fs::copy_file(upload_path, dest, fs::copy_options::overwrite_existing, ec);
    std::error_code ignored;
    fs::remove(upload_path, ignored);
    if (ec)
      return status::fail("cannot store job bundle at " + dest + ": " + ec.message());
  }
  return status::success();
}

void delete_job_files(const job_paths& paths) {
  std::error_code ec;
  fs::remove(paths.bundle, ec);
  fs::remove_all(paths.work_dir, ec);
  fs::remove(paths.log, ec);
  fs::remove_all(paths.archive_dir, ec);
}

status pack_artifacts(const job_paths& paths, const std::string& job_id,
                      const std::string& temp_dir, std::string& out) {
  std::error_code ec;
  if (!fs::is_directory(paths.artifacts, ec))
    return status::fail("job '" + job_id + "' has no artifacts");
  fs::create_directories(temp_dir, ec);
  std::random_device rd;
  auto tmp = temp_dir + "/" + job_id + "-" + std::to_string(rd()) + ".tgz";
  auto st = archive::create_tgz(paths.artifacts, tmp, job_id);
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
