#include "library/job_workspace.hpp"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "adapters/archive.hpp"
#include "library/bundle_cache.hpp"

namespace atlas {

namespace fs = std::filesystem;

workspace prepare_workspace(const job_paths& paths, const std::string& job_id,
                            const std::string& shared_fs, bool fetched,
                            const std::string& params, const std::string& cache_dir) {
  workspace w;
  std::error_code ec;
  fs::create_directories(fs::path(paths.log).parent_path(), ec);
  bool here = (fetched || shared_fs != "no") && fs::exists(paths.bundle, ec);
  if (!here && shared_fs == "yes") {
    w.error = "job bundle missing: " + paths.bundle + " (cluster.shared_fs is yes)";
    return w;
  }
  if (!here) {
    w.fetch = true; // not on this node's file system
    return w;
  }
  fs::remove_all(paths.work_dir, ec);
  // The original client packs "<job_id>/..."; the prefix goes.
  auto key = cache_dir.empty() ? std::string{} : shared_bundle_key(paths.bundle);
  if (key.empty() || !copy_cached_bundle(cache_dir, key, paths.bundle, job_id, paths.work_dir)) {
    archive::extract_options opts;
    opts.strip_prefix = job_id;
    if (auto st = archive::extract_tgz(paths.bundle, paths.work_dir, opts); !st) {
      w.error = st.error();
      return w;
    }
  }
  w.cwd = fs::is_directory(paths.work_dir + "/job_source", ec) ? paths.work_dir + "/job_source"
                                                               : paths.work_dir;
  if (!params.empty()) {
    std::ofstream out(w.cwd + "/foundations_job_parameters.json", std::ios::binary | std::ios::trunc);
    out << params;
    out.close();
    if (!out)
      w.error = "cannot write foundations_job_parameters.json in " + w.cwd;
  }
  return w;
}

std::string store_bundle_chunk(const std::string& bundle, uint64_t offset, uint64_t total,
                               const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(fs::path(bundle).parent_path(), ec);
  auto part = bundle + ".part";
  std::ofstream out(part, offset == 0 ? std::ios::binary | std::ios::trunc
                                      : std::ios::binary | std::ios::app);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  auto written = offset + bytes.size();
  if (!out)
    return "cannot write the fetched bundle to " + part;
  if (bytes.empty() && written < total)
    return "the master's bundle ended early";
  if (written >= total)
    fs::rename(part, bundle, ec);
  return ec ? "cannot store the fetched bundle: " + ec.message() : std::string{};
}

std::string archive_workspace(const job_paths& paths) {
  std::error_code ec;
  std::string error;
  fs::remove_all(paths.artifacts, ec);
  fs::create_directories(paths.archive_dir, ec);
  if (!fs::exists(paths.work_dir, ec))
    return error;
  fs::rename(paths.work_dir, paths.artifacts, ec);
  if (ec) { // another file system: copy, then remove
    ec.clear();
    fs::copy(paths.work_dir, paths.artifacts,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
    if (ec)
      error = "archiving artifacts failed: " + ec.message();
    fs::remove_all(paths.work_dir, ec);
  }
  return error;
}

} // namespace atlas
