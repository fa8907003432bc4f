// Following a job from the command line: its log as it grows (the
// scheduler's /api/v1 log stream, or polling where there is none) and its
// final record. `foundations get logs` and the end of `submit`.

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <thread>

#include "adapters/http_client.hpp"
#include "adapters/json.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/cli/format.hpp"

namespace atlas::cli {

using json::value;

bool is_terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

/// GET /jobs/<id>; nullopt after printing the error.
std::optional<value> fetch_job(context& ctx, const submission_config& sc, const std::string& id) {
  auto r = http_client::get(sc.scheduler_url + "/jobs/" + id, options(ctx));
  if (!r.ok())
    return fail(ctx, r, id), std::nullopt;
  auto v = json_body(ctx, r);
  if (v && !v->is_object())
    return ctx.err << "error: the scheduler's answer for job '" << id << "' is not an object\n", std::nullopt;
  return v;
}

namespace {

/// Copies log text to `out` as it comes; ends the last line on destruction.
struct log_printer {
  std::ostream& out;
  char last = '\n';
  void operator()(std::string_view text) {
    if (text.empty())
      return;
    out << text << std::flush;
    last = text.back();
  }
  ~log_printer() {
    if (last != '\n')
      out << '\n' << std::flush;
  }
};

/// Prints the log as it grows by asking for the job every 2 s (schedulers
/// without the /api/v1 log stream). Returns the exit code.
int poll_logs(context& ctx, const submission_config& sc, const std::string& id) {
  log_printer print{ctx.out};
  size_t printed = 0;
  for (;;) {
    auto job = fetch_job(ctx, sc, id);
    if (!job)
      return 1;
    std::string logs = job->get_string("logs").value_or("");
    if (logs.size() < printed)
      printed = 0;
    print(std::string_view{logs}.substr(printed));
    printed = logs.size();
    if (is_terminal(job->get_string("status").value_or("")))
      return 0;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

} // namespace

/// Streams the job's log to `out` until the job ends. Returns the exit code.
int follow_logs(context& ctx, const submission_config& sc, const std::string& id) {
  http_options o = options(ctx);
  o.stall_timeout_s = 0; // a quiet job sends nothing for long stretches
  http_result r;
  {
    log_printer print{ctx.out};
    r = http_client::stream_get(sc.scheduler_url + "/api/v1/jobs/" + id + "/logs?follow=1", std::ref(print), o);
  }
  if (r.ok())
    return 0;
  if (r.error.empty() && (r.status == 404 || r.status == 405))
    return poll_logs(ctx, sc, id);
  return fail(ctx, r, id);
}

/// After the log stream ends: the job's final record, waiting briefly for
/// the record to catch up with the end of the log.
std::optional<value> final_record(context& ctx, const submission_config& sc, const std::string& id) {
  for (int attempt = 0;; ++attempt) {
    auto job = fetch_job(ctx, sc, id);
    if (!job || is_terminal(job->get_string("status").value_or("")) || attempt == 20)
      return job;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

int get_logs(context& ctx, const args& a) {
  int code = 0;
  auto where = job_target_of(ctx, a, code);
  if (!where)
    return code;
  const std::string& id = where->id;
  const submission_config* sc = &where->scheduler;
  if (a.has("follow"))
    return follow_logs(ctx, *sc, id);
  auto job = fetch_job(ctx, *sc, id);
  if (!job)
    return 1;
  std::string logs = job->get_string("logs").value_or("");
  ctx.out << logs << (logs.empty() || logs.back() == '\n' ? "" : "\n") << std::flush;
  return 0;
}

} // namespace atlas::cli
