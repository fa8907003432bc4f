#include "library/bundle_cache.hpp"

#include <algorithm>
#include <filesystem>
#include <random>
#include <system_error>
#include <vector>

#include <sys/stat.h>

#include "adapters/archive.hpp"

namespace fs = std::filesystem;

namespace atlas {

std::string bundle_cache_dir(const std::string& node_dir) {
  return node_dir + "/bundle-cache";
}

std::string shared_bundle_key(const std::string& bundle) {
  struct stat st {};
  if (::stat(bundle.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink < 2)
    return {};
  return std::to_string(st.st_dev) + "-" + std::to_string(st.st_ino) + "-"
         + std::to_string(st.st_size) + "-" + std::to_string(st.st_mtim.tv_sec) + "."
         + std::to_string(st.st_mtim.tv_nsec);
}

namespace {

/// The tree a job gets from an extracted bundle: with extract_tgz's rule,
/// the prefix goes when every entry is under it, i.e. when it is the
/// extracted tree's only entry.
fs::path root_of(const fs::path& tree, const std::string& strip_prefix) {
  std::error_code ec;
  if (strip_prefix.empty() || !fs::is_directory(tree / strip_prefix, ec))
    return tree;
  auto entries = fs::directory_iterator(tree, ec);
  if (ec)
    return tree;
  size_t n = 0;
  for (auto it = entries; it != fs::directory_iterator{}; it.increment(ec)) {
    if (ec || ++n > 1)
      return tree;
  }
  return tree / strip_prefix;
}

/// Extracts into a private name, then renames into place: slots of this
/// node that miss the cache together each extract, and one tree stays.
status extract_into_cache(const fs::path& tree, const std::string& bundle) {
  std::error_code ec;
  fs::create_directories(tree.parent_path(), ec);
  auto part = tree;
  part += ".part-" + std::to_string(std::random_device{}());
  if (auto st = archive::extract_tgz(bundle, part.string()); !st) {
    fs::remove_all(part, ec);
    return st;
  }
  fs::rename(part, tree, ec);
  if (ec) { // another slot was quicker: its tree is the same
    fs::remove_all(part, ec);
    if (!fs::is_directory(tree, ec))
      return status::fail("cannot keep the extracted bundle in " + tree.string());
  }
  return status::success();
}

/// The oldest trees go beyond `max_trees` (a tree being copied from stays
/// readable for the copy: removal unlinks names, open files stay).
void trim(const fs::path& dir, size_t max_trees) {
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> trees;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator{};
       it.increment(ec))
    if (it->path().string().find(".part-") == std::string::npos)
      trees.emplace_back(it->last_write_time(ec), it->path());
  if (trees.size() <= max_trees)
    return;
  std::sort(trees.begin(), trees.end());
  for (size_t i = 0; i + max_trees < trees.size(); ++i)
    fs::remove_all(trees[i].second, ec);
}

} // namespace

status copy_cached_bundle(const std::string& cache_dir, const std::string& key,
                          const std::string& bundle, const std::string& strip_prefix,
                          const std::string& work_dir, size_t max_trees) {
  std::error_code ec;
  fs::path tree = fs::path(cache_dir) / key;
  if (!fs::is_directory(tree, ec)) {
    if (auto st = extract_into_cache(tree, bundle); !st)
      return st;
    trim(cache_dir, max_trees);
  }
  fs::copy(root_of(tree, strip_prefix), work_dir,
           fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec) {
    // Trimmed away meanwhile, or a disk problem: the caller extracts.
    auto why = ec.message();
    fs::remove_all(work_dir, ec);
    return status::fail("cannot copy the cached bundle into " + work_dir + ": " + why);
  }
  return status::success();
}

} // namespace atlas
