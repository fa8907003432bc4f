#pragma once

// The commands of the `foundations` CLI. cli_main.cpp parses the command line
// (flags, help, usage errors) and calls one of these with the parsed words.
// Each command prints its result on `out`, errors as one "error: ..." line on
// `err`, and returns the process exit code: 0 success, 1 failure, 2 usage.

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace atlas::cli {

/// One parsed command line: flags by long name (without "--"; a flag without
/// a value maps to "") and the positional words in order.
struct args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;

  bool has(const std::string& name) const { return flags.count(name) > 0; }
  std::string flag(const std::string& name, const std::string& fallback = {}) const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
};

/// What every command may use.
struct context {
  std::map<std::string, std::string> env; // the process environment
  std::string home;                       // $FOUNDATIONS_HOME
  std::string token = "None";             // bearer token (the original client sent "None")
  std::ostream& out;
  std::ostream& err;
  bool err_is_tty = false;                // draw progress bars on `err`
};

/// `init <project>`: a new project directory with main.py, job.config.yaml, README.md.
int init(context& ctx, const args& a);
/// `submit [flags] <env> <dir> [command...]`: bundle, upload, queue, then follow the logs.
int submit(context& ctx, const args& a);
/// `get logs <env> <id> [--follow]`.
int get_logs(context& ctx, const args& a);
/// `get job <env> <id> [--save_dir D]`: download and unpack the job's artifacts.
int get_job(context& ctx, const args& a);
/// `stop <env> <id>`.
int stop(context& ctx, const args& a);
/// `clear-queue <env>`.
int clear_queue(context& ctx, const args& a);
/// `delete job <env> <id>`.
int delete_job(context& ctx, const args& a);
/// `list <env>`: the cluster's jobs, newest first.
int list(context& ctx, const args& a);

/// A new random job id (UUID version 4, lower-case hex with dashes).
std::string new_job_id();

/// Whether `id` is safe as a job id: a UUID or [A-Za-z0-9_-]{1,64}.
bool valid_job_id(const std::string& id);

/// "1h02m03s", "4m05s", "12s" for a duration in seconds.
std::string format_duration(long long seconds);

} // namespace atlas::cli
