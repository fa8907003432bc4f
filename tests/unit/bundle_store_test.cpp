// Bundles stored once by content (library/bundle_store.hpp): real files in a
// temporary directory.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

#include <stdlib.h>
#include <sys/stat.h>

#include "adapters/archive.hpp"
#include "library/bundle_store.hpp"

using namespace atlas;
namespace fs = std::filesystem;

namespace {

struct temp_root {
  std::string path;
  temp_root() {
    std::string tmpl = (fs::temp_directory_path() / "atlas-bundles-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_root() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// Packs a bundle once and hands out copies of it, as uploads would arrive.
struct uploads {
  std::string root, packed;
  int n = 0;
  explicit uploads(const std::string& r) : root(r), packed(r + "/packed.tgz") {
    fs::create_directories(root + "/src/job_source");
    std::ofstream(root + "/src/job_source/main.py") << "print('hi')\n";
    REQUIRE(archive::create_tgz(root + "/src", packed, "").ok());
  }
  std::string next() {
    auto copy = root + "/upload-" + std::to_string(n++);
    fs::copy_file(packed, copy);
    return copy;
  }
};

job_paths paths_under(const std::string& root, const std::string& id) {
  node_config cfg;
  cfg.job_store_dir_root = root + "/store";
  cfg.working_dir_root = root + "/work";
  cfg.job_results_root = root + "/results";
  return job_paths::of(cfg, id);
}

} // namespace

TEST_CASE("the same content is stored once, under its SHA-256", "[bundle_store]") {
  temp_root t;
  uploads up(t.path);
  auto store = bundle_store_dir(t.path + "/store");
  auto first = store_content_bundle(up.next(), store, "ann");
  REQUIRE(first.result.ok());
  CHECK(first.stored);
  CHECK(valid_bundle_hash(first.hash));
  CHECK(first.size == fs::file_size(up.packed));
  auto second = store_content_bundle(up.next(), store, "bob");
  REQUIRE(second.result.ok());
  CHECK_FALSE(second.stored);
  CHECK(second.hash == first.hash);
  CHECK_FALSE(fs::exists(t.path + "/upload-1")); // the spooled upload is gone either way
  size_t files = 0;
  for (auto& e : fs::directory_iterator(store))
    files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 1);
  CHECK(has_content_bundle(store, first.hash, "ann"));
  CHECK(has_content_bundle(store, first.hash, "bob"));
  CHECK_FALSE(has_content_bundle(store, first.hash, "eve"));
  CHECK_FALSE(has_content_bundle(store, first.hash, ""));
  CHECK_FALSE(has_content_bundle(store, "../" + first.hash.substr(3), "ann"));
}

TEST_CASE("a job's bundle is a hard link to the stored one, for its uploader only",
          "[bundle_store]") {
  temp_root t;
  uploads up(t.path);
  auto store = bundle_store_dir(t.path + "/store");
  auto b = store_content_bundle(up.next(), store, "ann");
  REQUIRE(b.result.ok());
  auto p1 = paths_under(t.path, "j1");
  REQUIRE(use_content_bundle(store, b.hash, "ann", p1).ok());
  auto info = read_bundle(p1);
  CHECK(info.exists);
  CHECK(info.owner == "ann");
  struct stat stored {}, job {};
  REQUIRE(::stat((store + "/" + b.hash + ".tgz").c_str(), &stored) == 0);
  REQUIRE(::stat(p1.bundle.c_str(), &job) == 0);
  CHECK(stored.st_ino == job.st_ino);
  CHECK(stored.st_nlink == 2);
  // Once per job id; never for one who did not upload it.
  CHECK(use_content_bundle(store, b.hash, "ann", p1).why == bundle_refusal::taken);
  auto refused = use_content_bundle(store, b.hash, "eve", paths_under(t.path, "j2"));
  CHECK(refused.why == bundle_refusal::invalid);
  CHECK(refused.message.find("user 'eve'") != std::string::npos);
  CHECK_FALSE(fs::exists(paths_under(t.path, "j2").bundle));
  // Deleting a job leaves the stored bundle.
  delete_job_files(p1);
  CHECK(fs::exists(store + "/" + b.hash + ".tgz"));
}

TEST_CASE("a stored bundle goes once no job holds it and nobody used it for long enough",
          "[bundle_store]") {
  temp_root t;
  uploads up(t.path);
  auto store = bundle_store_dir(t.path + "/store");
  auto held = store_content_bundle(up.next(), store, "ann");
  REQUIRE(held.result.ok());
  auto p1 = paths_under(t.path, "j1");
  REQUIRE(use_content_bundle(store, held.hash, "ann", p1).ok());
  std::ofstream(t.path + "/src/job_source/other.py") << "print('other')\n"; // another content
  REQUIRE(archive::create_tgz(t.path + "/src", up.packed, "").ok());
  auto idle = store_content_bundle(up.next(), store, "bob");
  REQUIRE(idle.result.ok());
  REQUIRE(idle.hash != held.hash);
  std::ofstream(store + "/.incoming-1") << "a crashed upload";
  auto now = static_cast<double>(::time(nullptr));
  const double week = 7 * 86400.0;
  // Asking for a bundle is a use, which leaves its modification time (what
  // the nodes' extraction cache keys on) alone.
  struct stat before {}, after {};
  REQUIRE(::stat((store + "/" + held.hash + ".tgz").c_str(), &before) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50)); // past the clock's tick
  CHECK(has_content_bundle(store, held.hash, "ann"));
  REQUIRE(::stat((store + "/" + held.hash + ".tgz").c_str(), &after) == 0);
  CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  CHECK(std::pair(after.st_ctim.tv_sec, after.st_ctim.tv_nsec)
        > std::pair(before.st_ctim.tv_sec, before.st_ctim.tv_nsec)); // what prune reads
  // Used a moment ago: both stay, however idle.
  CHECK(prune_content_bundles(store, week, now) == 0);
  CHECK(has_content_bundle(store, idle.hash, "bob"));
  // A week on: the one no job links goes with its uploaders' marks; the
  // held one stays; so does a job's own link, whose bundle is still whole.
  CHECK(prune_content_bundles(store, week, now + 2 * week) == 1);
  CHECK_FALSE(fs::exists(store + "/" + idle.hash + ".tgz"));
  CHECK_FALSE(fs::exists(store + "/" + idle.hash + ".owners"));
  CHECK_FALSE(fs::exists(store + "/.incoming-1"));
  CHECK(has_content_bundle(store, held.hash, "ann"));
  // Once its last job went, the held one goes too; uploaded again, it is back.
  delete_job_files(p1);
  CHECK(prune_content_bundles(store, week, now + 2 * week) == 1);
  CHECK_FALSE(has_content_bundle(store, held.hash, "ann"));
  CHECK(fs::is_empty(store));
}

TEST_CASE("an upload that is not a gzip tar is refused and removed", "[bundle_store]") {
  temp_root t;
  auto upload = t.path + "/junk";
  std::ofstream(upload) << "not a tarball";
  auto b = store_content_bundle(upload, bundle_store_dir(t.path + "/store"), "");
  CHECK(b.result.why == bundle_refusal::invalid);
  CHECK(b.result.message.find("Invalid job bundle") != std::string::npos);
  CHECK_FALSE(fs::exists(upload));
  CHECK(valid_bundle_hash(std::string(64, 'a')));
  CHECK_FALSE(valid_bundle_hash(std::string(64, 'A')));
  CHECK_FALSE(valid_bundle_hash(std::string(63, 'a')));
}
