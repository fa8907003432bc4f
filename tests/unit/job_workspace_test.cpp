// A job's files on the node that runs it (library/job_workspace.hpp): the
// bundle extracted (once per node for shared content), a bundle fetched in chunks, the working directory
// archived, one folder of the artifacts packed. Real files in a temporary directory.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <stdlib.h>

#include "adapters/archive.hpp"
#include "library/bundle_cache.hpp"
#include "library/job_files.hpp"
#include "library/job_workspace.hpp"

using namespace atlas;
namespace fs = std::filesystem;

namespace {

struct temp_root {
  std::string path;
  temp_root() {
    std::string tmpl = (fs::temp_directory_path() / "atlas-workspace-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_root() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

job_paths paths_under(const std::string& root, const std::string& id) {
  node_config cfg;
  cfg.job_store_dir_root = root + "/store";
  cfg.working_dir_root = root + "/work";
  cfg.job_results_root = root + "/results";
  return job_paths::of(cfg, id);
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A bundle packed as the original client packs it: <id>/job_source/main.py.
void pack_bundle(const std::string& root, const std::string& id, const std::string& bundle) {
  auto src = root + "/src-" + id;
  fs::create_directories(src + "/job_source");
  std::ofstream(src + "/job_source/main.py") << "print('hi')\n";
  fs::create_directories(fs::path(bundle).parent_path());
  REQUIRE(archive::create_tgz(src, bundle, id).ok());
}

} // namespace

TEST_CASE("a bundle is extracted into the job's working directory", "[workspace]") {
  temp_root t;
  auto p = paths_under(t.path, "j1");
  pack_bundle(t.path, "j1", p.bundle);
  auto w = prepare_workspace(p, "j1", "auto", false);
  REQUIRE(w.error.empty());
  CHECK_FALSE(w.fetch);
  CHECK(w.cwd == p.work_dir + "/job_source");
  CHECK(read(w.cwd + "/main.py") == "print('hi')\n");
  CHECK(fs::is_directory(fs::path(p.log).parent_path())); // the log's folder is there
}

TEST_CASE("a bundle of the content store is extracted once per node and copied per job",
          "[workspace]") {
  temp_root t;
  auto stored = t.path + "/store/bundles/content.tgz";
  pack_bundle(t.path, "first", stored); // packed under the first job's id
  auto cache = bundle_cache_dir(t.path + "/node");
  auto job = [&](const std::string& id) {
    auto p = paths_under(t.path, id);
    fs::create_hard_link(stored, p.bundle); // as use_content_bundle does
    auto w = prepare_workspace(p, id, "auto", false, "", cache);
    REQUIRE(w.error.empty());
    return w;
  };
  CHECK(shared_bundle_key(stored).empty()); // stored, no job uses it yet
  auto w1 = job("first");
  auto key = shared_bundle_key(stored);
  REQUIRE(!key.empty());
  CHECK(w1.cwd == t.path + "/work/first/job_source"); // its prefix stripped
  CHECK(read(w1.cwd + "/main.py") == "print('hi')\n");
  REQUIRE(fs::is_directory(cache + "/" + key));
  // The second job copies the cached tree: what is there, it gets.
  std::ofstream(cache + "/" + key + "/first/job_source/from-cache.txt") << "cached";
  auto w2 = job("second");
  CHECK(w2.cwd == t.path + "/work/second"); // not its prefix: kept, as extract_tgz does
  CHECK(read(w2.cwd + "/first/job_source/from-cache.txt") == "cached");
  // A job that rewrites its file in place changes its own copy only.
  std::ofstream(w1.cwd + "/main.py", std::ios::trunc) << "changed";
  CHECK(read(cache + "/" + key + "/first/job_source/main.py") == "print('hi')\n");
  CHECK(read(job("third").cwd + "/first/job_source/main.py") == "print('hi')\n");
  CHECK(std::distance(fs::directory_iterator(cache), fs::directory_iterator{}) == 1);
}

TEST_CASE("a bundle of its own job is extracted as before, and the cache keeps its newest trees",
          "[workspace]") {
  temp_root t;
  auto p = paths_under(t.path, "solo");
  pack_bundle(t.path, "solo", p.bundle);
  CHECK(shared_bundle_key(p.bundle).empty()); // one link: nothing to share
  auto cache = bundle_cache_dir(t.path + "/node");
  REQUIRE(prepare_workspace(p, "solo", "auto", false, "", cache).error.empty());
  CHECK_FALSE(fs::exists(cache));

  for (int i = 0; i < 3; ++i) {
    auto id = "c" + std::to_string(i);
    auto stored = t.path + "/store/bundles/" + id + ".tgz";
    pack_bundle(t.path, id, stored);
    auto q = paths_under(t.path, id);
    fs::create_hard_link(stored, q.bundle);
    REQUIRE(copy_cached_bundle(cache, shared_bundle_key(stored), q.bundle, id, q.work_dir, 2));
    CHECK(read(q.work_dir + "/job_source/main.py") == "print('hi')\n");
  }
  CHECK(std::distance(fs::directory_iterator(cache), fs::directory_iterator{}) == 2);
}

TEST_CASE("a job's params are written where load_parameters() reads them", "[workspace]") {
  temp_root t;
  auto p = paths_under(t.path, "j3");
  pack_bundle(t.path, "j3", p.bundle);
  auto w = prepare_workspace(p, "j3", "auto", false, R"({"lr":0.1,"layers":[64,32]})");
  REQUIRE(w.error.empty());
  CHECK(read(w.cwd + "/foundations_job_parameters.json") == R"({"lr":0.1,"layers":[64,32]})");
  auto none = prepare_workspace(p, "j3", "auto", false);
  CHECK_FALSE(fs::exists(none.cwd + "/foundations_job_parameters.json"));
}

TEST_CASE("a missing bundle is fetched, or an error when the file system is shared",
          "[workspace]") {
  temp_root t;
  auto p = paths_under(t.path, "j2");
  CHECK(prepare_workspace(p, "j2", "auto", false).fetch);
  CHECK(prepare_workspace(p, "j2", "no", false).fetch);
  auto shared = prepare_workspace(p, "j2", "yes", false);
  CHECK_FALSE(shared.fetch);
  CHECK(shared.error.find("cluster.shared_fs is yes") != std::string::npos);
  // Without a shared file system a bundle already here is fetched anew
  // unless it was just fetched.
  pack_bundle(t.path, "j2", p.bundle);
  CHECK(prepare_workspace(p, "j2", "no", false).fetch);
  CHECK(prepare_workspace(p, "j2", "no", true).error.empty());
}

TEST_CASE("a fetched bundle is written chunk by chunk and put in place at the end",
          "[workspace]") {
  temp_root t;
  auto bundle = t.path + "/store/j3.tgz";
  CHECK(store_bundle_chunk(bundle, 0, 7, "abc").empty());
  CHECK_FALSE(fs::exists(bundle)); // not whole yet
  CHECK(store_bundle_chunk(bundle, 3, 7, "de").empty());
  CHECK(store_bundle_chunk(bundle, 5, 7, "fg").empty());
  CHECK(read(bundle) == "abcdefg");
  CHECK_FALSE(fs::exists(bundle + ".part"));
  // The master's copy shrank under the fetch: an empty chunk before the end.
  CHECK(store_bundle_chunk(t.path + "/store/j4.tgz", 0, 5, "ab").empty());
  CHECK(store_bundle_chunk(t.path + "/store/j4.tgz", 2, 5, "") == "the master's bundle ended early");
}

TEST_CASE("the working directory moves into the archive", "[workspace]") {
  temp_root t;
  auto p = paths_under(t.path, "j5");
  fs::create_directories(p.work_dir);
  std::ofstream(p.work_dir + "/out.txt") << "result";
  CHECK(archive_workspace(p).empty());
  CHECK_FALSE(fs::exists(p.work_dir));
  CHECK(read(p.artifacts + "/out.txt") == "result");
  CHECK(archive_workspace(p).empty()); // nothing left to move: not an error
}

TEST_CASE("one folder of the artifacts is packed, never one outside them", "[workspace]") {
  temp_root root;
  auto p = paths_under(root.path, "job-tb");
  fs::create_directories(p.artifacts + "/atlas_tensorboard/run1");
  std::ofstream(p.artifacts + "/atlas_tensorboard/run1/events.out.tfevents.1") << "event";
  std::ofstream(p.artifacts + "/model.bin") << "weights";
  fs::create_directories(root.path + "/secret");
  std::ofstream(root.path + "/secret/key") << "private";
  fs::create_directory_symlink(root.path + "/secret", p.artifacts + "/link");

  std::string bytes;
  REQUIRE(pack_artifacts(p, "job-tb", root.path + "/tmp", bytes, "atlas_tensorboard"));
  std::ofstream(root.path + "/tb.tgz", std::ios::binary) << bytes;
  REQUIRE(archive::extract_tgz(root.path + "/tb.tgz", root.path + "/out"));
  CHECK(read(root.path + "/out/job-tb/run1/events.out.tfevents.1") == "event");
  CHECK_FALSE(fs::exists(root.path + "/out/job-tb/model.bin"));

  for (const char* outside : {"../../../secret", "link", "/etc", "missing", "model.bin", "."}) {
    auto st = pack_artifacts(p, "job-tb", root.path + "/tmp", bytes, outside);
    REQUIRE_FALSE(st);
    CHECK(st.error() == std::string("job 'job-tb' has no folder '") + outside + "' in its artifacts");
  }

  // A bundle with job_source/ ran there: the folder is looked for in it.
  fs::create_directories(p.artifacts + "/job_source/atlas_tensorboard");
  std::ofstream(p.artifacts + "/job_source/atlas_tensorboard/events.out.tfevents.2") << "event 2";
  REQUIRE(pack_artifacts(p, "job-tb", root.path + "/tmp", bytes, "atlas_tensorboard"));
  std::ofstream(root.path + "/tb2.tgz", std::ios::binary) << bytes;
  REQUIRE(archive::extract_tgz(root.path + "/tb2.tgz", root.path + "/out2"));
  CHECK(read(root.path + "/out2/job-tb/events.out.tfevents.2") == "event 2");
  CHECK_FALSE(pack_artifacts(p, "job-tb", root.path + "/tmp", bytes, "../atlas_tensorboard"));
}
