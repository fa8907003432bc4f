// A job's files on the node that runs it (library/job_workspace.hpp): the
// bundle extracted, a bundle fetched in chunks, the working directory
// archived, one folder of the artifacts packed. Real files in a temporary directory.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <stdlib.h>

#include "adapters/archive.hpp"
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
