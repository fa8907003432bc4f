#pragma once

// The commands of the `foundations` CLI. main.cpp parses the command line
// (flags, help, usage errors) and calls one of these with the parsed words.
// Each command prints its result on `out`, errors as one "error: ..." line on
// `err`, and returns the process exit code: 0 success, 1 failure, 2 usage.
// commands.cpp holds the commands that move jobs and logs (submit, get),
// jobs.cpp those that manage jobs (list, stop, delete, clear-queue).

#include <filesystem>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapters/http_client.hpp"
#include "adapters/json.hpp"
#include "library/config.hpp"

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
/// `tensorboard <env> <id>...`: the jobs' event files in one folder, then TensorBoard.
int tensorboard(context& ctx, const args& a);
/// `info --env`: the environments a submission can name.
int info(context& ctx, const args& a);
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
/// `schedule list <env> [--project P]` (schedules.cpp).
int schedule_list(context& ctx, const args& a);
/// `schedule pause|resume <env> <id>`.
int schedule_pause(context& ctx, const args& a);
int schedule_resume(context& ctx, const args& a);
/// `schedule update <env> <id> --cron EXPR`.
int schedule_update(context& ctx, const args& a);
/// `schedule delete <env> <id>`.
int schedule_delete(context& ctx, const args& a);
/// `schedule create --cron EXPR [submit's flags] <env> <dir> [command...]`:
/// submit() with --cron packs and uploads <dir>, then creates the schedule.
int schedule_create(context& ctx, const args& a);
/// `login <env|scheduler_url> [-u user] [-p password]` (login.cpp).
int login(context& ctx, const args& a);
/// `logout`: revokes and forgets the stored login (login.cpp).
int logout(context& ctx, const args& a);

// --- helpers the command files share (defined in commands.cpp)

/// The submission config of `env_name`; prints warnings, and the error
/// before returning nullopt on failure.
std::optional<submission_config> scheduler_for(context& ctx, const std::string& env_name);

/// HTTP options for calls to the scheduler (the context's bearer token).
http_options options(const context& ctx);

/// Prints why a call failed ("job '<id>' not found" for a 404 when `job_id`
/// is given) and returns exit code 1.
int fail(context& ctx, const http_result& r, const std::string& job_id = {});

/// Parses a 2xx body as JSON; prints an error and returns nullopt when it is not.
std::optional<json::value> json_body(context& ctx, const http_result& r);

/// Downloads job `id`'s artifacts and unpacks them as the folder `target`
/// (only the folder `source_dir` of them, when given); 0 or an exit code,
/// after printing why.
int download_artifacts(context& ctx, const submission_config& sc, const std::string& id,
                       const std::filesystem::path& target, const std::string& source_dir = {});

/// Whether `id` is a valid job id; prints an error when it is not.
bool check_id(context& ctx, const std::string& id);

/// Whether a job in this status (as the scheduler writes it) is over.
bool is_terminal(const std::string& status);

/// GET /jobs/<id>; nullopt after printing the error (logs.cpp).
std::optional<json::value> fetch_job(context& ctx, const submission_config& sc, const std::string& id);

/// Streams the job's log to `out` until the job ends. Returns the exit code.
int follow_logs(context& ctx, const submission_config& sc, const std::string& id);

/// After the log stream ends: the job's final record, waiting briefly for
/// the record to catch up with the end of the log.
std::optional<json::value> final_record(context& ctx, const submission_config& sc,
                                        const std::string& id);

/// The `<env> <id>` of a job command: its id and scheduler.
struct job_target {
  std::string id;
  submission_config scheduler;
};

/// Reads `<env> <id>`; on a bad id or config prints why, sets `code` (2 or
/// 1) and returns nullopt.
std::optional<job_target> job_target_of(context& ctx, const args& a, int& code);

} // namespace atlas::cli
