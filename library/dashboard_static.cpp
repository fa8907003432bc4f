#include "library/dashboard_static.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "library/http_answers.hpp"

namespace fs = std::filesystem;

namespace atlas {

namespace {

constexpr uint64_t max_served_bytes = 256ull << 20;

/// `relative` resolved under `base`, or empty when it leaves `base` (after
/// following links) or does not name a regular file.
std::string contained_file(const std::string& base, const std::string& relative) {
  if (relative.empty() || relative.front() == '/' || relative.find('\0') != std::string::npos)
    return {};
  for (auto& part : fs::path(relative))
    if (part == "..")
      return {};
  std::error_code ec;
  auto root = fs::canonical(base, ec);
  if (ec)
    return {};
  auto file = fs::canonical(root / relative, ec);
  if (ec || !fs::is_regular_file(file, ec))
    return {};
  auto r = root.string(), f = file.string();
  if (f.size() <= r.size() || f.compare(0, r.size(), r) != 0 || f[r.size()] != '/')
    return {};
  return f;
}

http_response file_answer(const std::string& file) {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec)
    return error_answer(404, "not found");
  if (size > max_served_bytes)
    return error_answer(413, "file too large to serve");
  std::ifstream in(file, std::ios::binary);
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  if (!in.good() && !in.eof())
    return error_answer(500, "cannot read the file");
  auto r = json_answer(200, std::move(bytes));
  r.content_type = content_type_of(file);
  return r;
}

/// The environment variable, else the configured folder, else the first
/// candidate that exists.
std::string first_dir(const char* env_name, const std::string& configured,
                      const std::vector<fs::path>& candidates) {
  if (const char* v = std::getenv(env_name); v != nullptr && *v != '\0')
    return v;
  if (!configured.empty())
    return configured;
  std::error_code ec;
  for (auto& c : candidates)
    if (fs::is_directory(c, ec))
      return fs::canonical(c, ec).string();
  return {};
}

} // namespace

std::string content_type_of(const std::string& path) {
  static const std::map<std::string, std::string> types{
    {".html", "text/html; charset=utf-8"},   {".js", "application/javascript; charset=utf-8"},
    {".mjs", "application/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},     {".json", "application/json"},
    {".svg", "image/svg+xml"},               {".png", "image/png"},
    {".jpg", "image/jpeg"},                  {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},                   {".webp", "image/webp"},
    {".ico", "image/x-icon"},                {".txt", "text/plain; charset=utf-8"},
    {".log", "text/plain; charset=utf-8"},   {".csv", "text/csv; charset=utf-8"},
    {".woff2", "font/woff2"}};
  auto ext = fs::path(path).extension().string();
  for (auto& c : ext)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

http_response serve_static(const std::string& web_dir, const std::string& url_path) {
  if (web_dir.empty())
    return error_answer(404, "the dashboard's files were not found (set ATLAS_WEB_DIR)");
  auto rel = url_path;
  while (!rel.empty() && rel.front() == '/')
    rel.erase(0, 1);
  if (rel.empty() || rel.back() == '/')
    rel += "index.html";
  for (auto& part : fs::path(rel))
    if (!part.empty() && part.string().front() == '.') // .., dot files
      return error_answer(400, "bad path");
  auto file = contained_file(web_dir, rel);
  if (file.empty())
    return error_answer(404, "no such file: /" + rel);
  auto r = file_answer(file);
  r.headers["Cache-Control"] = "no-cache";
  r.headers["X-Content-Type-Options"] = "nosniff";
  return r;
}

http_response serve_artifact(const std::vector<std::string>& bases, const std::string& relative) {
  for (auto& base : bases)
    if (auto file = contained_file(base, relative); !file.empty()) {
      auto r = file_answer(file);
      r.headers["X-Content-Type-Options"] = "nosniff";
      // Never run an artifact's HTML or SVG as part of the dashboard.
      r.headers["Content-Security-Policy"] = "sandbox";
      return r;
    }
  return error_answer(404, "artifact file not found (the job may not have written it)");
}

void resolve_dashboard_dirs(node_config& cfg) {
  std::error_code ec;
  resolve_dashboard_dirs(cfg, fs::read_symlink("/proc/self/exe", ec).parent_path().string());
}

void resolve_dashboard_dirs(node_config& cfg, const std::string& program_dir) {
  std::error_code ec;
  fs::path exe = program_dir;
  std::vector<fs::path> web, sdk;
  web.push_back(exe / ".." / "share" / "atlas" / "web");
  sdk.push_back(exe / ".." / "share" / "atlas" / "sdk" / "python");
  for (auto dir = exe; !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    if (fs::exists(dir / "meson.build", ec) && fs::is_directory(dir / "web", ec)) {
      web.push_back(dir / "web");
      sdk.push_back(dir / "sdk" / "python");
      break;
    }
    if (fs::exists(dir / "build.ninja", ec)) { // a build folder: meson wrote where its sources are
      std::ifstream in(dir / "atlas-source-root.txt");
      std::string root;
      if (std::getline(in, root) && !root.empty()) {
        web.push_back(fs::path(root) / "web");
        sdk.push_back(fs::path(root) / "sdk" / "python");
      }
      web.push_back(dir.parent_path() / "web"); // a build folder made before that file
      sdk.push_back(dir.parent_path() / "sdk" / "python");
    }
  }
  cfg.web_dir = first_dir("ATLAS_WEB_DIR", cfg.web_dir, web);
  cfg.sdk_dir = first_dir("ATLAS_SDK_DIR", cfg.sdk_dir, sdk);
}

} // namespace atlas
