// Job bundles through libarchive: check_tgz and extract_tgz on any bytes.
// Nothing may be written outside the destination, whatever the entries say;
// the work directory is emptied after every input.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "adapters/archive.hpp"
#include "fuzz_util.hpp"

using namespace atlas;
namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string root = fuzz::temp_dir() + "/run";
  const std::string bundle = root + "/bundle.tgz";
  const std::string dest = root + "/job/dest";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root + "/job", ec);
  if (FILE* f = std::fopen(bundle.c_str(), "wb")) {
    if (size && std::fwrite(data, 1, size, f) != size)
      std::abort();
    std::fclose(f);
  } else {
    std::abort();
  }

  (void)archive::check_tgz(bundle);
  archive::extract_options opts;
  opts.strip_prefix = size % 2 ? "job-1" : "";
  opts.max_total_bytes = 4 << 20; // keep a bomb small here
  opts.max_entries = 2000;
  (void)archive::extract_tgz(bundle, dest, opts);

  // Only the bundle and dest/ (with whatever lies inside) may exist.
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.path() != bundle && e.path() != root + "/job")
      std::abort();
  for (const auto& e : fs::directory_iterator(root + "/job", ec))
    if (e.path() != dest)
      std::abort();
  // Nothing inside points out of dest.
  for (auto it = fs::recursive_directory_iterator(dest, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink(ec)) {
      auto target = fs::weakly_canonical(it->path(), ec);
      if (!ec && target.string().rfind(dest, 0) != 0 && target.string().rfind(fs::canonical(dest).string(), 0) != 0)
        std::abort();
    }
  }
  fs::remove_all(root, ec);
  return 0;
}
