// `foundations tensorboard <env> <job_id>...`: the TensorBoard event files
// the jobs kept (the SDK's set_tensorboard_logdir() copies them into the
// job's atlas_tensorboard/ folder, archived with its artifacts) in one
// folder, a sub-folder per job, then TensorBoard on it.

#include "runtime/cli/commands.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace atlas::cli {

namespace {

namespace fs = std::filesystem;

/// Where a job's event files are within its artifacts.
constexpr const char* tensorboard_folder = "atlas_tensorboard";

/// `name` found on PATH, or "".
std::string on_path(const context& ctx, const std::string& name) {
  auto path = ctx.env.find("PATH");
  if (path == ctx.env.end())
    return {};
  std::string_view dirs = path->second;
  while (!dirs.empty()) {
    auto colon = dirs.find(':');
    auto dir = std::string(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
    auto candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate))
      return candidate;
  }
  return {};
}

} // namespace

int tensorboard(context& ctx, const args& a) {
  auto sc = scheduler_for(ctx, a.positional.at(0));
  if (!sc)
    return 1;
  std::vector<std::string> ids(a.positional.begin() + 1, a.positional.end());
  for (auto& id : ids)
    if (!check_id(ctx, id))
      return 2;
  std::error_code ec;
  const fs::path dir = fs::absolute(a.flag("save-dir", "tensorboard"), ec);
  for (auto& id : ids) {
    if (fs::exists(dir / id, ec))
      return ctx.err << "error: " << (dir / id).string() << " already exists\n", 1;
    // The job's folder of event files lands as <dir>/.<id>/atlas_tensorboard,
    // then becomes <dir>/<id>.
    auto staging = dir / ("." + id + ".tensorboard");
    fs::remove_all(staging, ec);
    if (int rc = download_artifacts(ctx, *sc, id, staging, tensorboard_folder); rc != 0) {
      fs::remove_all(staging, ec);
      if (rc == 1)
        ctx.err << "(did job '" << id << "' call foundations.set_tensorboard_logdir()?)\n";
      return rc;
    }
    fs::rename(staging / tensorboard_folder, dir / id, ec);
    fs::remove_all(staging, ec);
    if (!fs::exists(dir / id))
      return ctx.err << "error: cannot move the event files to " << (dir / id).string() << "\n", 1;
    ctx.out << "Saved the TensorBoard files of job '" << id << "' to " << (dir / id).string() << "\n";
  }
  auto program = on_path(ctx, "tensorboard");
  if (program.empty()) {
    ctx.out << "TensorBoard is not installed here (pip install tensorboard); then run:\n"
            << "  tensorboard --logdir " << dir.string() << "\n";
    return 0;
  }
  ctx.out << "Running: tensorboard --logdir " << dir.string() << std::endl;
  std::string logdir = dir.string();
  execl(program.c_str(), "tensorboard", "--logdir", logdir.c_str(), static_cast<char*>(nullptr));
  return ctx.err << "error: cannot run " << program << "\n", 1;
}

} // namespace atlas::cli
