#include "runtime/cli/commands.hpp"

#include "adapters/archive.hpp"
#include "adapters/http_client.hpp"
#include "adapters/json.hpp"
#include "runtime/cli/format.hpp"
#include "runtime/cli/job_config.hpp"
#include "runtime/cli/submit_flags.hpp"
#include "runtime/cli/sweep_submit.hpp"
#include "library/config.hpp"
#include "library/job_codec.hpp"

#include <pwd.h>
#include <unistd.h>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <iomanip>
#include <optional>
#include <ostream>
#include <thread>

namespace atlas::cli {
namespace {

namespace fs = std::filesystem;
using json::value;

/// The server's explanation in an error body: {"error": "..."}, a JSON string, or short text.
std::string server_message(const std::string& body) {
  std::string perr;
  if (auto v = json::parse(body, perr)) {
    if (v->is_object())
      for (const char* k : {"error", "message", "detail"})
        if (auto s = v->get_string(k))
          return *s;
    if (v->is_string())
      return v->string;
  }
  std::string line = body.substr(0, body.find('\n'));
  if (line.size() > 200)
    line = line.substr(0, 200) + "...";
  return line;
}

std::string user_name(const context& ctx) {
  if (auto it = ctx.env.find("USER"); it != ctx.env.end() && !it->second.empty())
    return it->second;
  if (passwd* pw = getpwuid(getuid()); pw && pw->pw_name)
    return pw->pw_name;
  return "unknown";
}

/// <dir>/job.config.yaml (runtime/cli/job_config.hpp); empty when absent;
/// nullopt on error (printed). Keys nothing reads are named in a warning.
std::optional<job_config> configured(context& ctx, const std::string& dir) {
  const std::string file = dir + "/job.config.yaml";
  std::error_code ec;
  if (!fs::exists(file, ec))
    return job_config{};
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  if (!in)
    return ctx.err << "error: cannot read " << file << "\n", std::nullopt;
  auto config = parse_job_config(text.str(), file);
  if (!config)
    return ctx.err << "error: " << config.error() << "\n", std::nullopt;
  for (const auto& key : config->ignored)
    ctx.err << "warning: " << file << ": '" << key << "' is not a setting Atlas reads; ignored\n";
  return std::move(config.value());
}

/// A temporary file name under $TMPDIR, removed when this goes out of scope.
struct temp_file {
  std::string path;
  explicit temp_file(const std::string& dir, const std::string& stem) {
    std::string tmpl = dir + "/" + stem + "-XXXXXX";
    int fd = mkstemp(tmpl.data());
    if (fd >= 0) {
      close(fd);
      path = tmpl;
    }
  }
  ~temp_file() {
    if (!path.empty())
      ::unlink(path.c_str());
  }
};

/// Draws "Uploading [#####.....]  45%  12.3 of 27.0 MB" on a terminal.
struct progress_bar {
  std::ostream& err;
  int last = -1;
  void operator()(uint64_t sent, uint64_t total) {
    if (total == 0)
      return;
    int pct = static_cast<int>(sent * 100 / total);
    if (pct == last)
      return;
    last = pct;
    std::string bar(30, '.');
    std::fill_n(bar.begin(), pct * 30 / 100, '#');
    err << "\rUploading [" << bar << "] " << std::setw(3) << pct << "%  " << std::fixed
        << std::setprecision(1) << sent / 1048576.0 << " of " << total / 1048576.0 << " MB" << std::flush;
  }
};

bool parse_bool_word(const std::string& s, bool& out) {
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "true" || l == "1" || l == "yes")
    return out = true, true;
  if (l == "false" || l == "0" || l == "no")
    return out = false, true;
  return false;
}

bool parse_int(const std::string& s, long long lo, long long& out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end || errno || v < lo)
    return false;
  out = v;
  return true;
}

} // namespace

/// The submission config of `env_name`; prints the error and returns nullopt on failure.
std::optional<submission_config> scheduler_for(context& ctx, const std::string& env_name) {
  auto r = load_submission_config(ctx.home, env_name);
  for (const auto& w : r.warnings)
    ctx.err << "warning: " << w << "\n";
  if (!r.ok()) {
    ctx.err << "error: " << r.error << "\n";
    return std::nullopt;
  }
  return r.config;
}

http_options options(const context& ctx) {
  http_options o;
  o.token = ctx.token;
  o.peer = "the scheduler";
  return o;
}

/// Prints why a call failed and returns exit code 1.
int fail(context& ctx, const http_result& r, const std::string& job_id) {
  if (!r.error.empty()) {
    ctx.err << "error: " << r.error << "\n";
  } else if (r.status == 401) {
    std::string msg = server_message(r.body);
    ctx.err << "error: the scheduler refused your login (" << (msg.empty() ? "HTTP 401" : msg)
            << "); log in again: foundations login <env>\n";
  } else if (r.status == 404 && !job_id.empty()) {
    ctx.err << "error: job '" << job_id << "' not found\n";
  } else {
    std::string msg = server_message(r.body);
    ctx.err << "error: " << (msg.empty() ? "the scheduler refused the request" : msg) << " (HTTP "
            << r.status << ")\n";
  }
  return 1;
}

/// Parses a 2xx body as JSON; prints an error and returns nullopt when it is not.
std::optional<value> json_body(context& ctx, const http_result& r) {
  std::string perr;
  auto v = json::parse(r.body, perr);
  if (!v)
    ctx.err << "error: the scheduler sent an answer that is not JSON (" << perr << ")\n";
  return v;
}

bool check_id(context& ctx, const std::string& id) {
  if (valid_job_id(id))
    return true;
  ctx.err << "error: '" << id << "' is not a job id (expected letters, digits, '-' or '_')\n";
  return false;
}

std::optional<job_target> job_target_of(context& ctx, const args& a, int& code) {
  const std::string& id = a.positional.at(1);
  if (!check_id(ctx, id)) {
    code = 2;
    return std::nullopt;
  }
  auto sc = scheduler_for(ctx, a.positional.at(0));
  if (!sc) {
    code = 1;
    return std::nullopt;
  }
  return job_target{id, std::move(*sc)};
}

int submit(context& ctx, const args& a) {
  const std::string& env_name = a.positional.at(0);
  std::string dir = a.positional.at(1);
  std::vector<std::string> command(a.positional.begin() + 2, a.positional.end());
  long long num_gpus = 0, priority = 0;
  bool stream = true;
  if (a.has("num-gpus") && !parse_int(a.flag("num-gpus"), 0, num_gpus))
    return ctx.err << "error: --num-gpus: expected a whole number >= 0, got '" << a.flag("num-gpus") << "'\n", 2;
  if (a.has("priority") && !parse_int(a.flag("priority"), LLONG_MIN, priority))
    return ctx.err << "error: --priority: expected a whole number, got '" << a.flag("priority") << "'\n", 2;
  auto ram = parse_ram_gb(a.flag("ram"));
  if (a.has("ram") && !ram)
    return ctx.err << "error: --ram: expected a number of GB > 0 (e.g. 4 or 1.5), got '" << a.flag("ram") << "'\n", 2;
  auto memory = parse_memory_flag(a.flag("memory"));
  if (a.has("memory") && !memory)
    return ctx.err << "error: --memory: expected a size > 0 such as 64M or 1.5g, got '" << a.flag("memory")
                   << "'\n", 2;
  if (a.has("ram") && a.has("memory"))
    return ctx.err << "error: --ram and --memory both set the memory limit; give one\n", 2;
  auto cpus = parse_cpus(a.flag("cpus"));
  if (a.has("cpus") && !cpus)
    return ctx.err << "error: --cpus: expected a number of CPUs > 0 (e.g. 2 or 0.5), got '" << a.flag("cpus")
                   << "'\n", 2;
  auto time_limit = parse_time_limit(a.flag("time"));
  if (a.has("time") && !time_limit)
    return ctx.err << "error: --time: expected seconds (120), 90s, 30m, 2h or [H:]MM:SS, got '" << a.flag("time")
                   << "'\n", 2;
  auto after = parse_after(a.flag("after"));
  if (a.has("after") && !after)
    return ctx.err << "error: --after: expected <job_id>[:ok|:any|:failed] (up to 64), got '" << a.flag("after")
                   << "'\n", 2;
  if (a.has("stream-job-logs") && !parse_bool_word(a.flag("stream-job-logs"), stream))
    return ctx.err << "error: --stream-job-logs: expected True or False, got '" << a.flag("stream-job-logs")
                   << "'\n", 2;
  // As the original client: any DISABLE_LOG_STREAMING but "False" turns streaming off.
  if (auto d = ctx.env.find("DISABLE_LOG_STREAMING"); d != ctx.env.end() && d->second != "False")
    stream = false;
  std::optional<sweep_spec> sweep;
  if (a.has("sweep") && !(sweep = load_sweep(ctx, a.flag("sweep"))))
    return 2;
  if (a.has("dry-run"))
    return sweep ? print_trials(ctx, *sweep) : (ctx.err << "error: --dry-run: only with --sweep\n", 2);
  auto sc = scheduler_for(ctx, env_name);
  if (!sc)
    return 1;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return ctx.err << "error: " << dir << " is not a directory\n", 1;
  dir = fs::absolute(dir, ec).lexically_normal().string();
  if (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  auto config = configured(ctx, dir);
  if (!config)
    return 1;
  if (!a.has("num-gpus") && config->num_gpus)
    num_gpus = *config->num_gpus;
  std::string project = a.flag("project-name");
  if (project.empty())
    project = config->project_name.empty() ? fs::path(dir).filename().string() : config->project_name;
  if (!a.has("time") && !config->time_limit.empty()) {
    time_limit = parse_time_limit(config->time_limit);
    if (!time_limit)
      return ctx.err << "error: " << dir << "/job.config.yaml: time_limit: expected seconds (120), 90s, 30m, 2h "
                     << "or [H:]MM:SS, got '" << config->time_limit << "'\n", 2;
  }
  const std::string id = new_job_id();

  temp_file bundle(fs::temp_directory_path(ec).string(), "atlas-bundle");
  if (bundle.path.empty())
    return ctx.err << "error: cannot create a temporary file for the job bundle\n", 1;
  // A sweep's bundle is shared by its trials, so it is packed under no job id.
  const std::string prefix = sweep ? std::string("job_source") : id + "/job_source";
  if (auto st = archive::create_tgz(dir, bundle.path, prefix, {".git", "__pycache__", ".venv"}); !st)
    return ctx.err << "error: cannot pack " << dir << ": " << st.error() << "\n", 1;
  progress_bar bar{ctx.err};
  progress_fn progress;
  if (ctx.err_is_tty)
    progress = [&bar](uint64_t sent, uint64_t total) { bar(sent, total); };
  if (!sweep) {
    http_options up = options(ctx);
    auto r = http_client::upload_file(sc->scheduler_url + "/job_bundle", "job_bundle", bundle.path,
                                      id + ".tgz", progress, up);
    if (bar.last >= 0)
      ctx.err << "\n";
    if (!r.ok())
      return fail(ctx, r);
  }

  // The words given on the command line, else job.config.yaml's worker
  // command, else main.py; likewise flags over the file for the rest.
  json::writer w;
  w.begin_object().key("spec").begin_object().key("command");
  if (command.empty() && !config->command.empty()) {
    w.raw(config->command);
  } else {
    w.begin_array();
    for (const auto& word : command.empty() ? std::vector<std::string>{"main.py"} : command)
      w.value(word);
    w.end_array();
  }
  if (a.has("entrypoint"))
    w.key("entrypoint").begin_array().value(a.flag("entrypoint")).end_array();
  else if (!config->entrypoint.empty())
    w.key("entrypoint").raw(config->entrypoint);
  w.key("environment").begin_object();
  for (const auto& [name, value] : config->environment)
    w.kv(name, value);
  w.end_object();
  for (auto [key, value] : {std::pair{"image", &config->image}, std::pair{"working_dir", &config->working_dir},
                            std::pair{"volumes", &config->volumes}})
    if (!value->empty())
      w.key(key).raw(*value);
  if (ram || memory)
    w.kv("mem_limit", ram ? *ram : *memory);
  else if (!config->mem_limit.empty())
    w.kv("mem_limit", config->mem_limit);
  if (cpus)
    w.kv("cpus", *cpus);
  w.end_object();
  if (time_limit)
    w.kv("time_limit", *time_limit);
  if (after) {
    w.key("after").begin_array();
    for (const auto& d : *after)
      w.value(d);
    w.end_array();
  }
  w.key("metadata").begin_object().kv("project_name", project).kv("username", user_name(ctx));
  if (sweep && !sweep->metric.empty()) // what "best" means on the dashboard's sweep view
    w.kv("sweep_metric", sweep->metric).kv("sweep_goal", sweep->goal);
  w.end_object();
  w.key("gpu_spec").begin_object().kv("num_gpus", static_cast<int64_t>(num_gpus)).end_object();
  w.kv("priority", static_cast<int64_t>(priority));
  if (sweep)
    return submit_sweep(ctx, *sc, bundle.path, *sweep, w, progress, config->params);
  w.kv("job_id", id);
  if (!config->params.empty())
    w.key("params").raw(config->params);
  if (a.has("cron")) { // `schedule create`: a scheduled job instead of one run
    w.kv("schedule", a.flag("cron")).end_object();
    auto r = http_client::post_json(sc->scheduler_url + "/scheduled_jobs", w.str(), options(ctx));
    if (!r.ok())
      return fail(ctx, r);
    ctx.out << "Scheduled job '" << id << "' created on " << sc->scheduler_url << " (project " << project
            << ", cron \"" << a.flag("cron") << "\", UTC)" << std::endl;
    return 0;
  }
  w.end_object();
  auto r = http_client::post_json(sc->scheduler_url + "/queued_jobs", w.str(), options(ctx));
  if (!r.ok())
    return fail(ctx, r);
  std::string perr;
  auto answer = json::parse(r.body, perr);
  std::string job_id = answer && answer->is_string() && valid_job_id(answer->string) ? answer->string : id;
  ctx.out << "Job '" << job_id << "' submitted to " << sc->scheduler_url << " (project " << project << ")"
          << std::endl;
  if (!stream)
    return 0;

  if (int rc = follow_logs(ctx, *sc, job_id); rc != 0)
    return rc;
  auto job = final_record(ctx, *sc, job_id);
  if (!job)
    return 1;
  std::string status = job->get_string("status").value_or("unknown");
  if (!is_terminal(status))
    return ctx.err << "error: the log stream ended but job '" << job_id << "' is still " << status << "\n", 1;
  std::vector<std::string> details;
  if (auto rc = job->get_int("return_code"); rc && status != "completed")
    details.push_back("return code " + std::to_string(*rc));
  if (auto reason = job->get_string("reason"); reason && !reason->empty())
    details.push_back(*reason);
  ctx.out << "Job '" << job_id << "' finished: " << status;
  for (size_t i = 0; i < details.size(); ++i)
    ctx.out << (i ? ", " : " (") << details[i] << (i + 1 == details.size() ? ")" : "");
  ctx.out << std::endl;
  return status == "completed" ? 0 : 1;
}

int download_artifacts(context& ctx, const submission_config& sc, const std::string& id,
                       const fs::path& target, const std::string& source_dir) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target, ec)))
    return ctx.err << "error: " << target.string() << " already exists\n", 1;
  const fs::path save_dir = target.parent_path();
  fs::create_directories(save_dir, ec);
  if (ec)
    return ctx.err << "error: cannot create " << save_dir.string() << ": " << ec.message() << "\n", 1;
  temp_file tgz(save_dir.string(), "." + id + ".tgz");
  if (tgz.path.empty())
    return ctx.err << "error: cannot create a file in " << save_dir.string() << "\n", 1;
  // --source_dir: the node packs only that folder of the job's directory
  // (job_source/ in the artifacts when the bundle was packed so), which then
  // lands at its place in `target`.
  auto wanted = fs::path(source_dir).lexically_normal();
  bool inside = wanted.is_relative() && !wanted.empty() && *wanted.begin() != "..";
  if (!source_dir.empty() && !inside)
    return ctx.err << "error: --source_dir must be a folder inside the job's directory, got '"
                   << source_dir << "'\n", 2;
  http_options o = options(ctx);
  auto url = sc.scheduler_url + "/job_bundle/" + id;
  if (!source_dir.empty())
    url += "?folder=" + http_client::escape(wanted.string());
  auto r = http_client::download_to_file(url, tgz.path, o);
  if (!r.ok()) {
    // A 404 says whether the job or only its folder is missing.
    auto msg = r.error.empty() && r.status == 404 ? server_message(r.body) : "";
    if (!source_dir.empty() && !msg.empty())
      return ctx.err << "error: " << msg << "\n", 1;
    return fail(ctx, r, id);
  }
  // Unpack beside the target, then move into place: a half-unpacked job never
  // appears under its name. Entries under "<id>/" are lifted out of it.
  std::string unpack = (save_dir / ("." + id + ".unpack-XXXXXX")).string();
  if (!mkdtemp(unpack.data()))
    return ctx.err << "error: cannot create a directory in " << save_dir.string() << "\n", 1;
  archive::extract_options lift;
  lift.strip_prefix = id;
  auto st = archive::extract_tgz(tgz.path, unpack, lift);
  if (st && !source_dir.empty()) {
    std::string keep = (save_dir / ("." + id + ".keep-XXXXXX")).string();
    if (!mkdtemp(keep.data()))
      return ctx.err << "error: cannot create a directory in " << save_dir.string() << "\n", 1;
    fs::create_directories((fs::path(keep) / wanted).parent_path(), ec);
    fs::rename(unpack, fs::path(keep) / wanted, ec);
    fs::remove_all(unpack, ec);
    unpack = keep;
  }
  if (st)
    fs::rename(unpack, target, ec);
  fs::remove_all(unpack, ec);
  if (!st)
    return ctx.err << "error: cannot unpack the artifacts of job '" << id << "': " << st.error() << "\n", 1;
  if (!fs::exists(target))
    return ctx.err << "error: cannot move the artifacts to " << target.string() << "\n", 1;
  return 0;
}

int get_job(context& ctx, const args& a) {
  int code = 0;
  auto where = job_target_of(ctx, a, code);
  if (!where)
    return code;
  std::error_code ec;
  const fs::path target = fs::absolute(a.flag("save-dir", "."), ec) / where->id;
  if (int rc = download_artifacts(ctx, where->scheduler, where->id, target, a.flag("source-dir")); rc != 0)
    return rc;
  ctx.out << "Saved job '" << where->id << "' to " << target.string() << std::endl;
  return 0;
}

} // namespace atlas::cli
