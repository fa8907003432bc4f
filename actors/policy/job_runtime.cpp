#include "actors/policy/job_runtime.hpp"

#include <cmath>
#include <csignal>
#include <cstring>
#include <map>
#include <sstream>

#include "adapters/job_argv.hpp"
#include "library/tracking/env.hpp"
#include "adapters/json.hpp"

extern char** environ;

namespace atlas {

namespace {

std::string scalar_text(const json::value& v) {
  return v.is_string() ? v.string : v.dump();
}

const char* signal_name(int sig) {
  const char* name = sigabbrev_np(sig);
  return name != nullptr ? name : "?";
}

} // namespace

std::optional<launch> make_launch(const node_config& cfg, const job_record& job,
                                  const slot_info& slot, const std::string& cwd,
                                  std::string& error) {
  auto spec = json::parse(job.spec.empty() ? "{}" : job.spec, error);
  if (!spec || !spec->is_object()) {
    error = "spec is not a JSON object";
    return std::nullopt;
  }
  auto run = spec_argv(*spec, cfg.python, error);
  if (!run)
    return std::nullopt;
  launch out;
  out.argv = run->argv();

  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    auto kv = std::string_view(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos)
      env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  env["PYTHONUNBUFFERED"] = "1"; // logs reach the file as they are printed
  if (auto vars = spec->find("environment")) {
    if (vars->is_object()) {
      for (auto& [k, v] : vars->object)
        env[k] = scalar_text(v);
    } else if (vars->is_array()) {
      for (auto& item : vars->array) {
        auto eq = item.string.find('=');
        if (item.is_string() && eq != std::string::npos)
          env[item.string.substr(0, eq)] = item.string.substr(eq + 1);
      }
    } else if (!vars->is_null()) {
      error = "spec.environment must be an object or a list of K=V strings";
      return std::nullopt;
    }
  }
  env.erase("FOUNDATIONS_TOKEN"); // a user's login token never reaches a job
  env["FOUNDATIONS_JOB_ID"] = job.job_id;
  env["FOUNDATIONS_PROJECT_NAME"] = job.project_name;
  env["FOUNDATIONS_USER"] = job.username;
  env["FOUNDATIONS_WORKING_DIR"] = cwd;
  // So a job can tell a resumed run from a fresh one, and plan checkpoints.
  if (job.preemptions > 0)
    env["ATLAS_PREEMPTED"] = "1";
  else
    env.erase("ATLAS_PREEMPTED");
  if (job.time_limit_s > 0)
    env["ATLAS_TIME_LIMIT"] = std::to_string(static_cast<int64_t>(std::ceil(job.time_limit_s)));
  else
    env.erase("ATLAS_TIME_LIMIT");
  add_tracking_env(cfg, job, env); // the SDK: secret, API URL, PYTHONPATH
  if (!job.gpus.empty() || !slot.gpus.empty() || cfg.gpu) {
    // Exactly the GPUs the master gave the job; on a GPU node, a job that
    // asked for none sees none.
    std::string ids;
    for (auto& g : job.gpus)
      ids += (ids.empty() ? "" : ",") + g;
    env["CUDA_VISIBLE_DEVICES"] = ids;
    env["NVIDIA_VISIBLE_DEVICES"] = ids.empty() ? "void" : ids;
  }
  for (auto& [k, v] : env)
    out.env.push_back(k + "=" + v);
  return out;
}

exit_outcome classify_exit(int64_t exit_status, int32_t term_signal,
                           const std::string& start_error, stop_cause cause,
                           const std::string& failure) {
  exit_outcome out;
  if (!start_error.empty()) {
    out.state = job_state::failed;
    out.reason = "could not start: " + start_error;
    return out;
  }
  if (term_signal == 0 && exit_status >= 0) {
    out.return_code = exit_status;
    out.has_return_code = true;
  }
  if (cause == stop_cause::drain) {
    out.state = job_state::lost;
    out.reason = "node shut down while the job ran";
  } else if (cause == stop_cause::preempted) {
    out.state = job_state::lost;
    out.reason = "preempted by a job of a higher priority";
  } else if (cause == stop_cause::time_limit) {
    out.state = job_state::failed;
    out.reason = term_signal == SIGKILL ? "time limit (killed after the grace period)"
                                        : "time limit";
  } else if (cause == stop_cause::user) {
    out.state = job_state::cancelled;
    out.reason = term_signal == SIGKILL ? "stopped by user (killed after the grace period)"
                                        : "stopped by user";
  } else if (!failure.empty()) {
    out.state = job_state::failed;
    out.reason = failure;
  } else if (term_signal != 0) {
    out.state = job_state::failed;
    out.reason = "killed by signal " + std::to_string(term_signal) + " (SIG"
                 + signal_name(term_signal) + ")";
  } else if (exit_status == 0) {
    out.state = job_state::completed;
  } else {
    out.state = job_state::failed;
    out.reason = "exited with code " + std::to_string(exit_status);
  }
  return out;
}

} // namespace atlas
