#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "adapters/archive.hpp"

namespace fs = std::filesystem;
using atlas::archive::check_tgz;
using atlas::archive::create_tgz;
using atlas::archive::extract_options;
using atlas::archive::extract_tgz;

namespace {

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/atlas-archive-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = fs::canonical(tmpl).string();
  }
  ~temp_dir() {
    std::error_code ec;
    // Refused bundles may leave odd modes behind; make sure all can go.
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
};

void write_file(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out{path, std::ios::binary};
  out << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    names.insert(e.path().lexically_relative(dir).string());
  return names;
}

std::set<std::string> names(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    out.insert(e.path().filename().string());
  return out;
}

// An entry for archives written by hand, hostile ones included.
struct fake {
  std::string name;
  mode_t type = AE_IFREG;
  std::string data;
  std::string link; // symlink target, or hard link target when `hard`
  bool hard = false;
  int64_t declared_size = -1; // header size when it differs from data
  mode_t perm = 0644;
};

void write_archive(const std::string& path, const std::vector<fake>& entries, bool gzip = true) {
  struct ::archive* a = archive_write_new();
  if (gzip)
    archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const auto& f : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, f.name.c_str());
    archive_entry_set_filetype(e, f.type);
    archive_entry_set_perm(e, f.perm);
    if (f.type == AE_IFLNK)
      archive_entry_set_symlink(e, f.link.c_str());
    if (f.hard)
      archive_entry_set_hardlink(e, f.link.c_str());
    if (f.type == AE_IFCHR || f.type == AE_IFBLK)
      archive_entry_set_rdev(e, makedev(1, 3));
    archive_entry_set_size(e, f.declared_size >= 0 ? f.declared_size
                                                   : static_cast<int64_t>(f.data.size()));
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (!f.data.empty())
      archive_write_data(a, f.data.data(), f.data.size());
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

fake a_dir(std::string name) { return fake{std::move(name), AE_IFDIR, {}, {}, false, -1, 0755}; }
fake a_file(std::string name, std::string data = "x") {
  return fake{std::move(name), AE_IFREG, std::move(data), {}, false, -1, 0644};
}
fake a_symlink(std::string name, std::string target) {
  return fake{std::move(name), AE_IFLNK, {}, std::move(target), false, -1, 0777};
}
fake a_hardlink(std::string name, std::string target) {
  return fake{std::move(name), AE_IFREG, {}, std::move(target), true, 0, 0644};
}
fake a_special(std::string name, mode_t type) {
  return fake{std::move(name), type, {}, {}, false, -1, 0644};
}

// tmp/bundle.tgz, tmp/root/job (the destination), tmp/root/sentinel (must
// stay empty): anything escaping the job lands next to it or inside it.
struct arena {
  temp_dir tmp;
  std::string bundle = tmp.path + "/bundle.tgz";
  std::string root = tmp.path + "/root";
  std::string dest = root + "/job";
  std::string sentinel = root + "/sentinel";
  arena() { fs::create_directories(sentinel); }
  bool outside_untouched() const {
    auto top = names(tmp.path);
    auto mid = names(root);
    mid.erase("job");
    return top == std::set<std::string>{"bundle.tgz", "root"} &&
           mid == std::set<std::string>{"sentinel"} && fs::is_empty(sentinel);
  }
};

std::string binary_blob() {
  std::string s;
  for (uint32_t i = 0; i < 300000; ++i) // every byte value, past one 64 KiB chunk
    s += static_cast<char>((i * 7919u + i / 256) & 0xffu);
  return s;
}

} // namespace

TEST_CASE("a tree packed and unpacked comes back the same, without excluded names",
          "[archive]") {
  temp_dir tmp;
  const std::string src = tmp.path + "/src";
  const std::string blob = binary_blob();
  write_file(src + "/README.md", "hello\n");
  write_file(src + "/sub/deeper/data.bin", blob);
  write_file(src + "/run.sh", "#!/bin/sh\n");
  ::chmod((src + "/run.sh").c_str(), 0755);
  fs::create_symlink("deeper/data.bin", src + "/sub/link");
  fs::create_directories(src + "/empty");
  write_file(src + "/.git/config", "secret");
  write_file(src + "/sub/__pycache__/x.pyc", "cache");

  std::vector<uint64_t> progress;
  const std::string out = tmp.path + "/out.tgz";
  auto s = create_tgz(src, out, "job1", {".git", "__pycache__"},
                      [&](uint64_t n) { progress.push_back(n); });
  REQUIRE(s.ok());
  CHECK(check_tgz(out).ok());
  REQUIRE_FALSE(progress.empty());
  CHECK(std::is_sorted(progress.begin(), progress.end()));
  CHECK(progress.back() == blob.size() + 6 + 10);

  SECTION("with the prefix stripped") {
    const std::string dest = tmp.path + "/dest";
    extract_options opts;
    opts.strip_prefix = "job1";
    auto x = extract_tgz(out, dest, opts);
    REQUIRE(x.ok());
    CHECK(listing(dest) == std::set<std::string>{"README.md", "empty", "run.sh", "sub",
                                                 "sub/deeper", "sub/deeper/data.bin",
                                                 "sub/link"});
    CHECK(read_file(dest + "/README.md") == "hello\n");
    CHECK(read_file(dest + "/sub/deeper/data.bin") == blob);
    CHECK(fs::is_symlink(dest + "/sub/link"));
    CHECK(fs::read_symlink(dest + "/sub/link") == "deeper/data.bin");
    CHECK(read_file(dest + "/sub/link") == blob);
    CHECK((fs::status(dest + "/run.sh").permissions() & fs::perms::all) ==
          static_cast<fs::perms>(0755));
  }
  SECTION("with the prefix kept") {
    const std::string dest = tmp.path + "/dest";
    REQUIRE(extract_tgz(out, dest).error() == "");
    CHECK(read_file(dest + "/job1/README.md") == "hello\n");
    CHECK(read_file(dest + "/job1/sub/deeper/data.bin") == blob);
  }
}

TEST_CASE("a tree packed without prefix has entries named by their relative path",
          "[archive]") {
  temp_dir tmp;
  write_file(tmp.path + "/src/a/b.txt", "b");
  // The archive is written inside the tree it packs and must not pack itself.
  const std::string out = tmp.path + "/src/out.tgz";
  REQUIRE(create_tgz(tmp.path + "/src", out, "").error() == "");
  REQUIRE(extract_tgz(out, tmp.path + "/dest").error() == "");
  CHECK(listing(tmp.path + "/dest") == std::set<std::string>{"a", "a/b.txt"});
}

TEST_CASE("packing a missing directory fails and leaves the output path alone",
          "[archive]") {
  temp_dir tmp;
  write_file(tmp.path + "/precious", "keep");
  auto s = create_tgz(tmp.path + "/nope", tmp.path + "/precious", "p");
  CHECK_FALSE(s.ok());
  CHECK(s.error().find("not a directory") != std::string::npos);
  CHECK(read_file(tmp.path + "/precious") == "keep");
  auto w = create_tgz(tmp.path, tmp.path + "/no/such/dir/out.tgz", "p");
  CHECK_FALSE(w.ok());
  CHECK(w.error().find("cannot write") != std::string::npos);
}

TEST_CASE("the prefix is stripped only when every entry starts with it", "[archive]") {
  arena a;
  write_archive(a.bundle, {a_dir("job1/"), a_file("job1/a"), a_file("other/b")});
  extract_options opts;
  opts.strip_prefix = "job1";
  REQUIRE(extract_tgz(a.bundle, a.dest, opts).error() == "");
  CHECK(listing(a.dest) == std::set<std::string>{"job1", "job1/a", "other", "other/b"});
}

TEST_CASE("a plain uncompressed tar is extracted too", "[archive]") {
  arena a;
  write_archive(a.bundle, {a_file("./a/b", "data")}, false);
  REQUIRE(extract_tgz(a.bundle, a.dest).error() == "");
  CHECK(read_file(a.dest + "/a/b") == "data");
  CHECK_FALSE(check_tgz(a.bundle).ok()); // not gzip, though
}

TEST_CASE("setuid bits are dropped and directories stay removable", "[archive]") {
  arena a;
  auto locked = a_dir("locked/");
  locked.perm = 0;
  auto suid = a_file("locked/suid", "x");
  suid.perm = 06755;
  write_archive(a.bundle, {locked, suid});
  REQUIRE(extract_tgz(a.bundle, a.dest).error() == "");
  struct stat st {};
  REQUIRE(::stat((a.dest + "/locked/suid").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  REQUIRE(::stat((a.dest + "/locked").c_str(), &st) == 0);
  CHECK((st.st_mode & 0700) == 0700);
}

TEST_CASE("a hard link to an earlier file of the bundle becomes a link", "[archive]") {
  arena a;
  write_archive(a.bundle, {a_file("job/data", "shared"), a_hardlink("job/alias", "job/data")});
  extract_options opts;
  opts.strip_prefix = "job";
  REQUIRE(extract_tgz(a.bundle, a.dest, opts).error() == "");
  CHECK(read_file(a.dest + "/alias") == "shared");
  CHECK(fs::equivalent(a.dest + "/alias", a.dest + "/data"));
}

TEST_CASE("a symlink climbing within the tree is allowed, but not past a stripped prefix",
          "[archive]") {
  arena a;
  write_archive(a.bundle, {a_file("job/top"), a_symlink("job/a/l", "../../job/top")});
  REQUIRE(extract_tgz(a.bundle, a.dest).error() == "");
  CHECK(read_file(a.dest + "/job/a/l") == "x");

  arena b;
  write_archive(b.bundle, {a_file("job/top"), a_symlink("job/a/l", "../../job/top")});
  extract_options opts;
  opts.strip_prefix = "job";
  auto s = extract_tgz(b.bundle, b.dest, opts);
  CHECK(s.error() ==
        "bundle refused: entry 'job/a/l' is a symlink that leaves the job directory");
  CHECK(b.outside_untouched());
}

TEST_CASE("hostile bundles are refused whole and nothing is written outside", "[archive]") {
  struct hostile {
    const char* what;
    std::vector<fake> entries;
    std::string error;
    uint64_t max_bytes = 8ull << 30;
    uint64_t max_entries = 200000;
  };
  const std::string abs_into_sentinel = "ABS"; // replaced by a path in this arena
  const std::vector<hostile> cases = {
    {"a parent path", {a_file("../evil")}, "entry '../evil' leaves the job directory"},
    {"a parent path into the sentinel", {a_file("../sentinel/evil")}, "leaves the job directory"},
    {"a parent path after a name", {a_file("a/../../evil")}, "entry 'a/../../evil' leaves"},
    {"an absolute path", {a_file("/abs/evil")}, "entry '/abs/evil' has an absolute path"},
    {"an absolute path into the sentinel", {a_file("ABS")}, "has an absolute path"},
    {"a symlink to /etc, then a file through it", {a_symlink("l", "/etc"), a_file("l/passwd")},
     "entry 'l' is a symlink to an absolute path"},
    {"a symlink up two levels", {a_symlink("up", "../..")},
     "entry 'up' is a symlink that leaves the job directory"},
    {"a symlink to the sentinel, then a file through it",
     {a_symlink("l", "../sentinel"), a_file("l/evil")}, "is a symlink that leaves"},
    {"a file through an inside symlink", {a_dir("sub/"), a_symlink("l", "sub"), a_file("l/x")},
     "entry 'l/x' passes through the symlink 'l'"},
    {"a symlink climbing out of another symlink",
     {a_symlink("a/b/y", "../.."), a_symlink("x", "a/b/y/../.."), a_file("x/evil")},
     "entry 'x' is a symlink whose target has '..' after a name"},
    {"a symlink replacing a directory", {a_file("d/f"), a_symlink("d", ".")},
     "entry 'd' conflicts with an earlier entry of another type"},
    {"a file inside a file", {a_file("f"), a_file("f/x")}, "entry 'f/x' is inside the file 'f'"},
    {"a hard link to /etc/passwd", {a_hardlink("h", "/etc/passwd")},
     "entry 'h' is a hard link that leaves the job directory"},
    {"a hard link out of the tree", {a_hardlink("h", "../sentinel/x")}, "hard link that leaves"},
    {"a hard link to a file extracted later", {a_hardlink("h", "later"), a_file("later")},
     "entry 'h' is a hard link to a file not extracted before it"},
    {"a character device", {a_special("dev", AE_IFCHR)}, "entry 'dev' is a device file"},
    {"a block device", {a_special("blk", AE_IFBLK)}, "entry 'blk' is a device file"},
    {"a FIFO", {a_special("fifo", AE_IFIFO)}, "entry 'fifo' is a FIFO"},
    {"a size bomb", {a_file("a", std::string(600, 'a')), fake{"b", AE_IFREG, {}, {}, false, 1 << 20, 0644}},
     "entry 'b' takes the bundle past 1000 bytes", 1000},
    {"too many entries", {a_file("1"), a_file("2"), a_file("3"), a_file("4")},
     "bundle refused: more than 3 entries", 8ull << 30, 3},
    {"good entries first, then a bad one", {a_file("good"), a_dir("d/"), a_file("../evil")},
     "entry '../evil' leaves"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.what) {
      arena a;
      auto entries = c.entries;
      for (auto& e : entries)
        if (e.name == abs_into_sentinel)
          e.name = a.sentinel + "/evil";
      write_archive(a.bundle, entries);
      extract_options opts;
      opts.max_total_bytes = c.max_bytes;
      opts.max_entries = c.max_entries;
      auto s = extract_tgz(a.bundle, a.dest, opts);
      CHECK_FALSE(s.ok());
      CHECK_THAT(s.error(), Catch::Contains(c.error));
      CHECK(s.error().rfind("bundle refused: ", 0) == 0);
      CHECK(a.outside_untouched());
      CHECK_FALSE(fs::exists("/abs"));
      // Headers are all checked before writing: not even good entries land.
      CHECK((!fs::exists(a.dest) || fs::is_empty(a.dest)));
    }
  }
}

TEST_CASE("a symlink already in the destination is not followed", "[archive]") {
  arena a;
  fs::create_directories(a.dest);
  fs::create_symlink("../sentinel", a.dest + "/l");
  write_archive(a.bundle, {a_file("l/evil")});
  auto s = extract_tgz(a.bundle, a.dest);
  CHECK_FALSE(s.ok());
  CHECK_THAT(s.error(), Catch::StartsWith("cannot extract entry 'l/evil'"));
  CHECK(fs::is_empty(a.sentinel));
}

TEST_CASE("check_tgz accepts a gzip tar and names what else it got", "[archive]") {
  temp_dir tmp;
  const std::string tgz = tmp.path + "/ok.tgz";
  write_archive(tgz, {a_file("a")});
  CHECK(check_tgz(tgz).ok());

  const std::string empty_tar = tmp.path + "/empty.tgz";
  write_archive(empty_tar, {});
  CHECK(check_tgz(empty_tar).ok());

  write_file(tmp.path + "/text", "just some text\n");
  auto text = check_tgz(tmp.path + "/text");
  CHECK_FALSE(text.ok());
  CHECK_THAT(text.error(), Catch::StartsWith("not a gzip tar archive"));

  write_file(tmp.path + "/empty", "");
  auto empty = check_tgz(tmp.path + "/empty");
  CHECK_FALSE(empty.ok());
  CHECK_THAT(empty.error(), Catch::StartsWith("not a gzip tar archive"));

  // gzip, but of text rather than a tar
  const std::string gz = tmp.path + "/text.gz";
  struct ::archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_raw(a);
  REQUIRE(archive_write_open_filename(a, gz.c_str()) == ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "text");
  archive_write_header(a, e);
  const std::string body(2000, 'z');
  archive_write_data(a, body.data(), body.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  auto not_tar = check_tgz(gz);
  CHECK_FALSE(not_tar.ok());
  CHECK_THAT(not_tar.error(), Catch::StartsWith("not a gzip tar archive"));

  auto missing = check_tgz(tmp.path + "/missing");
  CHECK_FALSE(missing.ok());
  CHECK_THAT(missing.error(), Catch::StartsWith("cannot open"));
}

TEST_CASE("a file that is not a tar cannot be extracted", "[archive]") {
  arena a;
  write_file(a.bundle, "just some text\n");
  auto s = extract_tgz(a.bundle, a.dest);
  CHECK_FALSE(s.ok());
  CHECK_THAT(s.error(), Catch::StartsWith("bundle unreadable"));
}
